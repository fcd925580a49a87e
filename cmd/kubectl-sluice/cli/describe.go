package cli

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// routeOf describes where a step sends traffic: "50%", "header
// User-Agent=Andriod", or "" when the step routes nothing.
func routeOf(s v1beta1.CanaryStep) string { return routeText(s.Traffic, s.Matches) }

// routeText joins a weight and request matches: "50%, or header x=y".
func routeText(weight *string, matches []v1beta1.HttpRouteMatch) string {
	var parts []string
	if weight != nil {
		parts = append(parts, *weight)
	}
	for _, m := range matches {
		if c := m.String(); c != "" {
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, ", or ")
}

// currentRoute is the traffic the new version gets now, as last applied
// to the routing objects (status.release.traffic): "0%" when everything
// goes to stable, "" without traffic routing or a release.
func currentRoute(s state) string {
	if !s.routed || !s.progressing() {
		return ""
	}
	t := s.traffic
	if t == nil {
		return "0%"
	}
	var weight *string
	if t.Weight != nil {
		w := fmt.Sprintf("%d%%", *t.Weight)
		weight = &w
	}
	if r := routeText(weight, t.Matches); r != "" {
		return r
	}
	return "0%"
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
	if s.heldByAnalysis() {
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
