package measure

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

func res(name string, p v1alpha1.AnalysisPhase, dry bool) v1alpha1.MetricResult {
	return v1alpha1.MetricResult{Name: name, Phase: p, DryRun: dry, Message: "msg-" + name}
}

func TestDecide(t *testing.T) {
	const P = v1alpha1.AnalysisPending
	for _, tc := range []struct {
		name    string
		in      []v1alpha1.MetricResult
		phase   v1alpha1.AnalysisPhase
		summary string
		msg     string
	}{
		{"all pending", []v1alpha1.MetricResult{res("a", P, false), res("b", "", false)}, R, "2 Pending", ""},
		{"one running", []v1alpha1.MetricResult{res("a", S, false), res("b", R, false)}, R, "1 Successful, 1 Running", ""},
		{"all successful", []v1alpha1.MetricResult{res("a", S, false), res("b", S, false)}, S, "2 Successful", "all 2 metrics Successful"},
		{"one successful names it", []v1alpha1.MetricResult{res("a", S, false)}, S, "1 Successful", `metric "a" Successful: msg-a`},
		{"failed decides at once", []v1alpha1.MetricResult{res("a", F, false), res("b", R, false)}, F, "1 Failed, 1 Running", `metric "a" Failed: msg-a`},
		{"failed is worse than error", []v1alpha1.MetricResult{res("a", E, false), res("b", F, false)}, F, "1 Failed, 1 Error", `metric "b" Failed`},
		{"error is worse than inconclusive", []v1alpha1.MetricResult{res("a", I, false), res("b", E, false)}, E, "1 Error, 1 Inconclusive", `metric "b" Error`},
		{"inconclusive", []v1alpha1.MetricResult{res("a", S, false), res("b", I, false)}, I, "1 Successful, 1 Inconclusive", `metric "b" Inconclusive`},
		{"dry run failure ignored", []v1alpha1.MetricResult{res("a", S, false), res("d", F, true)}, S, "1 Successful; dry run: 1 Failed", `dry-run metric "d" Failed (ignored): msg-d`},
		{"dry run does not hold the run", []v1alpha1.MetricResult{res("a", S, false), res("d", R, true)}, S, "1 Successful; dry run: 1 Running", `metric "a" Successful`},
		{"dry run error while running", []v1alpha1.MetricResult{res("a", R, false), res("d", E, true)}, R, "1 Running; dry run: 1 Error", ""},
		{"only dry run, running", []v1alpha1.MetricResult{res("d", R, true)}, R, "dry run: 1 Running", ""},
		{"only dry run, failed, still successful", []v1alpha1.MetricResult{res("d", F, true)}, S, "dry run: 1 Failed", "only dry-run metrics"},
		{"nothing", nil, R, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Decide(tc.in)
			if v.Phase != tc.phase || v.Summary != tc.summary || !strings.Contains(v.Message, tc.msg) {
				t.Errorf("got %s %q %q, want %s %q %q", v.Phase, v.Summary, v.Message, tc.phase, tc.summary, tc.msg)
			}
			if v.Done() != tc.phase.Completed() {
				t.Errorf("Done() = %v", v.Done())
			}
		})
	}
}

func TestDecideShowsRetriedErrors(t *testing.T) {
	r := res("a", R, false)
	r.ConsecutiveError, r.LastError = 2, "Prometheus at http://x could not be reached"
	v := Decide([]v1alpha1.MetricResult{r})
	if v.Phase != R || !strings.Contains(v.Message, `metric "a": 2 errors in a row, retrying: Prometheus at http://x`) {
		t.Errorf("got %s %q", v.Phase, v.Message)
	}
}
