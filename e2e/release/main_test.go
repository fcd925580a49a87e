//go:build e2e

// Package release_test runs releases end to end on a real control plane:
// the Kruise guide's examples, every workload style, the ways a release
// can be interrupted, and traffic through Ingresses and the Gateway API.
package release_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.MainWith(m, &env, installGatewayAPI) }

// installGatewayAPI installs the Gateway API's CRDs, from the module
// go.mod requires. The manager reads HTTPRoutes as unstructured objects,
// uncached, so it needs no restart to see them.
func installGatewayAPI(ctx context.Context, e *framework.Env) error {
	gw, err := framework.ModuleDir("sigs.k8s.io/gateway-api")
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(gw, "config", "crd", "standard", "gateway.networking.k8s.io_*.yaml"))
	if err != nil {
		return err
	}
	return framework.InstallCRDFiles(ctx, e.Client, files...)
}
