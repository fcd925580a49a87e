package rollout

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// Finalizer keeps a Rollout until its workload has been given back.
const Finalizer = "rollouts.kruise.io/rollout"

// Sluice's condition for a batch stuck past spec.strategy.progressDeadlineSeconds.
const (
	ConditionProgressDeadline      v1beta1.RolloutConditionType = "ProgressDeadline"
	ReasonProgressDeadlineExceeded                              = "ProgressDeadlineExceeded"
)

// Observed is everything Decide looks at.
type Observed struct {
	Rollout *v1beta1.Rollout
	// Workload is nil when the workload does not exist.
	Workload *workload.Info
	Now      time.Time
	// Traffic holds the results of the traffic calls made during this
	// reconcile, in order. The reconciler decides, makes the call the
	// decision asks for, and decides again with its result.
	Traffic []TrafficResult
	// Runs are the Rollout's AnalysisRuns.
	Runs []analysisv1alpha1.AnalysisRun
	// RunErrors are the runs the reconciler failed to create.
	RunErrors []RunError
}

// Action is the one thing a reconcile does to the world besides writing
// the Rollout's status.
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
)

func (a Action) String() string {
	return [...]string{"None", "Prepare", "Release", "Finalise", "RemoveFinalizer"}[a]
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
	// StartRuns are AnalysisRuns to create; StopRuns, by name, to terminate.
	StartRuns []RunRequest
	StopRuns  []string
	// RequeueAfter is set only for a known deadline (the end of a pause or
	// of a grace period).
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
}

// Decide returns the Rollout's next status and the action to take. It is a
// pure function: the same observation always gives the same decision.
func Decide(o Observed) Decision {
	if s := o.Rollout.Spec.Strategy; s.Canary == nil && s.BlueGreen != nil {
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
	x.mirror()
	return x.d
}

func (x *decider) decide() {
	r, info, st := x.Rollout, x.Workload, &x.d.Status
	switch {
	case r.DeletionTimestamp != nil:
		x.terminate()
	case info == nil:
		ref := r.Spec.WorkloadRef
		st.Message = fmt.Sprintf("%s %s not found: the Rollout waits for it", ref.Kind, ref.Name)
		if st.Phase == "" || st.Phase == v1beta1.RolloutPhaseInitial {
			st.Phase = v1beta1.RolloutPhaseHealthy
		}
	case r.Spec.Disabled:
		x.disable()
	case r.Spec.Strategy.Canary == nil:
		st.Message = "the Rollout has no strategy: set strategy.canary or strategy.blueGreen"
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
		x.setMessage(msgDeleting)
		setCondition(st, v1beta1.RolloutConditionTerminating, corev1.ConditionTrue, v1beta1.TerminatingReasonInTerminating, msgDeleting, x.Now)
		if !x.giveBack(x.successOrder(), false) {
			return
		}
	}
	setCondition(st, v1beta1.RolloutConditionTerminating, corev1.ConditionFalse, v1beta1.TerminatingReasonCompleted, "", x.Now)
	x.d.Action = RemoveFinalizer
}

func (x *decider) disable() {
	st := &x.d.Status
	if x.givingBack() {
		st.Phase = v1beta1.RolloutPhaseDisabling
		x.setMessage(msgDisabling)
		if !x.giveBack(x.successOrder(), false) {
			return
		}
	}
	if st.Phase != v1beta1.RolloutPhaseDisabled {
		x.event(corev1.EventTypeNormal, "Disabled", msgDisabled)
	}
	st.Phase = v1beta1.RolloutPhaseDisabled
	st.Message = msgDisabled
	removeCondition(st, v1beta1.RolloutConditionProgressing)
}

func (x *decider) progress() {
	st := &x.d.Status
	switch st.Phase {
	case "", v1beta1.RolloutPhaseInitial, v1beta1.RolloutPhaseDisabled, v1beta1.RolloutPhaseDisabling:
		st.Phase = v1beta1.RolloutPhaseHealthy
		st.Message = msgHealthy
		fallthrough
	case v1beta1.RolloutPhaseHealthy:
		if !x.Workload.Frozen || !x.Workload.Settled {
			if st.Message == "" {
				st.Message = msgHealthy
			}
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
			x.finalise(true)
		case v1beta1.ProgressingReasonCancelling:
			x.finalise(false)
		case v1beta1.ProgressingReasonPaused:
			if x.Rollout.Spec.Strategy.Paused {
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
	x.resetTo(1)
	x.noteHandled()
	removeCondition(st, v1beta1.RolloutConditionSucceeded)
	removeCondition(st, ConditionAnalysis)
	if x.routed() && !x.trafficDone(TrafficCall{Op: TrafficInitialize}, false) {
		x.setProgressing(v1beta1.ProgressingReasonInitializing, "")
		return
	}
	x.setProgressing(v1beta1.ProgressingReasonInRolling, "")
	x.event(corev1.EventTypeNormal, "ReleaseStarted", fmt.Sprintf("releasing revision %s (stable %s) in %d steps", info.UpdateRevision, info.StableRevision, len(x.steps())))
	x.d.Action = Prepare
}

// resetTo (re)starts the release of the workload's update revision at step i.
func (x *decider) resetTo(i int32) {
	x.cs.CanaryRevision = x.Workload.UpdateRevision
	x.cs.PodTemplateHash = x.Workload.PodRevision
	x.cs.ObservedRolloutID = x.Workload.RolloutID
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

func (x *decider) stamp() {
	t := metav1.NewTime(x.Now.Truncate(time.Second))
	x.cs.LastUpdateTime = &t
}

// roll runs the release's step state machine.
func (x *decider) roll() {
	info, cs := x.Workload, x.cs
	switch {
	case info.Settled && info.UpdateRevision == cs.StableRevision:
		x.setProgressing(v1beta1.ProgressingReasonCancelling, msgCancelling)
		x.event(corev1.EventTypeNormal, "RollbackDetected", "the workload's template is back at the stable revision "+cs.StableRevision+": cancelling the release")
		x.made(DecisionRollback, CauseManual)
		x.finalise(false)
		return
	case x.Rollout.Spec.Strategy.Paused && reason(&x.d.Status) != ReasonAborted:
		x.setProgressing(v1beta1.ProgressingReasonPaused, msgPaused)
		x.d.Status.Message = msgPaused
		x.event(corev1.EventTypeNormal, "Paused", msgPaused)
		x.made(DecisionPause, CauseManual)
		return
	case info.Settled && info.UpdateRevision != cs.CanaryRevision && x.blueGreen:
		// Kruise refuses this too: both versions run at full size.
		x.setMessage(fmt.Sprintf("a blue-green release takes no new version mid-release: re-apply the stable template (revision %s) first, then release the new one", cs.StableRevision))
		return
	case info.Settled && info.UpdateRevision != cs.CanaryRevision:
		// Traffic leaves the replaced version before its pods go; the
		// stable Service stays pinned and the canary Service is re-pointed
		// by the new release.
		if x.routed() && !x.trafficDone(TrafficCall{Op: TrafficToStable}, false) {
			return
		}
		x.event(corev1.EventTypeNormal, "ContinuousRelease", fmt.Sprintf("workload continuous publishing canaryRevision %s, then restart publishing", info.UpdateRevision))
		x.stopRuns()
		x.setProgressing(v1beta1.ProgressingReasonInRolling, "")
		x.resetTo(1)
		x.d.Action = Prepare
		return
	}
	if x.overrides() {
		return
	}
	if reason(&x.d.Status) == ReasonAborted {
		x.aborted()
		return
	}
	x.overrideApproval()
	if !x.background() {
		return
	}
	x.jump()
	// A step may finish and the next begin in one decision: each pass
	// moves one state forward; no state repeats, so this ends.
	for pass := 0; pass < 8 && x.step(); pass++ {
	}
}

// jump honours a nextStepIndex patched by the user (kubectl-kruise undo
// --fast does this).
func (x *decider) jump() {
	n := int32(len(x.steps()))
	cs := x.cs
	if cs.NextStepIndex <= 0 || cs.NextStepIndex > n || cs.NextStepIndex == expectedNext(cs.CurrentStepIndex, n) {
		return
	}
	x.event(corev1.EventTypeNormal, "StepJump", fmt.Sprintf("jumping from step %d to step %d", cs.CurrentStepIndex, cs.NextStepIndex))
	x.enterStep(cs.NextStepIndex)
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
		x.setMessage(msgUpgrade(i, n))
		if !x.beforeUpgrade(s) {
			return false
		}
		cs.CurrentStepState = v1beta1.CanaryStepStateUpgrade
		return true
	case v1beta1.CanaryStepStateUpgrade:
		x.setMessage(msgUpgrade(i, n))
		x.d.Action = Release
		x.d.Batch = workload.Batch{Index: i, Updated: target, RolloutID: info.RolloutID}
		if !x.batchDone(target) {
			x.checkDeadline(i, n, target)
			return false
		}
		x.clearDeadline()
		cs.CurrentStepState = v1beta1.CanaryStepStateMetricsAnalysis
		if x.routed() && hasRoute(s) {
			cs.CurrentStepState = v1beta1.CanaryStepStateTrafficRouting
		}
		x.stamp()
		x.event(corev1.EventTypeNormal, "StepUpgraded", fmt.Sprintf("step %d/%d: %d of %d pods run the new version", i, n, info.Updated, info.Replicas))
		return true
	case v1beta1.CanaryStepStateTrafficRouting:
		x.setMessage(msgTrafficRouting(i, n))
		if !x.routeStep(i) {
			return false
		}
		cs.CurrentStepState = v1beta1.CanaryStepStateMetricsAnalysis
		x.stamp()
		x.event(corev1.EventTypeNormal, "StepTrafficRouted", fmt.Sprintf("step %d/%d: %s", i, n, describeRoute(s)))
		return true
	case v1beta1.CanaryStepStateMetricsAnalysis:
		if s.Analysis != nil && !x.analyseStep(i, n, s.Analysis) {
			return false
		}
		cs.CurrentStepState = v1beta1.CanaryStepStatePaused
		x.stamp()
		return true
	case v1beta1.CanaryStepStatePaused:
		switch {
		case i == n && s.Replicas != nil && s.Replicas.Type == intstr.String && s.Replicas.StrVal == "100%":
			// The last step at 100% has nothing left to wait for.
		case s.Pause.Duration == nil:
			x.setMessage(msgManualConfirm(i, n))
			return false
		default:
			wait := time.Duration(*s.Pause.Duration) * time.Second
			if left := cs.LastUpdateTime.Add(wait).Sub(x.Now); left > 0 {
				x.setMessage(msgWaitDuration(i, n, *s.Pause.Duration))
				x.d.RequeueAfter = left
				return false
			}
		}
		cs.CurrentStepState = v1beta1.CanaryStepStateReady
		x.stamp()
		return true
	case v1beta1.CanaryStepStateReady:
		if i < n {
			next := i + 1
			if cs.NextStepIndex > 0 && cs.NextStepIndex <= n {
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

// checkDeadline reports a batch that has not become ready within
// progressDeadlineSeconds (Sluice; Kruise hangs silently, its issue #174):
// a condition and the message name the stuck pods and why. The release
// is not aborted; a person decides (fix forward, or roll back).
func (x *decider) checkDeadline(i, n, target int32) {
	pd := x.Rollout.Spec.Strategy.ProgressDeadlineSeconds
	if pd == nil || x.cs.LastUpdateTime == nil {
		return
	}
	left := x.cs.LastUpdateTime.Add(time.Duration(*pd) * time.Second).Sub(x.Now)
	if left > 0 {
		x.d.RequeueAfter = left
		return
	}
	info := x.Workload
	msg := fmt.Sprintf("Rollout is in step(%d/%d), and the batch is not ready after %ds: %d of %d new pods ready", i, n, *pd, info.UpdatedReady, target)
	if len(info.Unready) > 0 {
		msg += "; not ready: " + strings.Join(info.Unready, ", ")
	}
	if c := condition(&x.d.Status, ConditionProgressDeadline); c == nil || c.Status != corev1.ConditionTrue {
		x.event(corev1.EventTypeWarning, ReasonProgressDeadlineExceeded, msg)
		x.made(DecisionPause, CauseDeadline)
	}
	setCondition(&x.d.Status, ConditionProgressDeadline, corev1.ConditionTrue, ReasonProgressDeadlineExceeded, msg, x.Now)
	x.setMessage(msg)
}

func (x *decider) clearDeadline() {
	removeCondition(&x.d.Status, ConditionProgressDeadline)
}

// finalise gives the workload back and waits until it has finished on its
// own; success says whether the release completed or was cancelled.
func (x *decider) finalise(success bool) {
	st := &x.d.Status
	x.clearDeadline()
	msg, order := msgFinalising, x.successOrder()
	if !success {
		msg, order = msgCancelling, finaliseRollback
	}
	x.setMessage(msg)
	x.stopRuns()
	if !x.giveBack(order, true) {
		return
	}
	st.Phase = v1beta1.RolloutPhaseHealthy
	x.cs.CurrentStepState = v1beta1.CanaryStepStateCompleted
	if success {
		x.cs.StableRevision = x.cs.CanaryRevision
		x.setProgressing(v1beta1.ProgressingReasonCompleted, msgCompleted)
		setCondition(st, v1beta1.RolloutConditionSucceeded, corev1.ConditionTrue, v1beta1.ProgressingReasonCompleted, msgCompleted, x.Now)
		x.setMessage(msgCompleted)
		x.event(corev1.EventTypeNormal, "ReleaseCompleted", msgCompleted)
		return
	}
	x.setProgressing(v1beta1.ProgressingReasonCompleted, msgRolledBack)
	setCondition(st, v1beta1.RolloutConditionSucceeded, corev1.ConditionFalse, v1beta1.ProgressingReasonCancelling, msgRolledBack, x.Now)
	x.setMessage(msgRolledBack)
	x.event(corev1.EventTypeNormal, "ReleaseCancelled", msgRolledBack)
}

// batchDone reports whether the batch of target pods is in place: enough
// new pods, at most failureThreshold of them unready, and the old pods
// scaled down to make room.
func (x *decider) batchDone(target int32) bool {
	info := x.Workload
	if !info.Settled || info.Updated < target || (!x.blueGreen && info.Updated+info.Others > info.Replicas) {
		return false
	}
	return target-info.UpdatedReady <= x.failureThreshold(target)
}

// failureThreshold is how many pods of a batch may be unready. Kruise
// defaults to the workload's maxUnavailable; Sluice defaults to none,
// because traffic and analysis follow a batch: set failureThreshold to
// tolerate some.
func (x *decider) failureThreshold(target int32) int32 {
	ft := x.Rollout.Spec.Strategy.Canary.FailureThreshold
	if ft == nil {
		return 0
	}
	v, err := intstr.GetScaledValueFromIntOrPercent(ft, int(target), false)
	if err != nil {
		return 0
	}
	return int32(v)
}

// target is the number of new-version pods a step asks for: a number, or
// a percentage of the workload rounded up, never more than the workload has.
func (x *decider) target(s v1beta1.CanaryStep) int32 {
	replicas := x.Workload.Replicas
	if s.Replicas == nil {
		return replicas
	}
	v, err := intstr.GetScaledValueFromIntOrPercent(s.Replicas, int(replicas), true)
	if err != nil {
		return 0
	}
	return min(int32(v), replicas)
}

func (x *decider) steps() []v1beta1.CanaryStep { return x.Rollout.Spec.Strategy.Canary.Steps }

func (x *decider) setProgressing(reason, message string) {
	setCondition(&x.d.Status, v1beta1.RolloutConditionProgressing, corev1.ConditionTrue, reason, message, x.Now)
	if reason == v1beta1.ProgressingReasonCompleted {
		c := condition(&x.d.Status, v1beta1.RolloutConditionProgressing)
		c.Status = corev1.ConditionFalse
	}
}

func (x *decider) setMessage(m string) {
	x.d.Status.Message = m
	if x.cs != nil {
		x.cs.Message = m
	}
}

func (x *decider) made(decision, cause string) {
	x.d.Made = append(x.d.Made, Made{Decision: decision, Cause: cause})
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

func (x *decider) event(typ, reason, message string) {
	x.d.Events = append(x.d.Events, Event{Type: typ, Reason: reason, Message: message})
}

// mirror copies what the printer columns show to the top of the status,
// and the workload's counts into the canary status.
func (x *decider) mirror() {
	st := &x.d.Status
	cs := st.CanaryStatus
	if cs == nil {
		return
	}
	if x.Workload != nil && st.Phase == v1beta1.RolloutPhaseProgressing {
		cs.CanaryReplicas = x.Workload.Updated
		cs.CanaryReadyReplicas = x.Workload.UpdatedReady
		if x.Workload.PodRevision != "" {
			cs.PodTemplateHash = x.Workload.PodRevision
		}
	}
	st.CurrentStepIndex = cs.CurrentStepIndex
	st.CurrentStepState = cs.CurrentStepState
}

func reason(st *v1beta1.RolloutStatus) string {
	if c := condition(st, v1beta1.RolloutConditionProgressing); c != nil {
		return c.Reason
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
