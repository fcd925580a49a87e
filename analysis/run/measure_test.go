package run

import (
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/analysis/measure"
	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// Measure judges one measurement as a run does: the value against the
// conditions, no data by the policy, a query error as Error.
func TestMeasure(t *testing.T) {
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	metric := func(query, success string, noData v1alpha1.NoDataPolicy) *v1alpha1.Metric {
		return &v1alpha1.Metric{Name: "m", SuccessCondition: success, NoData: noData,
			Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusProvider{Query: query}}}
	}
	cases := []struct {
		name  string
		m     *v1alpha1.Metric
		phase v1alpha1.AnalysisPhase
		value string
	}{
		{"passes", metric("vector(0.01)", "result[0] < 0.05", ""), v1alpha1.AnalysisSuccessful, "[0.01]"},
		{"fails", metric("vector(0.2)", "result[0] < 0.05", ""), v1alpha1.AnalysisFailed, "[0.2]"},
		{"no data, default policy", metric("absent_metric_xyz", "result[0] < 0.05", ""), v1alpha1.AnalysisInconclusive, "[]"},
		{"no data counts as success", metric("absent_metric_xyz", "result[0] < 0.05", v1alpha1.NoDataSuccessful), v1alpha1.AnalysisSuccessful, "[]"},
		{"unknown query", metric("nope", "result[0] < 0.05", ""), v1alpha1.AnalysisError, ""},
		{"no provider", &v1alpha1.Metric{Name: "m"}, v1alpha1.AnalysisError, ""},
	}
	for _, c := range cases {
		q := &fakeQuerier{answers: promAnswers()}
		got := Measure(t.Context(), q, func() time.Time { return at }, "demo", c.m)
		if got.Phase != c.phase || got.Value != c.value {
			t.Errorf("%s: got %s %q (%s), want %s %q", c.name, got.Phase, got.Value, got.Message, c.phase, c.value)
		}
		if len(q.got) > 0 && (q.got[0].Namespace != "demo" || !q.got[0].Time.Equal(at)) {
			t.Errorf("%s: queried %+v, want namespace demo at %s", c.name, q.got[0], at)
		}
	}
}

// An answer Prometheus gave but that cannot be judged is an Error that
// keeps what Prometheus warned of.
func TestMeasureErrorKeepsWarnings(t *testing.T) {
	q := &fakeQuerier{answers: map[string]answer{
		"up[1m]": {v: measure.Value{Warnings: []string{"results truncated"}}, err: errors.New("a range vector (matrix) for an instant query")},
	}}
	m := &v1alpha1.Metric{Name: "m", SuccessCondition: "result[0] < 1",
		Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusProvider{Query: "up[1m]"}}}
	got := Measure(t.Context(), q, time.Now, "demo", m)
	if got.Phase != v1alpha1.AnalysisError || len(got.Warnings) != 1 || got.Warnings[0] != "results truncated" {
		t.Errorf("got %s %q warnings %q, want Error with Prometheus' warning", got.Phase, got.Message, got.Warnings)
	}
}
