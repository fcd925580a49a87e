//go:build e2e

// Package release_test runs releases end to end on a real control plane:
// the Kruise guide's examples, every workload style, the ways a release
// can be interrupted, and traffic through Ingresses and the Gateway API.
package release_test

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/e2e/framework"
)

var env *framework.Env

// TestMain installs the Gateway API's CRDs too. The manager reads
// HTTPRoutes as unstructured objects, uncached, so it needs no restart to
// see them.
func TestMain(m *testing.M) {
	framework.MainWith(m, &env, func(ctx context.Context, e *framework.Env) error {
		return framework.InstallGatewayAPI(ctx, e.Client)
	})
}
