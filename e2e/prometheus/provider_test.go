//go:build e2e

// Package prometheus_test checks analysis/prometheus, the metric provider,
// against a real Prometheus: the shapes of its answers and its errors as
// they end up in an AnalysisRun's status. No control plane is needed.
package prometheus_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/analysis/measure"
	"github.com/sluicehq/sluice/analysis/prometheus"
	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/devenv/controlplane"
)

// TestProvider runs queries of every result shape against a real
// Prometheus (built by `make tools`), and reads its errors: a query it
// rejects, and a server that is gone.
func TestProvider(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	prom, err := controlplane.StartPrometheus(ctx, t.TempDir(), controlplane.PrometheusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prom.Stop() })
	p := &prometheus.Provider{DefaultAddress: prom.URL()}
	spec := &v1alpha1.PrometheusProvider{}
	now := time.Now()
	q := func(query string, w *prometheus.Window) (measure.Value, error) {
		return p.Query(ctx, prometheus.Request{Provider: spec, Query: query, Range: w, Time: now})
	}

	if v, err := q("scalar(vector(1.5))", nil); err != nil || v.Kind != measure.Scalar || v.String() != "1.5" {
		t.Errorf("scalar: %v %v", v, err)
	}
	if v, err := q(`vector(2) or vector(3)`, nil); err != nil || v.String() != "[2]" {
		t.Errorf("vector: %v %v", v, err)
	}
	if v, err := q(`absent_series_xyz`, nil); err != nil || !v.NoData() || v.String() != "[]" {
		t.Errorf("empty: %v %v", v, err)
	}
	if v, err := q(`vector(0) / vector(0)`, nil); err != nil || !v.NoData() || !math.IsNaN(v.Samples[0]) {
		t.Errorf("NaN: %v %v", v, err)
	}
	if v, err := q(`vector(4)`, &prometheus.Window{Lookback: 10 * time.Second, Step: time.Second}); err != nil || v.Kind != measure.Matrix || len(v.Samples) != 11 {
		t.Errorf("range: %v %v", v, err)
	}
	if _, err := q(`up[1m]`, nil); err == nil || !strings.Contains(err.Error(), "answered the instant query with a range vector (matrix)") {
		t.Errorf("a matrix for an instant query: %v", err)
	}
	if _, err := q(`sum(`, nil); err == nil || !strings.Contains(err.Error(), "Prometheus at "+prom.URL()+" rejected the query: bad_data") {
		t.Errorf("bad query: %v", err)
	}
	_ = prom.Stop()
	if _, err := q("1", nil); err == nil || !strings.Contains(err.Error(), "Prometheus at "+prom.URL()+" could not be reached") {
		t.Errorf("stopped: %v", err)
	}
}
