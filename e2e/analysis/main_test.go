//go:build e2e

// Package analysis_test runs AnalysisRuns on a real control plane against
// a real Prometheus that scrapes the application-metrics simulator: the
// pods are kwok's, their traffic the simulator's, chosen by image tag.
// Runs are built from AnalysisTemplates with analysis/run.Build, as the
// release engine will.
package analysis_test

import (
	"testing"

	"github.com/sluicehq/sluice/e2e/framework"
)

var (
	env     *framework.Env
	metrics *framework.Metrics
)

func TestMain(m *testing.M) { framework.MainWithMetrics(m, &env, &metrics) }
