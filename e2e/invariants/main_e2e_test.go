//go:build e2e

package invariants_test

import (
	"testing"

	"github.com/sluicehq/sluice/e2e/framework"
)

var env *framework.Env

// TestMain runs the checker's own e2e tests on a real control plane with
// the real sluice-controller.
func TestMain(m *testing.M) { framework.Main(m, &env) }
