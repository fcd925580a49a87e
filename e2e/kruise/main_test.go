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
		if err := framework.InstallCRDFiles(ctx, e.Client, filepath.Join(framework.RepoRoot(), "e2e", "kruise", "testdata", "crds.yaml")); err != nil {
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
