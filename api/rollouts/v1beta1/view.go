package v1beta1

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// One view of a release plan and its progress, canary or blue-green. The
// controller, admission, the exported metrics and the kubectl plugin all
// read a Rollout through these, so the switch between the two strategies
// and the rule of what routes traffic are written once.

// IsBlueGreen reports whether the plan is blue-green (old pods kept until
// the switch) rather than canary.
func (s *RolloutStrategy) IsBlueGreen() bool { return s.Canary == nil && s.BlueGreen != nil }

// Steps returns the plan's steps.
func (s *RolloutStrategy) Steps() []CanaryStep {
	switch {
	case s.Canary != nil:
		return s.Canary.Steps
	case s.BlueGreen != nil:
		return s.BlueGreen.Steps
	}
	return nil
}

// Routings returns the plan's traffic routings.
func (s *RolloutStrategy) Routings() []TrafficRoutingRef {
	switch {
	case s.Canary != nil:
		return s.Canary.TrafficRoutings
	case s.BlueGreen != nil:
		return s.BlueGreen.TrafficRoutings
	}
	return nil
}

// RoutesTraffic reports whether the release changes any routing: its own
// (a trafficRoutings entry, which its steps' traffic and matches drive)
// or a shared one (a trafficRoutingRef naming a TrafficRouting, whose own
// strategy applies while the release is in progress).
func (s *RolloutStrategy) RoutesTraffic() bool { return s.RoutesSteps() || s.SharesRouting() }

// RoutesSteps reports whether the steps' traffic and matches route
// anything: the release has a trafficRoutings entry of its own.
func (s *RolloutStrategy) RoutesSteps() bool { return len(s.Routings()) > 0 }

// SharesRouting reports whether the release joins a TrafficRouting
// (trafficRoutingRef, or v1alpha1's rollouts.kruise.io/trafficrouting
// annotation).
func (s *RolloutStrategy) SharesRouting() bool { return s.TrafficRoutingName() != "" }

// TrafficRoutingName returns trafficRoutingRef, canary or blue-green.
func (s *RolloutStrategy) TrafficRoutingName() string {
	switch {
	case s.Canary != nil:
		return s.Canary.TrafficRoutingRef
	case s.BlueGreen != nil:
		return s.BlueGreen.TrafficRoutingRef
	}
	return ""
}

// FailureThresholdOf returns failureThreshold, canary or blue-green.
func (s *RolloutStrategy) FailureThresholdOf() *intstr.IntOrString {
	switch {
	case s.Canary != nil:
		return s.Canary.FailureThreshold
	case s.BlueGreen != nil:
		return s.BlueGreen.FailureThreshold
	}
	return nil
}

// CanaryServiceDisabled returns disableGenerateCanaryService, canary or
// blue-green.
func (s *RolloutStrategy) CanaryServiceDisabled() bool {
	switch {
	case s.Canary != nil:
		return s.Canary.DisableGenerateCanaryService
	case s.BlueGreen != nil:
		return s.BlueGreen.DisableGenerateCanaryService
	}
	return false
}

// ExtraCanaryWorkload reports whether the new version runs in an extra
// canary Deployment (enableExtraWorkloadForCanary).
func (s *RolloutStrategy) ExtraCanaryWorkload() bool {
	return s.Canary != nil && s.Canary.EnableExtraWorkloadForCanary
}

// ReplicasFor is the number of new-version pods the step asks of a
// workload of n replicas: a number, or a percentage rounded up (Kruise
// does the same), never more than n; all of them when unset. Worked
// example: "50%" of 5 is 3; "20%" of 10 is 2; 12 of 10 is 10.
func (s *CanaryStep) ReplicasFor(n int32) int32 {
	if s.Replicas == nil {
		return n
	}
	v, err := intstr.GetScaledValueFromIntOrPercent(s.Replicas, int(n), true)
	if err != nil || v < 0 {
		return 0
	}
	return min(int32(v), n)
}

// HasRoute reports whether the step sends any traffic to the new version.
func (s *CanaryStep) HasRoute() bool { return s.Traffic != nil || len(s.Matches) > 0 }

// Weight is the step's traffic percentage; ok is false when the step has
// none (or it does not parse, which admission prevents).
func (s *CanaryStep) Weight() (w int32, ok bool) {
	if s.Traffic == nil {
		return 0, false
	}
	w, err := ParseTraffic(*s.Traffic)
	return w, err == nil
}

// IsFullRelease reports whether the step's replicas are the literal
// "100%": as the last step it does not pause (Kruise's rule).
func (s *CanaryStep) IsFullRelease() bool {
	return s.Replicas != nil && s.Replicas.Type == intstr.String && s.Replicas.StrVal == "100%"
}

// ParseTraffic reads a traffic value "N%" (or "N") with 0 <= N <= 100.
func ParseTraffic(s string) (int32, error) {
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")))
	if err != nil || n < 0 || n > 100 {
		return 0, fmt.Errorf("traffic %q: want a percentage between 0%% and 100%%", s)
	}
	return int32(n), nil
}

// Progress returns the release's progress, from canaryStatus or
// blueGreenStatus (whichever the strategy writes), or nil.
func (st *RolloutStatus) Progress() *CommonStatus {
	switch {
	case st.CanaryStatus != nil:
		return &st.CanaryStatus.CommonStatus
	case st.BlueGreenStatus != nil:
		return &st.BlueGreenStatus.CommonStatus
	}
	return nil
}

// NewRevision returns the revision being (or last) released.
func (st *RolloutStatus) NewRevision() string {
	switch {
	case st.CanaryStatus != nil:
		return st.CanaryStatus.CanaryRevision
	case st.BlueGreenStatus != nil:
		return st.BlueGreenStatus.UpdatedRevision
	}
	return ""
}

// NewPods returns the new version's pods and ready pods, as last observed.
func (st *RolloutStatus) NewPods() (replicas, ready int32) {
	switch {
	case st.CanaryStatus != nil:
		return st.CanaryStatus.CanaryReplicas, st.CanaryStatus.CanaryReadyReplicas
	case st.BlueGreenStatus != nil:
		return st.BlueGreenStatus.UpdatedReplicas, st.BlueGreenStatus.UpdatedReadyReplicas
	}
	return 0, 0
}

// Condition returns the condition of type t, or nil.
func (st *RolloutStatus) Condition(t RolloutConditionType) *RolloutCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// ProgressingReason is the reason of the Progressing condition, or "".
func (st *RolloutStatus) ProgressingReason() string {
	if c := st.Condition(RolloutConditionProgressing); c != nil {
		return c.Reason
	}
	return ""
}

// InProgress reports whether a release is under way (including one that
// was aborted and is held at the stable revision).
func (st *RolloutStatus) InProgress() bool { return st.Phase == RolloutPhaseProgressing }

// HoldOf returns what the release in progress waits for, or nil.
func (st *RolloutStatus) HoldOf() *Hold {
	if st.Release == nil {
		return nil
	}
	return st.Release.Hold
}

// TrafficOf returns the routing in force, or nil when all traffic goes to
// the stable version.
func (st *RolloutStatus) TrafficOf() *TrafficStatus {
	if st.Release == nil {
		return nil
	}
	return st.Release.Traffic
}
