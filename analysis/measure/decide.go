package measure

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// Verdict is the run's phase and what status shows about it.
type Verdict struct {
	Phase v1alpha1.AnalysisPhase
	// Message names the metric that decided, its value and the condition.
	Message string
	// Summary counts metrics by phase for the METRICS printer column.
	Summary string
}

// Done reports whether the run is over.
func (v Verdict) Done() bool { return v.Phase.Completed() }

// severity orders phases from best to worst, as Argo Rollouts does.
var severity = map[v1alpha1.AnalysisPhase]int{
	v1alpha1.AnalysisSuccessful:   0,
	v1alpha1.AnalysisRunning:      1,
	v1alpha1.AnalysisPending:      2,
	v1alpha1.AnalysisInconclusive: 3,
	v1alpha1.AnalysisError:        4,
	v1alpha1.AnalysisFailed:       5,
}

// summaryOrder is the order phases appear in in the summary.
var summaryOrder = []v1alpha1.AnalysisPhase{
	v1alpha1.AnalysisSuccessful, v1alpha1.AnalysisFailed, v1alpha1.AnalysisError,
	v1alpha1.AnalysisInconclusive, v1alpha1.AnalysisRunning, v1alpha1.AnalysisPending,
}

// Decide is the run's verdict from its metrics' results. Dry-run metrics
// never decide, but the summary and the message show them. The verdict
// is final as soon as a deciding metric is Failed, Error or Inconclusive
// (waiting longer would only delay the reaction), or when every deciding
// metric is Successful. A run of dry-run metrics only ends when they all
// do, and is Successful.
func Decide(results []v1alpha1.MetricResult) Verdict {
	var deciding, dry []v1alpha1.MetricResult
	for _, r := range results {
		if r.DryRun {
			dry = append(dry, r)
		} else {
			deciding = append(deciding, r)
		}
	}
	v := Verdict{Summary: summary(deciding, dry)}
	judged := deciding
	if len(deciding) == 0 {
		judged = dry
	}

	var worst *v1alpha1.MetricResult
	allDone := true
	for i := range judged {
		r := &judged[i]
		phase := phaseOf(r)
		if !phase.Completed() {
			allDone = false
		}
		if phase.Completed() && phase != v1alpha1.AnalysisSuccessful && (worst == nil || severity[phase] > severity[worst.Phase]) {
			worst = r
		}
	}
	switch {
	case worst != nil && len(deciding) > 0:
		v.Phase = worst.Phase
		v.Message = fmt.Sprintf("metric %q %s: %s", worst.Name, worst.Phase, worst.Message)
	case allDone && len(judged) > 0:
		v.Phase = v1alpha1.AnalysisSuccessful
		v.Message = successMessage(deciding, dry)
	default:
		v.Phase = v1alpha1.AnalysisRunning
		// Errors being retried are worth seeing before they decide.
		for _, r := range judged {
			if r.ConsecutiveError > 0 && !r.Phase.Completed() {
				v.Message = fmt.Sprintf("metric %q: %d errors in a row, retrying: %s", r.Name, r.ConsecutiveError, r.LastError)
				break
			}
		}
	}
	return v
}

func phaseOf(r *v1alpha1.MetricResult) v1alpha1.AnalysisPhase {
	if r.Phase == "" {
		return v1alpha1.AnalysisPending
	}
	return r.Phase
}

func successMessage(deciding, dry []v1alpha1.MetricResult) string {
	msg := fmt.Sprintf("all %d metrics Successful", len(deciding))
	if len(deciding) == 1 {
		msg = fmt.Sprintf("metric %q Successful: %s", deciding[0].Name, deciding[0].Message)
	}
	if len(deciding) == 0 {
		msg = "only dry-run metrics: nothing to decide"
	}
	for _, r := range dry {
		if p := phaseOf(&r); p != v1alpha1.AnalysisSuccessful && p.Completed() {
			msg += fmt.Sprintf("; dry-run metric %q %s (ignored): %s", r.Name, p, r.Message)
		}
	}
	return msg
}

func summary(deciding, dry []v1alpha1.MetricResult) string {
	s := countPhases(deciding)
	if len(dry) > 0 {
		if s != "" {
			s += "; "
		}
		s += "dry run: " + countPhases(dry)
	}
	return s
}

func countPhases(rs []v1alpha1.MetricResult) string {
	counts := map[v1alpha1.AnalysisPhase]int{}
	for i := range rs {
		counts[phaseOf(&rs[i])]++
	}
	var parts []string
	for _, p := range summaryOrder {
		if counts[p] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[p], p))
		}
	}
	return strings.Join(parts, ", ")
}
