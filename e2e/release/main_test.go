//go:build e2e

// Package release_test runs releases end to end on a real control plane:
// the Kruise guide's Example 4 and the ways a release can be interrupted.
package release_test

import (
	"testing"

	"github.com/sluicehq/sluice/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
