package rollout

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// The finalising orders of Kruise Rollout (reference §3.2): after a
// success (or a disable or delete) the stable Service takes all pods
// before the routing is restored; after a rollback traffic returns to
// stable before the new pods go.
var (
	finaliseSuccess = []v1beta1.FinalisingStepType{
		v1beta1.FinalisingStepRestoreStableService, v1beta1.FinalisingStepRouteTrafficToStable,
		v1beta1.FinalisingStepRemoveCanaryService, v1beta1.FinalisingStepResumeWorkload,
	}
	finaliseRollback = []v1beta1.FinalisingStepType{
		v1beta1.FinalisingStepRouteTrafficToStable, v1beta1.FinalisingStepResumeWorkload,
		v1beta1.FinalisingStepRestoreStableService, v1beta1.FinalisingStepRemoveCanaryService,
	}
	// finaliseBlueGreen is Kruise's blue-green success order: all traffic
	// to the new pods, the stable Service selecting every pod, the
	// workload resumed (its old pods go), then the routing and canary
	// Service removed.
	finaliseBlueGreen = []v1beta1.FinalisingStepType{
		v1beta1.FinalisingStepRouteTrafficToNew, v1beta1.FinalisingStepRestoreStableService,
		v1beta1.FinalisingStepResumeWorkload, v1beta1.FinalisingStepRouteTrafficToStable,
		v1beta1.FinalisingStepRemoveCanaryService,
	}
)

// successOrder is the finalising order of a release that completes (or is
// disabled or deleted).
func (x *decider) successOrder() []v1beta1.FinalisingStepType {
	if x.blueGreen {
		return finaliseBlueGreen
	}
	return finaliseSuccess
}

// finalise gives the workload back and waits until it has finished on its
// own; success says whether the release completed or was cancelled.
//
// The state it leaves: phase Healthy, the step index where the release
// ended, state Completed, and the revision released (canaryRevision,
// podTemplateHash) kept. After a success the stable revision is the new
// one; after a cancel it is unchanged and no pod of the cancelled
// revision is left (canaryReplicas 0). status.lastRelease says how it ended.
func (x *decider) finalise(success bool) {
	if !x.giveBackRelease(success) {
		return
	}
	if x.superseded != "" {
		x.start() // the newer version pushed meanwhile, from the stable revision now
	}
}

// giveBackRelease runs the finalising order; it reports whether the
// release is over (Healthy, its end recorded).
func (x *decider) giveBackRelease(success bool) bool {
	x.clearDeadline()
	order := x.successOrder()
	if !success {
		order = finaliseRollback
	}
	x.completing = success
	x.requestRunStop()
	if !x.giveBack(order, true) {
		return false
	}
	st := &x.d.Status
	st.Phase = v1beta1.RolloutPhaseHealthy
	x.cs.CurrentStepState = v1beta1.CanaryStepStateCompleted
	if success && x.superseded != "" && x.Workload.StableRevision != x.cs.CanaryRevision {
		// The released revision could not become the workload's stable
		// one (its pods are not the workload's own): the newer version is
		// released from the old stable revision.
		x.setProgressing(v1beta1.ProgressingReasonCompleted, msgRolledBack)
		x.ended(v1beta1.OutcomeCancelled, "revision "+x.superseded+" was pushed while it was finalising")
		return true
	}
	if success {
		x.ended(v1beta1.OutcomeCompleted, "")
		x.cs.StableRevision = x.cs.CanaryRevision
		x.setProgressing(v1beta1.ProgressingReasonCompleted, msgCompleted)
		x.setCondition(v1beta1.RolloutConditionSucceeded, corev1.ConditionTrue, v1beta1.ProgressingReasonCompleted, msgCompleted)
		x.event(corev1.EventTypeNormal, "ReleaseCompleted", msgCompleted)
		return true
	}
	x.cs.CanaryReplicas, x.cs.CanaryReadyReplicas = 0, 0
	x.setProgressing(v1beta1.ProgressingReasonCompleted, msgRolledBack)
	x.setCondition(v1beta1.RolloutConditionSucceeded, corev1.ConditionFalse, v1beta1.ProgressingReasonCancelling, msgRolledBack)
	x.event(corev1.EventTypeNormal, "ReleaseCancelled", msgRolledBack)
	x.ended(v1beta1.OutcomeCancelled, "the stable template was re-applied")
	return true
}

// ended records how the release ended, once: a release aborted or
// promoted earlier keeps that outcome when it is cleaned up later.
func (x *decider) ended(outcome v1beta1.ReleaseOutcome, why string) {
	st := &x.d.Status
	rel := x.release()
	if rel.Outcome != "" {
		return
	}
	rel.Outcome = outcome
	started := rel.Started
	st.LastRelease = &v1beta1.ReleaseRecord{
		Outcome: outcome, Revision: x.cs.CanaryRevision, StableRevision: x.cs.StableRevision,
		Step: x.cs.CurrentStepIndex, Started: &started, Ended: x.now(), Message: why,
	}
}

// handOver is ResumeWorkload when a newer version was pushed while the
// release was finalising (the freeze webhook kept the workload frozen):
// resuming would roll it out natively, unbatched. The workload stays
// frozen, the released revision becomes its stable one where the workload
// allows (a Deployment's ReplicaSets), and the newer version's release
// starts from there, step by step. It reports whether the task is done.
func (x *decider) handOver() bool {
	info := x.Workload
	x.superseded = info.UpdateRevision
	if r := x.d.Status.Release; r != nil {
		r.Batch = nil
	}
	if !x.completing || !info.CanHandOver || info.StableRevision == x.cs.CanaryRevision {
		return true
	}
	x.d.Action = HandOver
	x.d.Batch = workload.Batch{Revision: x.cs.CanaryRevision}
	x.wait(v1beta1.HoldWaitingForPods, "")
	return false
}

// givingBack reports whether there is anything to give back: a frozen
// workload, or a finalising order under way.
func (x *decider) givingBack() bool {
	return (x.Workload != nil && x.Workload.Frozen) || (x.cs != nil && x.cs.FinalisingStep != "")
}

// giveBack runs a finalising order one task at a time, keeping its place
// in canaryStatus.finalisingStep; it reports whether every task is done.
// released says whether ResumeWorkload waits for the workload to finish
// rolling, or only for it to be unfrozen.
func (x *decider) giveBack(order []v1beta1.FinalisingStepType, released bool) bool {
	if x.cs == nil {
		x.cs = &v1beta1.CanaryStatus{}
		x.d.Status.CanaryStatus = x.cs
	}
	i := 0
	for i < len(order) && order[i] != x.cs.FinalisingStep {
		i++
	}
	if i == len(order) { // not started (or a task of another order): start over
		i = 0
		x.cs.FinalisingStep = order[0]
	}
	for ; i < len(order); i++ {
		if x.cs.FinalisingStep != order[i] {
			x.cs.FinalisingStep = order[i]
			x.stamp()
		}
		// A TrafficRouting is let go first, whatever the order (Kruise's
		// doFinalising): the others holding it keep its routing.
		if i == 0 && !x.leaveShared() {
			return false
		}
		if !x.finaliseTask(order[i], released) {
			return false
		}
	}
	x.cs.FinalisingStep = ""
	return true
}

func (x *decider) finaliseTask(t v1beta1.FinalisingStepType, released bool) bool {
	if t == v1beta1.FinalisingStepResumeWorkload {
		info := x.Workload
		if info == nil || (!info.Frozen && (info.Released || !released)) {
			return true
		}
		if released && info.Frozen && !info.Settled {
			// Its controller has not seen its latest template yet: what it
			// would roll out once resumed is not known.
			x.wait(v1beta1.HoldWaitingForPods, "")
			return false
		}
		if released && info.Frozen && info.UpdateRevision != x.cs.CanaryRevision && info.UpdateRevision != x.cs.StableRevision {
			return x.handOver()
		}
		// The workload leaves the batch: the webhook stops holding it.
		if r := x.d.Status.Release; r != nil {
			r.Batch = nil
		}
		x.d.Action = Finalise
		x.wait(v1beta1.HoldWaitingForPods, "")
		return false
	}
	if !x.routed() {
		return true
	}
	switch t {
	case v1beta1.FinalisingStepRouteTrafficToNew:
		rev := x.cs.PodTemplateHash
		return x.trafficDone(TrafficCall{Op: TrafficCanaryService, Revision: rev}, false) &&
			x.trafficDone(TrafficCall{Op: TrafficToNew, Revision: rev}, true)
	case v1beta1.FinalisingStepRestoreStableService:
		return x.trafficDone(TrafficCall{Op: TrafficRestoreStable}, true)
	case v1beta1.FinalisingStepRouteTrafficToStable:
		return x.trafficDone(TrafficCall{Op: TrafficToStable}, true)
	case v1beta1.FinalisingStepRemoveCanaryService:
		return x.trafficDone(TrafficCall{Op: TrafficRemoveCanary}, true)
	}
	return true
}
