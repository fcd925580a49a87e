package rollout

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// wait records what the release waits for (see setHold).
func (x *decider) wait(r v1beta1.HoldReason, message string) {
	x.setHold(&v1beta1.Hold{Reason: r, Message: message})
}

// waitUntil records a wait that ends at a known time.
func (x *decider) waitUntil(r v1beta1.HoldReason, until time.Time) {
	t := metav1.NewTime(until.Truncate(time.Second))
	x.setHold(&v1beta1.Hold{Reason: r, Until: &t})
}

// waitFor records a wait on an AnalysisRun (and the metric that decided
// its verdict).
func (x *decider) waitFor(r v1beta1.HoldReason, run, metric, message string) {
	x.setHold(&v1beta1.Hold{Reason: r, Run: run, Metric: metric, Message: message})
}

// setHold keeps the first wait a decision meets, the innermost cause,
// except that a fault (a failed routing call or workload write) always
// shows: it is what a person must look at.
func (x *decider) setHold(h *v1beta1.Hold) {
	if x.hold != nil && (!fault(h.Reason) || fault(x.hold.Reason)) {
		return
	}
	x.hold = h
}

func fault(r v1beta1.HoldReason) bool {
	return r == v1beta1.HoldTrafficError || r == v1beta1.HoldWorkloadError
}

// finish completes the status from what was decided: the counts of the
// new pods and the printer columns, the hold and its Waiting condition,
// and the message, which is built from them (messages.go).
func (x *decider) finish() {
	st := &x.d.Status
	x.mirror()
	if x.cs == nil || !(st.Phase == v1beta1.RolloutPhaseProgressing || st.Phase == v1beta1.RolloutPhaseTerminating || st.Phase == v1beta1.RolloutPhaseDisabling) {
		st.Release = nil
		x.hold = nil
		removeCondition(st, v1beta1.RolloutConditionWaiting)
	} else {
		h := x.hold
		if h == nil {
			// Every way out of a release in progress records a wait; this
			// only guards against one that does not.
			h = &v1beta1.Hold{Reason: v1beta1.HoldWaitingForPods}
			x.hold = h
		}
		h.Step = x.cs.CurrentStepIndex
		h.Since = x.now()
		if prev := x.Rollout.Status.HoldOf(); prev != nil && prev.Reason == h.Reason && prev.Step == h.Step {
			h.Since = prev.Since
		}
		x.release().Hold = h
	}
	msg := x.message()
	st.Message = msg
	if x.cs != nil {
		x.cs.Message = msg
	}
	if x.hold != nil {
		x.setCondition(v1beta1.RolloutConditionWaiting, corev1.ConditionTrue, string(x.hold.Reason), msg)
	}
}

// mirror copies what the printer columns show to the top of the status,
// and the workload's counts of the released revision into the canary
// status (only of that revision: a cancelled or replaced release keeps
// its last counts).
func (x *decider) mirror() {
	st := &x.d.Status
	cs := st.CanaryStatus
	if cs == nil {
		return
	}
	if info := x.Workload; info != nil && st.Phase == v1beta1.RolloutPhaseProgressing && info.UpdateRevision == cs.CanaryRevision {
		cs.CanaryReplicas = info.Updated
		cs.CanaryReadyReplicas = info.UpdatedReady
		if info.PodRevision != "" {
			cs.PodTemplateHash = info.PodRevision
		}
	}
	st.CurrentStepIndex = cs.CurrentStepIndex
	st.CurrentStepState = cs.CurrentStepState
}

// setCondition sets a condition for the Rollout's generation, keeping its
// transition time when its status does not change. Times are truncated to
// seconds, as the API server stores them, so that an unchanged condition
// compares equal.
func (x *decider) setCondition(t v1beta1.RolloutConditionType, status corev1.ConditionStatus, reason, message string) {
	s := &x.d.Status
	ts := x.now()
	gen := x.Rollout.Generation
	if c := condition(s, t); c != nil {
		if c.Status == status && c.Reason == reason && c.Message == message && c.ObservedGeneration == gen {
			return
		}
		if c.Status != status {
			c.LastTransitionTime = ts
		}
		c.Status, c.Reason, c.Message, c.LastUpdateTime, c.ObservedGeneration = status, reason, message, ts, gen
		return
	}
	s.Conditions = append(s.Conditions, v1beta1.RolloutCondition{
		Type: t, Status: status, Reason: reason, Message: message, LastUpdateTime: ts, LastTransitionTime: ts, ObservedGeneration: gen,
	})
}

// condition returns the condition of type t, or nil.
func condition(s *v1beta1.RolloutStatus, t v1beta1.RolloutConditionType) *v1beta1.RolloutCondition {
	return s.Condition(t)
}

func removeCondition(s *v1beta1.RolloutStatus, t v1beta1.RolloutConditionType) {
	out := s.Conditions[:0]
	for _, c := range s.Conditions {
		if c.Type != t {
			out = append(out, c)
		}
	}
	s.Conditions = out
}
