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
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/e2e/framework"
)

var env *framework.Env

// TestMain installs OpenKruise's CRDs, then restarts the manager: it
// watches OpenKruise's kinds when their CRDs exist at its start.
func TestMain(m *testing.M) {
	framework.MainWith(m, &env, func(ctx context.Context, e *framework.Env) error {
		if err := framework.InstallCRDFiles(ctx, e.Client, filepath.Join(framework.RepoRoot(), "e2e", "kruise", "testdata", "crds.yaml")); err != nil {
			return err
		}
		return e.Manager.Restart(ctx, e.ControlPlane)
	})
}
