//go:build e2e

// Package operability_test proves the shipped dashboard and alert rules
// against real releases: a Prometheus scrapes the manager and the
// application-metrics simulator, loads deploy/prometheus/alerts.yaml, and
// every panel query of deploy/grafana/sluice.json must return data.
package operability_test

import (
	"testing"

	"github.com/sluicehq/sluice/e2e/framework"
)

var (
	env     *framework.Env
	metrics *framework.Metrics
)

func TestMain(m *testing.M) { framework.MainWithMetrics(m, &env, &metrics) }
