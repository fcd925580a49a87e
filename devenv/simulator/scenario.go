package simulator

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ScenarioLabel chooses a pod's scenario; without it the image tag's
// last dash-separated word does (app:v2-errors → errors).
const ScenarioLabel = "sluice.dev/scenario"

// ScenarioFromAnnotation, on a pod with ScenarioLabel, is the time
// (RFC 3339) from which the label's scenario plays; before it the image
// tag's does. It switches a running pod at a known instant, e.g. a healthy
// version turning bad mid-analysis. Each whole second of the pod's life
// that begins at or after that time plays the label's scenario. Seconds
// already served do not change, so set it a few seconds ahead.
const ScenarioFromAnnotation = "sluice.dev/scenario-from"

// Scenario is how a simulated pod behaves.
type Scenario string

// The scenarios.
const (
	// Healthy serves about 10 requests a second, no 5xx, a median
	// latency of 50ms.
	Healthy Scenario = "healthy"
	// Errors is Healthy with 20% of requests answered 500.
	Errors Scenario = "errors"
	// Slow is Healthy with every latency three times longer.
	Slow Scenario = "slow"
	// Flapping alternates Healthy and Errors every FlapPeriod.
	Flapping Scenario = "flapping"
	// Silent exposes no series at all: queries return empty results.
	Silent Scenario = "silent"
	// Idle exposes its series but serves no request: rates are 0, and
	// ratios of rates are NaN.
	Idle Scenario = "idle"
)

var known = map[Scenario]bool{Healthy: true, Errors: true, Slow: true, Flapping: true, Silent: true, Idle: true}

// ScenarioOf is the pod's scenario: its label, else the suffix of its
// first container's image tag, else Healthy.
func ScenarioOf(pod *corev1.Pod) Scenario {
	if s := Scenario(pod.Labels[ScenarioLabel]); known[s] {
		return s
	}
	return imageScenario(pod)
}

// imageScenario is the suffix of the first container's image tag, else
// Healthy.
func imageScenario(pod *corev1.Pod) Scenario {
	if len(pod.Spec.Containers) == 0 {
		return Healthy
	}
	image := pod.Spec.Containers[0].Image
	image = image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(image, ":")
	if i < 0 {
		return Healthy
	}
	tag := image[i+1:]
	if s := Scenario(tag[strings.LastIndex(tag, "-")+1:]); known[s] {
		return s
	}
	return Healthy
}

// schedule is a pod's scenario over time: before until from, then after.
type schedule struct {
	before, after Scenario
	from          time.Time // zero: after throughout
}

// scheduleOf reads ScenarioLabel and ScenarioFromAnnotation; an
// annotation that does not parse is ignored.
func scheduleOf(pod *corev1.Pod) schedule {
	s := schedule{after: ScenarioOf(pod)}
	if from, err := time.Parse(time.RFC3339Nano, pod.Annotations[ScenarioFromAnnotation]); err == nil && known[Scenario(pod.Labels[ScenarioLabel])] {
		s.before, s.from = imageScenario(pod), from
	}
	return s
}

// at is the scenario at t.
func (s schedule) at(t time.Time) Scenario {
	if t.Before(s.from) {
		return s.before
	}
	return s.after
}
