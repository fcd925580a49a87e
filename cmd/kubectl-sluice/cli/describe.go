package cli

import (
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/intstr"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// routeOf describes where a step sends traffic: "50%", "header
// User-Agent=Andriod", or "" when the step routes nothing.
func routeOf(s v1beta1.CanaryStep) string {
	var parts []string
	if s.Traffic != nil {
		parts = append(parts, *s.Traffic)
	}
	for _, m := range s.Matches {
		if c := m.String(); c != "" {
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, ", or ")
}

// currentRoute is the traffic the new version gets now: the current
// step's route once it is routed, the previous step's before, "0%" when
// everything goes to stable, "" without traffic routing or a release.
func currentRoute(s state) string {
	if !s.routed || !s.progressing() || s.common == nil {
		return ""
	}
	switch s.reason {
	case reasonAborted, v1beta1.ProgressingReasonCancelling:
		return "0%"
	case v1beta1.ProgressingReasonFinalising:
		return ""
	}
	i := s.stepIndex()
	if i < 1 || int(i) > len(s.steps) {
		return ""
	}
	orZero := func(r string) string {
		if r == "" {
			return "0%"
		}
		return r
	}
	switch s.stepState() {
	case v1beta1.CanaryStepStateMetricsAnalysis, v1beta1.CanaryStepStatePaused, v1beta1.CanaryStepStateReady, v1beta1.CanaryStepStateCompleted:
		return orZero(routeOf(s.steps[i-1]))
	case v1beta1.CanaryStepStateUpgrade, v1beta1.CanaryStepStateTrafficRouting:
		// A step without a route sent everything to stable before its batch.
		if routeOf(s.steps[i-1]) == "" {
			return "0%"
		}
	}
	if i == 1 {
		return "0%"
	}
	return orZero(routeOf(s.steps[i-2]))
}

// target is the number of new pods step s asks for out of replicas
// (rounded up, as the controller does); -1 when replicas is unknown.
func target(s v1beta1.CanaryStep, replicas int32) int32 {
	if replicas < 0 {
		return -1
	}
	if s.Replicas == nil {
		return replicas
	}
	v, err := intstr.GetScaledValueFromIntOrPercent(s.Replicas, int(replicas), true)
	if err != nil {
		return -1
	}
	return min(int32(v), replicas)
}

func replicasText(s v1beta1.CanaryStep) string {
	if s.Replicas == nil {
		return "100%"
	}
	return s.Replicas.String()
}

func pauseText(s v1beta1.CanaryStep) string {
	if s.Pause.Duration == nil {
		return "approval"
	}
	return (time.Duration(*s.Pause.Duration) * time.Second).String()
}

// verdict is the last analysis verdict of the release: the step run's,
// or the background run's when that one is worse.
func verdict(r *v1beta1.Rollout) string {
	a := r.Status.Analysis
	if a == nil {
		return ""
	}
	text := func(rs *analysisv1alpha1.RunStatus) string {
		p := string(rs.Phase)
		if p == "" {
			p = "Pending"
		}
		if rs.Overridden {
			p += " (approved)"
		}
		return p
	}
	switch {
	case a.BackgroundRun != nil && a.BackgroundRun.Phase.Completed() && a.BackgroundRun.Phase != analysisv1alpha1.AnalysisSuccessful:
		return text(a.BackgroundRun)
	case a.StepRun != nil:
		return text(a.StepRun)
	case a.BackgroundRun != nil:
		return text(a.BackgroundRun)
	}
	return ""
}

// stateText is the short state of a Rollout: its step state, or what
// overrides it (Aborted, Paused, Held, Finalising, ...).
func stateText(s state) string {
	if !s.progressing() {
		if s.stepState() == v1beta1.CanaryStepStateCompleted {
			return string(v1beta1.CanaryStepStateCompleted)
		}
		return ""
	}
	switch s.reason {
	case reasonAborted, v1beta1.ProgressingReasonPaused, v1beta1.ProgressingReasonFinalising,
		v1beta1.ProgressingReasonCancelling, v1beta1.ProgressingReasonInitializing:
		return s.reason
	}
	if s.heldBy != "" {
		return "Held"
	}
	return string(s.stepState())
}

func age(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
