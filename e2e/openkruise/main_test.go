//go:build e2e

// Package openkruise_test checks the OpenKruise stand-in (devenv/openkruise)
// on the real control plane, without Sluice involved: the objects are
// created and changed directly, and what the stand-in does with them —
// pods, labels, status, revisions, defaults — is what OpenKruise v1.9 does.
package openkruise_test

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/devenv/openkruise"
	"github.com/sluicehq/sluice/e2e/framework"
)

var env *framework.Env

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
		return nil
	})
}
