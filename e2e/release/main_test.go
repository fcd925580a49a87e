//go:build e2e

// Package release_test runs releases end to end on a real control plane:
// the Kruise guide's examples, every workload style, the ways a release
// can be interrupted, and traffic through Ingresses and the Gateway API.
package release_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) {
	os.Exit(func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		e, err := framework.Start(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e environment:", err)
			return 1
		}
		defer e.Stop()
		env = e
		// The Gateway API's CRDs, from the module go.mod requires. The
		// manager reads HTTPRoutes as unstructured objects, uncached, so
		// it needs no restart to see them.
		gw, err := framework.ModuleDir("sigs.k8s.io/gateway-api")
		if err == nil {
			var files []string
			files, err = filepath.Glob(filepath.Join(gw, "config", "crd", "standard", "gateway.networking.k8s.io_*.yaml"))
			if err == nil {
				err = framework.InstallCRDFiles(ctx, e.Client, files...)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "Gateway API CRDs:", err)
			return 1
		}
		return m.Run()
	}())
}
