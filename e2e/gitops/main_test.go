//go:build e2e

// Package gitops_test proves Sluice's Argo CD and Karmada customizations
// (deploy/argocd, deploy/karmada) on real releases: the local control
// plane, Prometheus, the application-metrics simulator, sluice-controller
// and the OpenKruise stand-in take releases through every state of
// deploy/captured. In each state the Argo CD health check and action
// discovery and the Karmada health run on the live object, as those tools
// run them, and must say what the state means; Argo CD's actions are
// applied to the live Rollout and must move the release; Karmada's
// retention is applied to the live workload mid-release and must hold the
// batch. SLUICE_UPDATE_CAPTURES=1 writes the objects to deploy/captured.
package gitops_test

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/devenv/manager"
	"github.com/sluicehq/sluice/devenv/openkruise"
	"github.com/sluicehq/sluice/e2e/framework"
)

var (
	env     *framework.Env
	metrics *framework.Metrics
)

// TestMain installs Sluice's and OpenKruise's CRDs and starts the
// OpenKruise stand-in before the manager, which then watches OpenKruise's
// kinds, and points the manager at the environment's Prometheus.
func TestMain(m *testing.M) {
	framework.MainWithOptions(m, framework.Options{
		Metrics: true,
		Install: func(ctx context.Context, e *framework.Env, mt *framework.Metrics) (manager.Options, error) {
			if err := manager.InstallCRDs(ctx, e.Client); err != nil {
				return manager.Options{}, err
			}
			cfg := e.ControlPlane.RESTConfig()
			if err := openkruise.Install(ctx, cfg); err != nil {
				return manager.Options{}, err
			}
			s, err := openkruise.Start(ctx, cfg, openkruise.Options{})
			if err != nil {
				return manager.Options{}, err
			}
			e.AddCleanup(s.Stop)
			return manager.Options{Args: []string{"--prometheus-address=" + mt.Prometheus.URL()}}, nil
		},
	}, &env, &metrics)
}
