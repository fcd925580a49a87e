//go:build e2e

// Package plugin_test runs kubectl-sluice (its cobra root, in process)
// against a real control plane with sluice-controller, Prometheus and the
// application-metrics simulator, through real releases of the Kruise
// guide's Example 1: every command is checked by what it does to the
// Rollout, the workload and its pods, and every refusal by its exit code
// and reason.
package plugin_test

import (
	"testing"

	"github.com/sluicehq/sluice/e2e/framework"
)

var (
	env     *framework.Env
	metrics *framework.Metrics
)

func TestMain(m *testing.M) { framework.MainWithMetrics(m, &env, &metrics) }
