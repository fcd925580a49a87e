//go:build e2e

// Package traffic_test drives Sluice's traffic providers directly, step by
// step, against a real control plane: the Kruise guide's Ingress examples,
// the Gateway API, Istio through the built-in Lua scripts and user
// scripts. No controller runs; the tests play the release engine.
package traffic_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
	"github.com/sluicehq/sluice/devenv/controlplane"
	"github.com/sluicehq/sluice/devenv/manager"
	"github.com/sluicehq/sluice/e2e/framework"
)

var (
	cp  *controlplane.ControlPlane
	cli client.Client
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var err error
		if cp, err = controlplane.Start(ctx, controlplane.Options{Nodes: 1}); err != nil {
			fmt.Fprintln(os.Stderr, "control plane:", err)
			return 1
		}
		defer cp.Stop()
		if err := setup(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "e2e setup:", err)
			return 1
		}
		return m.Run()
	}())
}

// setup installs Sluice's CRDs, the Gateway API's (from the module go.mod
// requires) and the test CRDs of testdata/crds.yaml.
func setup(ctx context.Context) error {
	var err error
	if cli, err = client.New(cp.RESTConfig(), client.Options{Scheme: app.Scheme()}); err != nil {
		return err
	}
	if err := manager.InstallCRDs(ctx, cli); err != nil {
		return err
	}
	if err := framework.InstallGatewayAPI(ctx, cli); err != nil {
		return err
	}
	return framework.InstallCRDFiles(ctx, cli, "testdata/crds.yaml")
}
