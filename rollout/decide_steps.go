package rollout

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// Sluice's condition for a batch stuck past spec.strategy.progressDeadlineSeconds.
const (
	ConditionProgressDeadline      v1beta1.RolloutConditionType = "ProgressDeadline"
	ReasonProgressDeadlineExceeded                              = "ProgressDeadlineExceeded"
)

// jump honours a nextStepIndex patched by the user (kubectl-kruise undo
// --fast does this); it reports whether the steps may go on now. A jump
// back first brings the traffic down to what the earlier step routes (the
// canary keeps at least that step's pods meanwhile), then enters the step
// with a batch that may remove new pods; the step's analysis runs afresh.
func (x *decider) jump() bool {
	n := int32(len(x.steps()))
	cs := x.cs
	k := cs.NextStepIndex
	if k <= 0 || k > n || k == expectedNext(cs.CurrentStepIndex, n) {
		return true
	}
	back := k < cs.CurrentStepIndex
	if back && x.routed() {
		s := x.steps()[k-1]
		rev := cs.PodTemplateHash
		switch {
		case s.HasRoute() && x.readyFor(x.target(s)):
			if !x.trafficDone(TrafficCall{Op: TrafficCanaryService, Revision: rev}, false) ||
				!x.trafficDone(TrafficCall{Op: TrafficRoute, Step: k, Revision: rev}, false) {
				return false
			}
		case !x.trafficDone(TrafficCall{Op: TrafficToStable}, false):
			// The step routes nothing, or its pods are not ready: all to stable.
			return false
		}
	}
	x.event(corev1.EventTypeNormal, "StepJump", fmt.Sprintf("jumping from step %d to step %d", cs.CurrentStepIndex, k))
	x.enterStep(k)
	if back {
		s := x.steps()[k-1]
		x.release().Batch = &v1beta1.BatchStatus{Step: k, Replicas: x.target(s), Shrink: true}
		a := x.analysis()
		a.Attempt++
		a.StepRun = nil
	}
	return true
}

// step advances the current step's state once; it reports whether it did.
func (x *decider) step() bool {
	cs, info := x.cs, x.Workload
	steps := x.steps()
	n := int32(len(steps))
	if cs.CurrentStepIndex < 1 || cs.CurrentStepIndex > n {
		x.enterStep(min(max(cs.CurrentStepIndex, 1), n))
	}
	i := cs.CurrentStepIndex
	s := steps[i-1]
	target := x.target(s)
	switch cs.CurrentStepState {
	case v1beta1.CanaryStepStateInit, "":
		if !x.beforeUpgrade(s) {
			return false
		}
		x.enterBatch(i, target)
		cs.CurrentStepState = v1beta1.CanaryStepStateUpgrade
		return true
	case v1beta1.CanaryStepStateUpgrade:
		if !x.upgrade(i, target) {
			return false
		}
		x.clearDeadline()
		cs.CurrentStepState = v1beta1.CanaryStepStateMetricsAnalysis
		if x.routed() && s.HasRoute() {
			cs.CurrentStepState = v1beta1.CanaryStepStateTrafficRouting
		}
		x.stamp()
		x.event(corev1.EventTypeNormal, "StepUpgraded", fmt.Sprintf("step %d/%d: %d of %d pods run the new version", i, n, info.Updated, info.Replicas))
		return true
	case v1beta1.CanaryStepStateTrafficRouting:
		if !x.routeStep(i) {
			return false
		}
		cs.CurrentStepState = v1beta1.CanaryStepStateMetricsAnalysis
		x.stamp()
		x.event(corev1.EventTypeNormal, "StepTrafficRouted", fmt.Sprintf("step %d/%d: %s", i, n, describeRoute(s)))
		return true
	case v1beta1.CanaryStepStateMetricsAnalysis:
		if s.Analysis != nil && !x.analyseStep(i, s.Analysis) {
			return false
		}
		cs.CurrentStepState = v1beta1.CanaryStepStatePaused
		x.stamp()
		return true
	case v1beta1.CanaryStepStatePaused:
		switch {
		case i == n && s.IsFullRelease():
			// The last step at 100% has nothing left to wait for.
		case s.Pause.Duration == nil:
			x.wait(v1beta1.HoldWaitingForApproval, "")
			return false
		default:
			end := cs.LastUpdateTime.Add(time.Duration(*s.Pause.Duration) * time.Second)
			if left := end.Sub(x.Now); left > 0 {
				x.waitUntil(v1beta1.HoldTimedPause, end)
				x.requeue(left)
				return false
			}
		}
		cs.CurrentStepState = v1beta1.CanaryStepStateReady
		x.stamp()
		return true
	case v1beta1.CanaryStepStateReady:
		if i < n {
			next := i + 1
			if cs.NextStepIndex > i && cs.NextStepIndex <= n {
				next = cs.NextStepIndex
			}
			x.event(corev1.EventTypeNormal, "StepReady", fmt.Sprintf("step %d/%d is done: entering step %d", i, n, next))
			x.made(DecisionAdvance, x.advanceCause(s))
			x.enterStep(next)
			return true
		}
		cs.CurrentStepState = v1beta1.CanaryStepStateCompleted
		x.event(corev1.EventTypeNormal, "StepReady", fmt.Sprintf("step %d/%d is done: finalising", i, n))
		x.made(DecisionComplete, x.advanceCause(s))
		x.setProgressing(v1beta1.ProgressingReasonFinalising, msgFinalising)
		x.finalise(true)
		return false
	case v1beta1.CanaryStepStateCompleted:
		x.setProgressing(v1beta1.ProgressingReasonFinalising, msgFinalising)
		x.finalise(true)
	}
	return false
}

// enterBatch holds the workload to step i's batch of target new pods. The
// batch is committed in the status before any pod moves, so that a
// controller killed, failed over or reading a stale cache never acts on
// an earlier step. New pods are removed only by a batch that says Shrink:
// a jump back, an abort or a restart set it, and it carries over to the
// next batch until one is in place with exactly its pods.
func (x *decider) enterBatch(i, target int32) {
	b := x.release().Batch
	x.release().Batch = &v1beta1.BatchStatus{Step: i, Replicas: target, Shrink: b != nil && b.Shrink}
}

// upgrade moves the workload to step i's batch; it reports whether the
// batch is in place. Nothing is released before the workload's own
// controller has seen its latest spec (its update revision may be about
// to change), and never for another revision than the release's.
func (x *decider) upgrade(i, target int32) bool {
	info := x.Workload
	if !info.Settled || info.UpdateRevision != x.cs.CanaryRevision {
		x.checkDeadline(i, target)
		x.wait(v1beta1.HoldWaitingForPods, "")
		return false
	}
	b := x.release().Batch
	done := x.batchDone(target)
	if done && b != nil {
		b.Shrink = false // the batch has exactly its pods
	}
	// Release also once the batch is in place: it labels the batch's
	// last pods (rollout-batch-id) and changes nothing else.
	x.d.Batch = workload.Batch{Index: i, Updated: target, RolloutID: info.RolloutID, Revision: x.cs.CanaryRevision, Shrink: b != nil && b.Shrink}
	x.d.Action = Release
	if !info.Controlled {
		x.d.Action = Prepare
	}
	if done {
		return true
	}
	x.checkDeadline(i, target)
	x.wait(v1beta1.HoldWaitingForPods, "")
	return false
}

// batchDone reports whether the batch of target pods is in place: the
// new pods (exactly target after a jump back, at least target otherwise),
// at most failureThreshold of them unready, the old pods scaled down to
// make room, and none left of a version replaced mid-release (4 replicas,
// v3 replacing v2 at 2 new pods: step 1 is 1 v3 pod beside 3 stable ones,
// not beside 2 stable and 1 v2).
func (x *decider) batchDone(target int32) bool {
	info := x.Workload
	if !x.readyFor(target) || info.Intermediate > 0 || (!x.blueGreen && info.Updated+info.Others > info.Replicas) {
		return false
	}
	b := x.release().Batch
	// A DaemonSet keeps the new pods a shrinking batch would remove: the
	// batch is as close as it gets.
	return b == nil || !b.Shrink || info.Updated == target || (info.KeepsNewPods && info.Updated >= target)
}

// failureThreshold is how many new pods may be unready, as Kruise's
// BatchContext.IsBatchReady counts it: a percentage of the new pods there
// are (at least the batch), rounded up (20% of 3 pods tolerates 1); none
// when unset. (Kruise's API comment says an unset threshold is the
// workload's maxUnavailable; its code tolerates none, and so does Sluice:
// traffic and analysis follow a batch.)
func (x *decider) failureThreshold(target int32) int32 {
	ft := x.Rollout.Spec.Strategy.FailureThresholdOf()
	if ft == nil {
		return 0
	}
	v, err := intstr.GetScaledValueFromIntOrPercent(ft, int(max(target, x.Workload.Updated)), true)
	if err != nil {
		return 0
	}
	return int32(v)
}

// target is the number of new-version pods step s asks of the workload.
// A rollback in batches counts the step's replicas over the pods that
// still run the other version, on top of those that already run the one
// rolled back to: 10 pods, 4 of them already back, a step of 50% asks
// 4 + 3 = 7 (Kruise's CalculateBatchContext with noNeedUpdate).
func (x *decider) target(s v1beta1.CanaryStep) int32 {
	n := x.Workload.Replicas
	if r := x.d.Status.Release; r != nil && r.NoNeedUpdate > 0 {
		done := min(r.NoNeedUpdate, n)
		return done + s.ReplicasFor(n-done)
	}
	return s.ReplicasFor(n)
}

// checkDeadline reports a batch that has not become ready within
// progressDeadlineSeconds (Sluice; Kruise hangs silently, its issue #174):
// a condition and the hold name the stuck pods and why. The release is
// not aborted; a person decides (fix forward, or roll back).
func (x *decider) checkDeadline(i, target int32) {
	pd := x.Rollout.Spec.Strategy.ProgressDeadlineSeconds
	if pd == nil || x.cs.LastUpdateTime == nil {
		return
	}
	deadline := x.cs.LastUpdateTime.Add(time.Duration(*pd) * time.Second)
	if left := deadline.Sub(x.Now); left > 0 {
		x.requeue(left)
		x.waitUntil(v1beta1.HoldWaitingForPods, deadline)
		return
	}
	info := x.Workload
	msg := fmt.Sprintf("Rollout is in step(%d/%d), and the batch is not ready after %ds: %d of %d new pods ready", i, len(x.steps()), *pd, info.UpdatedReady, target)
	if len(info.Unready) > 0 {
		msg += "; not ready: " + strings.Join(info.Unready, ", ")
	}
	if c := condition(&x.Rollout.Status, ConditionProgressDeadline); c == nil || c.Status != corev1.ConditionTrue {
		x.event(corev1.EventTypeWarning, ReasonProgressDeadlineExceeded, msg)
		x.made(DecisionPause, CauseDeadline)
	}
	x.setCondition(ConditionProgressDeadline, corev1.ConditionTrue, ReasonProgressDeadlineExceeded, msg)
	x.wait(v1beta1.HoldProgressDeadlineExceeded, msg)
}

func (x *decider) clearDeadline() {
	removeCondition(&x.d.Status, ConditionProgressDeadline)
}

// advanceCause says why step s ends: a person approved it, its analysis
// passed, or the plan (a timed pause, none) let it.
func (x *decider) advanceCause(s v1beta1.CanaryStep) string {
	if in := x.Rollout.Status.CanaryStatus; in != nil && in.CurrentStepState == v1beta1.CanaryStepStateReady {
		return CauseManual
	}
	if s.Analysis != nil {
		return CauseAnalysis
	}
	return CausePlan
}
