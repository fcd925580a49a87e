//go:build e2e

// Package kruise_test releases OpenKruise's CloneSet and Advanced
// StatefulSet. OpenKruise's controllers cannot run here (no module, no
// image), so its CRDs are installed and a stand-in plays the one part of
// the CloneSet / StatefulSet controller a release depends on: status
// following the partition (see standIn). Everything Sluice does — the
// freeze webhook, the adapter's writes, the Rollout — is the real thing.
package kruise_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
		// The manager watches OpenKruise's kinds when their CRDs exist at
		// its start: install them, then restart it.
		if err := installCRDs(ctx, e.Client); err != nil {
			fmt.Fprintln(os.Stderr, "OpenKruise CRDs:", err)
			return 1
		}
		if err := e.Manager.Restart(ctx, e.ControlPlane); err != nil {
			fmt.Fprintln(os.Stderr, "restarting the manager:", err)
			return 1
		}
		return m.Run()
	}())
}

func installCRDs(ctx context.Context, c client.Client) error {
	raw, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "e2e", "kruise", "testdata", "crds.yaml"))
	if err != nil {
		return err
	}
	objs, err := framework.Objects(raw)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return err
		}
	}
	return framework.Poll(ctx, time.Minute, func() (bool, error) {
		for _, o := range objs {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, client.ObjectKey{Name: o.GetName()}, crd); err != nil {
				return false, err
			}
			established := false
			for _, cond := range crd.Status.Conditions {
				established = established || (cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue)
			}
			if !established {
				return false, nil
			}
		}
		return true, nil
	})
}
