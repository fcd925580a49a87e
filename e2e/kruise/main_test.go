//go:build e2e

// Package kruise_test releases OpenKruise's CloneSet and Advanced
// StatefulSet. OpenKruise's controllers cannot run here (no module, no
// image), so the stand-in of devenv/openkruise plays them — real pods,
// labels, status, revisions and the defaulting webhook as OpenKruise v1.9
// has them. Everything Sluice does — the freeze webhook, the adapter's
// writes, the Rollout, the traffic routing — is the real thing.
package kruise_test

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/devenv/openkruise"
	"github.com/sluicehq/sluice/e2e/framework"
)

var env *framework.Env

// TestMain installs OpenKruise's CRDs and starts the stand-in, then
// restarts the manager: it watches OpenKruise's kinds when their CRDs
// exist at its start.
func TestMain(m *testing.M) {
	framework.MainWith(m, &env, func(ctx context.Context, e *framework.Env) error {
		cfg := e.ControlPlane.RESTConfig()
		if err := openkruise.Install(ctx, cfg); err != nil {
			return err
		}
		s, err := openkruise.Start(ctx, cfg, openkruise.Options{})
		if err != nil {
			return err
		}
		e.AddCleanup(s.Stop)
		return e.Manager.Restart(ctx, e.ControlPlane)
	})
}
