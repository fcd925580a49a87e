//go:build e2e

package analysis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/e2e/framework"
)

// errorRate is the canary's share of 5xx over the last 10s. Pods without
// series (silent) give an empty result, pods without traffic (idle) NaN.
const errorRate = `sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}",code=~"5.."}[10s]))
  / sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}"}[10s]))`

// errorRateTemplate is an AnalysisTemplate with the error-rate metric;
// extra is added to the metric (YAML at its indentation).
func errorRateTemplate(name, extra string) string {
	return fmt.Sprintf(`apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: %s}
spec:
  metrics:
  - name: error-rate
    initialDelay: 4s
    interval: 1s
    count: 3
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        query: %q
%s`, name, errorRate, extra)
}

func TestHealthySucceeds(t *testing.T) {
	f := newFixture(t)
	hash := f.deploy("web", "app:v2", 2)
	f.template(errorRateTemplate("error-rate", ""))
	name := f.startRun(hash, "", "error-rate")
	r := f.waitDone(name, v1alpha1.AnalysisSuccessful, `metric "error-rate" Successful: 3 of 3 measurements passed`, "value [0]")
	m := r.Status.MetricResults[0]
	if m.Count != 3 || len(m.Measurements) != 3 || !strings.Contains(m.Query, `pod_template_hash="`+hash+`"`) || r.Status.Summary != "1 Successful" {
		t.Errorf("status: %s", describe(r))
	}
	f.event(name, "MetricSuccessful")
}

func TestErrorsFail(t *testing.T) {
	f := newFixture(t)
	hash := f.deploy("web", "app:v2-errors", 2)
	f.template(errorRateTemplate("error-rate", ""))
	name := f.startRun(hash, "", "error-rate")
	r := f.waitDone(name, v1alpha1.AnalysisFailed, `metric "error-rate" Failed: value [0.`, `successCondition "result[0] < 0.05" is false`)
	v := r.Status.MetricResults[0].Measurements[0].Value
	if rate, err := strconv.ParseFloat(strings.Trim(v, "[]"), 64); err != nil || rate < 0.1 || rate > 0.3 {
		t.Errorf("error rate %s, want about 0.2", v)
	}
	if e := f.event(name, "MetricFailed"); !strings.Contains(e.Note, "error-rate") || e.Type != "Warning" {
		t.Errorf("event %s %q", e.Type, e.Note)
	}
}

func TestNoData(t *testing.T) {
	for _, tc := range []struct {
		name, image, policy string
		phase               v1alpha1.AnalysisPhase
		msg                 string
	}{
		{"empty-default", "app:v2-silent", "", v1alpha1.AnalysisInconclusive, "no data (empty result): noData policy Inconclusive"},
		{"empty-failed", "app:v2-silent", "Failed", v1alpha1.AnalysisFailed, "no data (empty result): noData policy Failed"},
		{"nan-default", "app:v2-idle", "", v1alpha1.AnalysisInconclusive, "value [NaN] is NaN): noData policy Inconclusive"},
		{"nan-failed", "app:v2-idle", "Failed", v1alpha1.AnalysisFailed, "value [NaN] is NaN): noData policy Failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			hash := f.deploy("web", tc.image, 1)
			extra := ""
			if tc.policy != "" {
				extra = "    noData: " + tc.policy + "\n"
			}
			f.template(errorRateTemplate("error-rate", extra))
			f.waitDone(f.startRun(hash, "", "error-rate"), tc.phase, `metric "error-rate" `+string(tc.phase), tc.msg)
		})
	}
}

func TestDryRunDoesNotDecide(t *testing.T) {
	f := newFixture(t)
	hash := f.deploy("web", "app:v2", 1)
	f.template(errorRateTemplate("error-rate", `  - name: strict
    dryRun: true
    initialDelay: 4s
    successCondition: result[0] < 0
    provider:
      prometheus:
        query: `+fmt.Sprintf("%q", errorRate)+"\n"))
	r := f.waitDone(f.startRun(hash, "", "error-rate"), v1alpha1.AnalysisSuccessful, `dry-run metric "strict" Failed (ignored)`)
	if r.Status.Summary != "1 Successful; dry run: 1 Failed" {
		t.Errorf("summary %q", r.Status.Summary)
	}
}

// TestPrometheusDown stops a Prometheus of the test's own (the shared one
// serves the other tests) while a run measures.
func TestPrometheusDown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart bool
	}{{"error-after-limit", false}, {"recovers-when-restarted", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			prom, err := framework.StartPrometheusFor(f.ctx, t.TempDir(), metrics.SimulatorAddress)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = prom.Stop() })
			hash := f.deploy("web", "app:v2", 1)
			limit, count := 3, 3
			if tc.restart {
				limit, count = 20, 4
			}
			f.template(fmt.Sprintf(`apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  metrics:
  - name: error-rate
    initialDelay: 4s
    interval: 2s
    count: %d
    consecutiveErrorLimit: %d
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        address: %s
        timeout: 2s
        query: %q
`, count, limit, prom.URL(), errorRate))
			name := f.startRun(hash, "", "error-rate")
			f.wait(name, "first measurement", time.Minute, func(r *v1alpha1.AnalysisRun) bool {
				return len(r.Status.MetricResults) > 0 && r.Status.MetricResults[0].Successful >= 1
			})
			if err := prom.Stop(); err != nil {
				t.Fatal(err)
			}
			want := "Prometheus at " + prom.URL() + " could not be reached"
			if !tc.restart {
				r := f.waitDone(name, v1alpha1.AnalysisError, `metric "error-rate" Error: `, want, "4 errors in a row, consecutiveErrorLimit 3")
				if m := r.Status.MetricResults[0]; m.Error != 4 || m.Count != 1 || !strings.Contains(m.LastError, want) {
					t.Errorf("errors counted as measurements: %s", describe(r))
				}
				return
			}
			r := f.wait(name, "errors", time.Minute, func(r *v1alpha1.AnalysisRun) bool { return r.Status.MetricResults[0].ConsecutiveError >= 2 })
			if r.Status.Phase != v1alpha1.AnalysisRunning || !strings.Contains(r.Status.Message, "errors in a row, retrying: "+want) {
				t.Errorf("while down: %s", describe(r))
			}
			ctx, cancel := context.WithTimeout(f.ctx, time.Minute)
			defer cancel()
			if err := prom.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			r = f.waitDone(name, v1alpha1.AnalysisSuccessful, "4 of 4 measurements passed")
			if m := r.Status.MetricResults[0]; m.Error < 2 || m.ConsecutiveError != 0 {
				t.Errorf("after restart: %s", describe(r))
			}
		})
	}
}

// latencyBaselineTemplate judges the canary's mean latency against the
// stable pods' over 15s with the Mann-Whitney test: 20% slower at 95%
// confidence fails, without any absolute threshold.
func latencyBaselineTemplate() string {
	const meanLatency = `sum(rate(http_request_duration_seconds_sum{namespace="{{ .namespace }}",pod_template_hash="{{ .%[1]s }}"}[5s]))
  / sum(rate(http_request_duration_seconds_count{namespace="{{ .namespace }}",pod_template_hash="{{ .%[1]s }}"}[5s]))`
	return fmt.Sprintf(`apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: latency}
spec:
  metrics:
  - name: latency
    initialDelay: 20s
    provider:
      prometheus:
        query: %q
    baseline:
      query: %q
      window: 15s
      step: 1s
      direction: Increase
      confidencePercent: 95
      allowedChangePercent: 20
      minSamples: 10
`, fmt.Sprintf(meanLatency, "canaryRevision"), fmt.Sprintf(meanLatency, "stableRevision"))
}

// TestBaseline compares the canary's mean latency with stable's over a
// window with the Mann-Whitney judge, without any absolute threshold.
func TestBaseline(t *testing.T) {
	for _, tc := range []struct {
		name, canaryImage string
		phase             v1alpha1.AnalysisPhase
		msg               string
	}{
		{"slow-canary-fails", "app:v2-slow", v1alpha1.AnalysisFailed, "canary is significantly higher than baseline"},
		{"same-distribution-passes", "app:v2", v1alpha1.AnalysisSuccessful, `metric "latency" Successful`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			stable := f.deploy("web-stable", "app:v1", 2)
			canary := f.deploy("web-canary", tc.canaryImage, 2)
			f.template(latencyBaselineTemplate())
			r := f.waitDone(f.startRun(canary, stable, "latency"), tc.phase, tc.msg)
			v := r.Status.MetricResults[0].Measurements[0].Value
			if !strings.Contains(v, "canary median") || !strings.Contains(v, "n=") {
				t.Errorf("value %q", v)
			}
			t.Logf("%s: %s", r.Status.Message, v)
		})
	}
}
