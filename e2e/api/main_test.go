//go:build e2e

// Package api_test checks the API Sluice serves on a real control plane:
// the Kruise guide's manifests are accepted and converted, and invalid
// objects are rejected at admission with the field at fault, and what would
// stop a release halfway is accepted with a warning naming the field.
package api_test

import (
	"testing"

	"github.com/sluicehq/sluice/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }
