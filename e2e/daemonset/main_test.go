//go:build e2e

// Package daemonset_test releases DaemonSets end to end on a real control
// plane with six simulated nodes (one pod each): the native apps/v1
// DaemonSet, held on OnDelete while Sluice replaces its pods batch by
// batch as Kruise Rollout does, and OpenKruise's Advanced DaemonSet
// through its partition (played by the stand-in of devenv/openkruise).
// Every batch is judged by an AnalysisRun against a real Prometheus that
// scrapes the application-metrics simulator. The manager runs with
// --keep-workload-paused-on-rollout-deletion (Kruise's
// KeepWorkloadPausedOnRolloutDeletion), which only acts when a Rollout is
// deleted mid-release (keep_test.go).
package daemonset_test

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/devenv/openkruise"
	"github.com/sluicehq/sluice/e2e/framework"
)

var (
	env     *framework.Env
	metrics *framework.Metrics
)

// nodes is how many pods each DaemonSet runs.
const nodes = 6

// TestMain installs OpenKruise's CRDs and starts the stand-in, then
// restarts the manager (it watches OpenKruise's kinds when their CRDs
// exist at its start) with the keep-paused flag.
func TestMain(m *testing.M) {
	framework.MainWithOptions(m, framework.Options{Metrics: true, Nodes: nodes, Setup: func(ctx context.Context, e *framework.Env) error {
		cfg := e.ControlPlane.RESTConfig()
		if err := openkruise.Install(ctx, cfg); err != nil {
			return err
		}
		s, err := openkruise.Start(ctx, cfg, openkruise.Options{})
		if err != nil {
			return err
		}
		e.AddCleanup(s.Stop)
		return e.Manager.Restart(ctx, e.ControlPlane, "--keep-workload-paused-on-rollout-deletion")
	}}, &env, &metrics)
}
