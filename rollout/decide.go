package rollout

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// Finalizer keeps a Rollout until its workload has been given back.
const Finalizer = "rollouts.kruise.io/rollout"

// Observed is everything Decide looks at.
type Observed struct {
	Rollout *v1beta1.Rollout
	// Workload is nil when the workload does not exist.
	Workload *workload.Info
	Now      time.Time
	// Traffic holds the results of the traffic calls made during this
	// reconcile, in order. The executor decides, makes the call the
	// decision asks for, and decides again with its result.
	Traffic []TrafficResult
	// Runs are the Rollout's AnalysisRuns.
	Runs []analysisv1alpha1.AnalysisRun
	// RunErrors are the runs the executor failed to create.
	RunErrors []RunError
	// Acted is the workload action of the decision just committed, carried
	// out after it, with its error (nil when it succeeded).
	Acted *ActionResult
	// Unsupported says why the workload cannot be released (its kind, or
	// the strategy for its kind); Workload is then nil.
	Unsupported error
}

// Action is the one thing a reconcile does to the workload besides
// writing the Rollout's status.
type Action int

// The actions.
const (
	NoAction Action = iota
	// Prepare takes control of the workload (workload.Adapter.Prepare).
	Prepare
	// Release moves the workload towards Decision.Batch.
	Release
	// Finalise gives the workload back (workload.Adapter.Finalise).
	Finalise
	// RemoveFinalizer lets a deleted Rollout go.
	RemoveFinalizer
	// HandOver makes Decision.Batch.Revision the workload's stable
	// revision and keeps it frozen for the release of a newer one
	// (workload.Adapter.HandOver).
	HandOver
)

func (a Action) String() string {
	return [...]string{"None", "Prepare", "Release", "Finalise", "RemoveFinalizer", "HandOver"}[a]
}

// ActionResult is a workload action carried out, and its error.
type ActionResult struct {
	Action Action
	Err    error
}

// Event is a Kubernetes Event to record on the Rollout.
type Event struct {
	Type, Reason, Message string
}

// Decision is what Decide returns.
type Decision struct {
	Status v1beta1.RolloutStatus
	Action Action
	Batch  workload.Batch
	// Traffic is the traffic call the release waits for, if any.
	Traffic TrafficCall
	// RunsToStart are AnalysisRuns to create; RunsToStop, by name, runs
	// still measuring that are no longer wanted.
	RunsToStart []RunRequest
	RunsToStop  []string
	// RequeueAfter is set only for a known deadline (the end of a pause,
	// of a grace period, the progress deadline).
	RequeueAfter time.Duration
	Events       []Event
	// Made lists the decisions taken, with their cause, for metrics.
	Made []Made
}

// Made is a decision the release engine took, and why.
type Made struct{ Decision, Cause string }

// The decisions and causes of Made.
const (
	DecisionAdvance  = "advance"
	DecisionComplete = "complete"
	DecisionPause    = "pause"
	DecisionRollback = "rollback"
	DecisionPromote  = "promote"
	DecisionRetry    = "retry"

	CauseAnalysis = "analysis"
	CauseManual   = "manual"
	CauseDeadline = "deadline"
	CausePlan     = "plan"
)

// decider carries one decision while it is being made.
type decider struct {
	Observed
	d  Decision
	cs *v1beta1.CanaryStatus
	// blueGreen keeps the old pods until the switch (see decideBlueGreen).
	blueGreen bool
	// hold is what the release waits for, set by the first wait met.
	hold *v1beta1.Hold
	// superseded is the newer revision the workload got while the release
	// was being given back: the workload is kept frozen for it.
	superseded string
	// completing is true while a release that succeeded is given back.
	completing bool
}

// Decide returns the Rollout's next status and the action to take. It is a
// pure function: the same observation always gives the same decision.
func Decide(o Observed) Decision {
	if o.Rollout.Spec.Strategy.IsBlueGreen() {
		return decideBlueGreen(o)
	}
	return decide(o, false)
}

func decide(o Observed, blueGreen bool) Decision {
	x := &decider{Observed: o, blueGreen: blueGreen}
	x.d.Status = *o.Rollout.Status.DeepCopy()
	x.d.Status.ObservedGeneration = o.Rollout.Generation
	x.cs = x.d.Status.CanaryStatus
	x.decide()
	x.workloadAction()
	x.finish()
	return x.d
}

func (x *decider) decide() {
	r, info, st := x.Rollout, x.Workload, &x.d.Status
	switch {
	case r.DeletionTimestamp != nil:
		x.terminate()
	case x.Unsupported != nil:
		if st.Phase == "" || st.Phase == v1beta1.RolloutPhaseInitial {
			st.Phase = v1beta1.RolloutPhaseHealthy
		}
	case info == nil:
		if st.Phase == "" || st.Phase == v1beta1.RolloutPhaseInitial {
			st.Phase = v1beta1.RolloutPhaseHealthy
		}
		ref := r.Spec.WorkloadRef
		x.wait(v1beta1.HoldWorkloadNotFound, fmt.Sprintf("%s %s not found: the Rollout waits for it", ref.Kind, ref.Name))
	case r.Spec.Disabled:
		x.disable()
	case r.Spec.Strategy.Canary == nil:
		// Admission prevents it; a status says so if it happens anyway.
	default:
		x.progress()
	}
}

// terminate gives the traffic and the workload back (the success order:
// the workload completes its release) and then lets the Rollout go.
func (x *decider) terminate() {
	st := &x.d.Status
	if x.givingBack() {
		st.Phase = v1beta1.RolloutPhaseTerminating
		x.setCondition(v1beta1.RolloutConditionTerminating, corev1.ConditionTrue, v1beta1.TerminatingReasonInTerminating, msgDeleting)
		if !x.giveBack(x.successOrder(), false) {
			return
		}
	}
	x.setCondition(v1beta1.RolloutConditionTerminating, corev1.ConditionFalse, v1beta1.TerminatingReasonCompleted, "")
	x.d.Action = RemoveFinalizer
}

func (x *decider) disable() {
	st := &x.d.Status
	if x.givingBack() {
		st.Phase = v1beta1.RolloutPhaseDisabling
		if !x.giveBack(x.successOrder(), false) {
			return
		}
	}
	if st.Phase != v1beta1.RolloutPhaseDisabled {
		x.event(corev1.EventTypeNormal, "Disabled", msgDisabled)
	}
	st.Phase = v1beta1.RolloutPhaseDisabled
	removeCondition(st, v1beta1.RolloutConditionProgressing)
}

func (x *decider) progress() {
	st := &x.d.Status
	switch st.Phase {
	case "", v1beta1.RolloutPhaseInitial, v1beta1.RolloutPhaseDisabled, v1beta1.RolloutPhaseDisabling:
		st.Phase = v1beta1.RolloutPhaseHealthy
		fallthrough
	case v1beta1.RolloutPhaseHealthy:
		if !x.Workload.Frozen || !x.Workload.Settled {
			// An approval patched onto a finished release changes nothing.
			if cs := st.CanaryStatus; cs != nil {
				cs.CurrentStepState = v1beta1.CanaryStepStateCompleted
			}
			return
		}
		x.start()
	case v1beta1.RolloutPhaseProgressing:
		if x.cs == nil { // a status written by someone else: start over
			x.start()
			return
		}
		switch reason(st) {
		case v1beta1.ProgressingReasonInitializing:
			x.start()
		case v1beta1.ProgressingReasonFinalising:
			if x.revertedToStable() {
				// Re-applied while the release finalised: it is cancelled,
				// in the rollback order from its start (traffic back to
				// stable before any new pod goes).
				x.cs.FinalisingStep = ""
				x.cancel()
				return
			}
			x.finalise(true)
		case v1beta1.ProgressingReasonCancelling:
			x.finalise(false)
		case v1beta1.ProgressingReasonPaused:
			if x.Rollout.Spec.Strategy.Paused {
				x.wait(v1beta1.HoldPausedBySpec, "")
				return
			}
			x.setProgressing(v1beta1.ProgressingReasonInRolling, "")
			x.event(corev1.EventTypeNormal, "Resumed", "the release continues")
			x.roll()
		default:
			x.roll()
		}
	}
}

// start begins a release of the workload's new revision at step 1, once
// the routing objects (if any) are known to exist.
func (x *decider) start() {
	st, info := &x.d.Status, x.Workload
	st.Phase = v1beta1.RolloutPhaseProgressing
	x.cs = &v1beta1.CanaryStatus{}
	st.CanaryStatus = x.cs
	x.cs.StableRevision = info.StableRevision
	x.cs.ObservedRolloutID = info.RolloutID
	st.Release = &v1beta1.ReleaseStatus{Started: x.now()}
	x.resetTo(1)
	x.noteHandled()
	removeCondition(st, v1beta1.RolloutConditionSucceeded)
	removeCondition(st, ConditionAnalysis)
	if (x.routed() && !x.trafficDone(TrafficCall{Op: TrafficInitialize}, false)) || !x.joinShared() {
		x.setProgressing(v1beta1.ProgressingReasonInitializing, "")
		return
	}
	x.setProgressing(v1beta1.ProgressingReasonInRolling, "")
	x.event(corev1.EventTypeNormal, "ReleaseStarted", fmt.Sprintf("releasing revision %s (stable %s) in %d steps", info.UpdateRevision, info.StableRevision, len(x.steps())))
	x.roll()
}

// resetTo (re)starts the release of the workload's update revision at
// step i: no new pod is allowed until the step's batch is entered.
func (x *decider) resetTo(i int32) {
	x.cs.CanaryRevision = x.Workload.UpdateRevision
	x.cs.PodTemplateHash = x.Workload.PodRevision
	x.cs.ObservedRolloutID = x.Workload.RolloutID
	x.cs.CanaryReplicas, x.cs.CanaryReadyReplicas = 0, 0
	x.release().Batch = &v1beta1.BatchStatus{Step: 0, Replicas: 0, Shrink: true}
	x.release().Outcome = "" // a new release (or a retry) has none yet
	x.enterStep(i)
}

func (x *decider) enterStep(i int32) {
	x.cs.CurrentStepIndex = i
	x.cs.NextStepIndex = expectedNext(i, int32(len(x.steps())))
	x.cs.CurrentStepState = v1beta1.CanaryStepStateInit
	x.cs.FinalisingStep = ""
	x.stamp()
	x.clearDeadline()
}

// release is the status of the release in progress, created on first use.
func (x *decider) release() *v1beta1.ReleaseStatus {
	if x.d.Status.Release == nil {
		x.d.Status.Release = &v1beta1.ReleaseStatus{Started: x.now()}
	}
	return x.d.Status.Release
}

func (x *decider) now() metav1.Time { return metav1.NewTime(x.Now.Truncate(time.Second)) }

func (x *decider) stamp() {
	t := x.now()
	x.cs.LastUpdateTime = &t
}

// roll runs the release's step state machine.
func (x *decider) roll() {
	info, cs := x.Workload, x.cs
	switch {
	case x.revertedToStable() && x.rollbackInBatches():
		x.rollBackInBatches()
		return
	case x.revertedToStable():
		x.cancel()
		return
	case x.pausedBySpec():
		x.pause()
		return
	case info.Settled && info.UpdateRevision != cs.CanaryRevision && x.blueGreen:
		// Kruise refuses this too: both versions run at full size.
		x.wait(v1beta1.HoldNewRevisionRefused, fmt.Sprintf("a blue-green release takes no new version mid-release: re-apply the stable template (revision %s) first, then release the new one", cs.StableRevision))
		return
	case info.Settled && info.UpdateRevision != cs.CanaryRevision:
		x.continuousRelease()
		return
	}
	if x.overrides() {
		return
	}
	if x.pausedBySpec() { // a retry took the release out of its abort
		x.pause()
		return
	}
	if reason(&x.d.Status) == ReasonAborted {
		x.aborted()
		return
	}
	x.checkApproval()
	x.overrideApproval()
	if !x.background() {
		return
	}
	if !x.jump() {
		return
	}
	// A step may finish and the next begin in one decision: each pass
	// moves one state forward; no state repeats, so this ends.
	for pass := 0; pass < 8 && x.step(); pass++ {
	}
}

// pausedBySpec reports a release that spec.strategy.paused holds (an
// aborted one stays aborted).
func (x *decider) pausedBySpec() bool {
	return x.Rollout.Spec.Strategy.Paused && reason(&x.d.Status) != ReasonAborted
}

func (x *decider) pause() {
	x.setProgressing(v1beta1.ProgressingReasonPaused, msgPaused)
	x.event(corev1.EventTypeNormal, "Paused", msgPaused)
	x.made(DecisionPause, CauseManual)
	x.wait(v1beta1.HoldPausedBySpec, "")
}

// checkApproval honours a StepReady patched onto the progress (what
// kubectl-kruise rollout approve sends) only where the release waits for a
// person: a paused step, or a step held by its analysis' verdict. Anywhere
// else (pods coming up, an analysis still measuring) it would skip what
// the step waits for, so the state Sluice last wrote is restored: the
// top-level status.currentStepState, which kubectl-kruise does not patch.
func (x *decider) checkApproval() {
	cs := x.cs
	wrote := x.Rollout.Status.CurrentStepState
	if cs.CurrentStepState != v1beta1.CanaryStepStateReady || wrote == "" || wrote == v1beta1.CanaryStepStateReady || wrote == v1beta1.CanaryStepStatePaused {
		return
	}
	if h := x.Rollout.Status.HoldOf(); h != nil && heldByVerdict(h.Reason) {
		return
	}
	x.event(corev1.EventTypeWarning, "ApprovalIgnored", fmt.Sprintf("step %d is at %s and waits for no approval: the approval is ignored", cs.CurrentStepIndex, wrote))
	cs.CurrentStepState = wrote
}

// revertedToStable reports a workload whose template is back at the
// stable revision: the release is cancelled.
func (x *decider) revertedToStable() bool {
	info, cs := x.Workload, x.cs
	return info.Settled && info.UpdateRevision == cs.StableRevision && cs.StableRevision != cs.CanaryRevision
}

func (x *decider) cancel() {
	x.setProgressing(v1beta1.ProgressingReasonCancelling, msgCancelling)
	x.event(corev1.EventTypeNormal, "RollbackDetected", "the workload's template is back at the stable revision "+x.cs.StableRevision+": cancelling the release")
	x.made(DecisionRollback, CauseManual)
	x.finalise(false)
}

// RollbackInBatchAnnotation on a Rollout ("true") releases a re-applied
// stable version in the release's batches instead of all at once.
const RollbackInBatchAnnotation = "rollouts.kruise.io/rollback-in-batch"

// rollbackInBatches: the Rollout asks for it, and, as in Kruise, it
// routes no traffic and releases a StatefulSet, an Advanced StatefulSet or
// a CloneSet (whose partition can hold pods of the version rolled back to
// alongside the others).
func (x *decider) rollbackInBatches() bool {
	ro := x.Rollout
	if ro.Annotations[RollbackInBatchAnnotation] != "true" || x.routed() || x.blueGreen {
		return false
	}
	switch ro.Spec.WorkloadRef.Kind {
	case "StatefulSet", "CloneSet":
		return true
	}
	return false
}

// rollBackInBatches releases the re-applied stable version from step 1,
// as a new release whose pods already on it need no update: the steps
// count the other pods only. The batch starts at those pods, so the first
// step moves none of them.
func (x *decider) rollBackInBatches() {
	back := x.Workload.Updated
	x.event(corev1.EventTypeNormal, "RollbackInBatches", fmt.Sprintf("the workload's template is back at the stable revision %s: rolling back in batches from step 1 (%d of %d pods already run it)", x.cs.StableRevision, back, x.Workload.Replicas))
	x.requestRunStop()
	x.made(DecisionRollback, CauseManual)
	x.setProgressing(v1beta1.ProgressingReasonInRolling, "")
	x.release().Started = x.now()
	x.resetTo(1)
	x.noteHandled()
	x.release().NoNeedUpdate = back
	x.release().Batch = &v1beta1.BatchStatus{Step: 0, Replicas: back}
	x.wait(v1beta1.HoldWaitingForPods, "")
}

// continuousRelease replaces the release of one revision with that of the
// workload's newer one, from step 1. Traffic leaves the replaced version
// before its pods go; the stable Service stays pinned and the canary
// Service is re-pointed by the new release.
func (x *decider) continuousRelease() {
	if x.routed() && !x.trafficDone(TrafficCall{Op: TrafficToStable}, false) {
		return
	}
	x.event(corev1.EventTypeNormal, "ContinuousRelease", fmt.Sprintf("workload continuous publishing canaryRevision %s, then restart publishing", x.Workload.UpdateRevision))
	x.requestRunStop()
	x.setProgressing(v1beta1.ProgressingReasonInRolling, "")
	x.release().Started = x.now()
	x.release().NoNeedUpdate = 0
	x.resetTo(1)
	x.noteHandled()       // overrides given for the replaced version do not act on this one
	if x.pausedBySpec() { // an aborted release was not paused; the new one is
		x.pause()
		return
	}
	x.wait(v1beta1.HoldWaitingForPods, "")
}

func (x *decider) steps() []v1beta1.CanaryStep { return x.Rollout.Spec.Strategy.Steps() }

func (x *decider) setProgressing(reason, message string) {
	status := corev1.ConditionTrue
	if reason == v1beta1.ProgressingReasonCompleted {
		status = corev1.ConditionFalse
	}
	x.setCondition(v1beta1.RolloutConditionProgressing, status, reason, message)
}

func (x *decider) made(decision, cause string) {
	x.d.Made = append(x.d.Made, Made{Decision: decision, Cause: cause})
}

func (x *decider) event(typ, reason, message string) {
	x.d.Events = append(x.d.Events, Event{Type: typ, Reason: reason, Message: message})
}

// requeue asks to decide again after d, keeping the earliest deadline.
func (x *decider) requeue(after time.Duration) {
	if after > 0 && (x.d.RequeueAfter == 0 || after < x.d.RequeueAfter) {
		x.d.RequeueAfter = after
	}
}

// workloadAction shows a workload action that fails on the Rollout: the
// WorkloadAction condition keeps its error until the action, asked again
// by every decision (it is idempotent), succeeds; meanwhile the release
// waits with the reason WorkloadError. The executor retries with backoff.
func (x *decider) workloadAction() {
	st := &x.d.Status
	if x.d.Action == NoAction {
		removeCondition(st, ConditionWorkloadAction)
		return
	}
	if a := x.Acted; a != nil && a.Action == x.d.Action {
		if a.Err == nil {
			removeCondition(st, ConditionWorkloadAction)
			return
		}
		msg := fmt.Sprintf("%s the workload failed: %v", actionVerb(a.Action), a.Err)
		if c := condition(st, ConditionWorkloadAction); c == nil || c.Message != msg {
			x.event(corev1.EventTypeWarning, ReasonWorkloadActionFailed, msg)
		}
		x.setCondition(ConditionWorkloadAction, corev1.ConditionFalse, ReasonWorkloadActionFailed, msg)
	}
	if c := condition(st, ConditionWorkloadAction); c != nil {
		x.wait(v1beta1.HoldWorkloadError, c.Message)
	}
}

// Sluice's condition for a workload action that failed; it goes once the
// action succeeds.
const ConditionWorkloadAction v1beta1.RolloutConditionType = "WorkloadAction"

// ReasonWorkloadActionFailed is the Event reason of a failed workload action.
const ReasonWorkloadActionFailed = "WorkloadActionFailed"

func actionVerb(a Action) string {
	switch a {
	case Prepare:
		return "preparing"
	case Release:
		return "releasing the batch on"
	case Finalise:
		return "giving back"
	case HandOver:
		return "handing over"
	}
	return a.String()
}

func reason(st *v1beta1.RolloutStatus) string {
	if r := st.ProgressingReason(); r != "" {
		return r
	}
	return v1beta1.ProgressingReasonInRolling
}

// expectedNext is the nextStepIndex of step i of n: i+1, or -1 on the last.
func expectedNext(i, n int32) int32 {
	if i >= n {
		return -1
	}
	return i + 1
}
