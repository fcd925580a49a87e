//go:build e2e

// Package trafficrouting_test releases several workloads through one
// TrafficRouting (rollouts.kruise.io/v1alpha1), Kruise Rollout's
// full-link canary, end to end: the real controller, admission and
// routing objects (a Gateway API HTTPRoute, an nginx Ingress).
package trafficrouting_test

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/e2e/framework"
)

var env *framework.Env

// TestMain installs the Gateway API's CRDs too (the manager reads
// HTTPRoutes unstructured and uncached: it needs no restart).
func TestMain(m *testing.M) {
	framework.MainWith(m, &env, func(ctx context.Context, e *framework.Env) error {
		return framework.InstallGatewayAPI(ctx, e.Client)
	})
}
