//go:build e2e

package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluicehq/sluice/e2e/controlplane"
)

// Options change what StartWithOptions sets up.
type Options struct {
	// Metrics also runs the application-metrics simulator and a Prometheus
	// scraping it, as StartWithMetrics does.
	Metrics bool
	// Install, when set, installs Sluice once the control plane (and the
	// metrics) run, instead of InstallCRDs, and says how to run the
	// manager. mt is nil without Metrics. Without Install the manager runs
	// as admin in development mode, pointed at the metrics' Prometheus.
	Install func(ctx context.Context, e *Env, mt *Metrics) (ManagerOptions, error)
}

// MainWithOptions is Main with Options; metrics is set when o.Metrics is.
func MainWithOptions(m *testing.M, o Options, env **Env, metrics **Metrics) {
	os.Exit(func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		e, mt, err := StartWithOptions(ctx, o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e environment:", err)
			return 1
		}
		defer e.Stop()
		if mt != nil {
			defer mt.Stop()
		}
		*env = e
		if metrics != nil {
			*metrics = mt
		}
		return m.Run()
	}())
}

// StartWithOptions starts the control plane, the metrics when asked, installs
// Sluice and starts the manager.
func StartWithOptions(ctx context.Context, o Options) (_ *Env, _ *Metrics, err error) {
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		return nil, nil, err
	}
	ctrllog.SetLogger(logr.Discard())
	e := &Env{dir: dir}
	var mt *Metrics
	defer func() {
		if err != nil {
			if mt != nil {
				mt.Stop()
			}
			e.Stop()
		}
	}()
	start := time.Now()
	if e.ControlPlane, err = controlplane.Start(ctx, controlplane.Options{Dir: filepath.Join(dir, "cluster"), ExtraStages: Stages()}); err != nil {
		return nil, nil, err
	}
	if e.Client, err = client.New(e.ControlPlane.RESTConfig(), client.Options{Scheme: Scheme()}); err != nil {
		return nil, nil, err
	}
	if o.Metrics {
		mt = &Metrics{}
		if err := mt.start(ctx, e.ControlPlane, filepath.Join(dir, "prometheus")); err != nil {
			return nil, nil, err
		}
	}
	var mo ManagerOptions
	if o.Install != nil {
		if mo, err = o.Install(ctx, e, mt); err != nil {
			return nil, nil, fmt.Errorf("installing Sluice: %w", err)
		}
	} else {
		if err := InstallCRDs(ctx, e.Client); err != nil {
			return nil, nil, err
		}
		if mt != nil {
			mo.Args = append(mo.Args, "--prometheus-address="+mt.Prometheus.URL())
		}
	}
	if e.Manager, err = StartManagerWith(ctx, e.ControlPlane, filepath.Join(dir, "manager"), mo); err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "e2e environment ready in %s (logs in %s)\n", time.Since(start).Round(time.Millisecond), dir)
	return e, mt, nil
}
