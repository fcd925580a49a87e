//go:build e2e

// Package shard_test runs Sluice as shards (sluice-controller
// --watch-label-selector, docs/sharding.md): the framework's manager is the
// default shard (Rollouts without the sharding.fluxcd.io/key label), and
// two more processes are shard1 (label value shard1), electing a leader on
// their own Lease. The default shard starts last, so the API server calls
// its webhooks for every shard's objects: webhooks are served by any
// manager, whatever shard the object is in.
package shard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/devenv/manager"
	"github.com/sluicehq/sluice/e2e/framework"
)

const (
	shardKey         = "sharding.fluxcd.io/key"
	managerNamespace = "sluice-system"
	// The Lease shard1 elects its leader on (--leader-election-id).
	shard1Lease = "sluice-controller-shard1.sluice.dev"
)

var (
	env *framework.Env
	// shard1 are the two replicas of shard1; one leads.
	shard1 []*manager.Manager
)

// shard1Args run a replica of shard1 with short Lease timings (a killed
// leader's Lease expires after 6s), as e2e/chaos's pair mode.
var shard1Args = []string{
	"--watch-label-selector=" + shardKey + "=shard1",
	"--leader-elect=true", "--leader-election-namespace=" + managerNamespace,
	"--leader-election-id=" + shard1Lease,
	"--leader-election-lease-duration=6s", "--leader-election-renew-deadline=4s", "--leader-election-retry-period=1s",
}

func TestMain(m *testing.M) {
	framework.MainWith(m, &env, func(ctx context.Context, e *framework.Env) error {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: managerNamespace}}
		if err := e.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		for _, name := range []string{"a", "b"} {
			o := e.ManagerOptions
			o.Args = append(append([]string(nil), o.Args...), shard1Args...)
			mgr, err := manager.Start(ctx, e.ControlPlane, filepath.Join(e.Dir(), "shard1-"+name), o)
			if err != nil {
				return fmt.Errorf("shard1 replica %s: %w", name, err)
			}
			e.AddCleanup(mgr.Stop)
			shard1 = append(shard1, mgr)
		}
		// The default shard, started last: its webhooks are the ones
		// registered (in development mode each manager registers its own
		// URL; in a cluster every shard registers the same Service).
		if err := e.Manager.Restart(ctx, e.ControlPlane, "--watch-label-selector=!"+shardKey); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "shards: default (the framework's manager) and shard1 (two replicas)")
		return nil
	})
}
