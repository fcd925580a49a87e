package webhooks

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Rotator keeps the serving certificate valid: it loads the bundle from the
// Store, renews what is due, writes the serving files and registers the CA
// with the API server. Every replica runs it (each serves webhooks).
type Rotator struct {
	Store    Store
	Names    Names
	CertDir  string
	Register func(ctx context.Context, caBundle []byte) error
	// Interval between checks; certificates are renewed long before they
	// expire, so hourly is plenty.
	Interval time.Duration
	Now      func() time.Time
	Log      logr.Logger
}

// EnsureFiles makes sure valid serving files exist, without registering.
// The manager calls it before the webhook server starts.
func (r *Rotator) EnsureFiles(ctx context.Context) (*Bundle, error) {
	for attempt := 0; ; attempt++ {
		stored, err := r.Store.Load(ctx)
		if err != nil {
			return nil, fmt.Errorf("loading webhook certificates: %w", err)
		}
		b, changed, err := Renew(stored, r.Names, r.Now())
		if err != nil {
			return nil, err
		}
		if changed {
			if err := r.Store.Save(ctx, b); err != nil {
				// Another replica won the race: use what it stored.
				if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 5 {
					continue
				}
				return nil, fmt.Errorf("saving webhook certificates: %w", err)
			}
			r.Log.Info("webhook certificates renewed")
		}
		return b, WriteServingFiles(r.CertDir, b)
	}
}

func (r *Rotator) ensure(ctx context.Context) error {
	b, err := r.EnsureFiles(ctx)
	if err != nil {
		return err
	}
	return r.Register(ctx, b.CABundle())
}

// Start registers the webhooks and keeps the certificates fresh until ctx
// ends. It is a manager Runnable.
func (r *Rotator) Start(ctx context.Context) error {
	if err := r.ensure(ctx); err != nil {
		return err
	}
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := r.ensure(ctx); err != nil {
				r.Log.Error(err, "renewing webhook certificates")
			}
		}
	}
}

// NeedLeaderElection is false: every replica serves webhooks.
func (r *Rotator) NeedLeaderElection() bool { return false }
