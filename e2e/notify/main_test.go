//go:build e2e

// Package notify_test runs notifications end to end: real releases on the
// local control plane, analysed by a real Prometheus, whose events reach a
// local HTTP receiver as webhook and Slack messages, once each, across a
// restart of the manager, without a slow or absent receiver holding up a
// release.
package notify_test

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/devenv/manager"
	"github.com/sluicehq/sluice/e2e/framework"
)

var (
	env     *framework.Env
	metrics *framework.Metrics
)

// TestMain runs the manager with notifications on, retrying quickly so a
// receiver that is down is given up on within seconds.
func TestMain(m *testing.M) {
	framework.MainWithOptions(m, framework.Options{
		Metrics: true,
		Install: func(ctx context.Context, e *framework.Env, mt *framework.Metrics) (manager.Options, error) {
			if err := manager.InstallCRDs(ctx, e.Client); err != nil {
				return manager.Options{}, err
			}
			return manager.Options{Args: []string{
				"--prometheus-address=" + mt.Prometheus.URL(),
				"--notifications",
				"--notifications-attempts=3",
				"--notifications-backoff=100ms",
				"--notifications-max-backoff=500ms",
				"--notifications-timeout=2s",
			}}, nil
		},
	}, &env, &metrics)
}
