package rollout

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/analysis/run"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// ReasonAborted is the Progressing reason of a release stopped by its
// analysis or by a person (Sluice; Kruise has no abort). The workload is
// held at its stable revision until the stable template is re-applied, a
// new version is pushed, or the release is retried.
const ReasonAborted = "Aborted"

// Sluice's condition for the analysis: False while a verdict holds the
// release (or has aborted it), True once the last run passed.
const ConditionAnalysis v1beta1.RolloutConditionType = "Analysis"

// ReasonAnalysisNotStarted: a run could not be created (a template or an
// arg is missing); the reconciler retries with backoff.
const ReasonAnalysisNotStarted = "AnalysisNotStarted"

// RunError is a RunRequest the reconciler could not carry out.
type RunError struct {
	Request RunRequest
	Err     error
}

// RunRequest asks the reconciler to create the AnalysisRun of a step (0:
// the background run) for the current revision and attempt.
type RunRequest struct {
	Step    int32
	Attempt int32
}

// runTarget is what names a run of this release.
func (x *decider) runTarget(step int32) run.Target {
	return run.Target{Rollout: x.Rollout.Name, CanaryRevision: x.cs.PodTemplateHash, StepIndex: step, Attempt: x.analysis().Attempt}
}

// analysis is the status' analysis part, created on first use.
func (x *decider) analysis() *analysisv1alpha1.RolloutAnalysisStatus {
	if x.d.Status.Analysis == nil {
		x.d.Status.Analysis = &analysisv1alpha1.RolloutAnalysisStatus{}
	}
	return x.d.Status.Analysis
}

// observeRun looks up the run of step (0: background) and mirrors it in
// status; it asks for the run when it does not exist yet.
func (x *decider) observeRun(step int32) (*analysisv1alpha1.AnalysisRun, **analysisv1alpha1.RunStatus) {
	name := run.Name(x.runTarget(step))
	slot := &x.analysis().StepRun
	if step == 0 {
		slot = &x.analysis().BackgroundRun
	}
	var ar *analysisv1alpha1.AnalysisRun
	for i := range x.Runs {
		if x.Runs[i].Name == name {
			ar = &x.Runs[i]
		}
	}
	prev := *slot
	rs := &analysisv1alpha1.RunStatus{Name: name}
	if prev != nil && prev.Name == name {
		rs.Overridden = prev.Overridden
	}
	if ar == nil {
		req := RunRequest{Step: step, Attempt: x.analysis().Attempt}
		x.d.StartRuns = append(x.d.StartRuns, req)
		for _, e := range x.RunErrors {
			if e.Request == req {
				why := fmt.Sprintf("%s could not start: %v", runLabel(step, name), e.Err)
				setCondition(&x.d.Status, ConditionAnalysis, corev1.ConditionFalse, ReasonAnalysisNotStarted, why, x.Now)
				x.event(corev1.EventTypeWarning, ReasonAnalysisNotStarted, why)
				rs.Message = why
			}
		}
	} else {
		rs.Phase, rs.Message = ar.Status.Phase, ar.Status.Message
		if rs.Phase.Completed() && (prev == nil || prev.Name != name || prev.Phase != rs.Phase) {
			x.verdictEvent(step, rs)
		}
	}
	*slot = rs
	return ar, slot
}

func (x *decider) verdictEvent(step int32, rs *analysisv1alpha1.RunStatus) {
	typ := corev1.EventTypeWarning
	if rs.Phase == analysisv1alpha1.AnalysisSuccessful {
		typ = corev1.EventTypeNormal
	}
	x.event(typ, "Analysis"+string(rs.Phase), fmt.Sprintf("%s: %s", runLabel(step, rs.Name), rs.Message))
}

func runLabel(step int32, name string) string {
	if step == 0 {
		return "background analysis " + name
	}
	return fmt.Sprintf("analysis of step %d (%s)", step, name)
}

// policy is what a's verdict phase asks for.
func policy(a *analysisv1alpha1.RolloutAnalysis, phase analysisv1alpha1.AnalysisPhase) analysisv1alpha1.VerdictPolicy {
	switch phase {
	case analysisv1alpha1.AnalysisFailed:
		return a.FailedPolicy()
	case analysisv1alpha1.AnalysisError:
		return a.ErrorPolicy()
	case analysisv1alpha1.AnalysisInconclusive:
		return a.InconclusivePolicy()
	}
	return analysisv1alpha1.PolicyContinue
}

// analyseStep runs step i's analysis; it reports whether the step may go
// on to its pause.
func (x *decider) analyseStep(i, n int32, a *analysisv1alpha1.RolloutAnalysis) bool {
	ar, slot := x.observeRun(i)
	rs := *slot
	if ar == nil || !rs.Phase.Completed() {
		msg := fmt.Sprintf("Rollout is in step(%d/%d), and analysing the new version (%s)", i, n, rs.Name)
		if rs.Message != "" {
			msg += ": " + rs.Message
		}
		x.setMessage(msg)
		return false
	}
	return x.judge(i, n, a, rs)
}

// judge applies a's policy to a completed run; true means go on.
func (x *decider) judge(i, n int32, a *analysisv1alpha1.RolloutAnalysis, rs *analysisv1alpha1.RunStatus) bool {
	st := &x.d.Status
	if rs.Phase == analysisv1alpha1.AnalysisSuccessful || rs.Overridden {
		setCondition(st, ConditionAnalysis, corev1.ConditionTrue, string(rs.Phase), rs.Message, x.Now)
		return true
	}
	what := fmt.Sprintf("%s is %s: %s", runLabel(i, rs.Name), rs.Phase, rs.Message)
	switch policy(a, rs.Phase) {
	case analysisv1alpha1.PolicyContinue:
		setCondition(st, ConditionAnalysis, corev1.ConditionFalse, string(rs.Phase), what+" (ignored: policy Continue)", x.Now)
		return true
	case analysisv1alpha1.PolicyRollback:
		x.abort(what, CauseAnalysis)
		return false
	}
	if c := condition(&x.Rollout.Status, ConditionAnalysis); c == nil || c.Message != what {
		x.made(DecisionPause, CauseAnalysis) // the hold begins
	}
	setCondition(st, ConditionAnalysis, corev1.ConditionFalse, string(rs.Phase), what, x.Now)
	step := x.cs.CurrentStepIndex
	x.setMessage(fmt.Sprintf("Rollout is in step(%d/%d), paused: %s. Approve to go on, retry the analysis (%s), or abort (%s)",
		step, n, what, analysisv1alpha1.RetryAnnotation, analysisv1alpha1.AbortAnnotation))
	return false
}

// background watches the whole-release run from the first ready batch on;
// it reports whether the steps may go on.
func (x *decider) background() bool {
	a := x.Rollout.Spec.Strategy.Analysis
	if a == nil || (x.cs.CurrentStepIndex <= 1 && (x.cs.CurrentStepState == v1beta1.CanaryStepStateInit || x.cs.CurrentStepState == v1beta1.CanaryStepStateUpgrade)) {
		return true
	}
	ar, slot := x.observeRun(0)
	if ar == nil || !(*slot).Phase.Completed() {
		return true
	}
	return x.judge(0, int32(len(x.steps())), a, *slot)
}

// overrideApproval records an approval (the status patched to StepReady)
// given while a verdict held the release, so it holds no more.
func (x *decider) overrideApproval() {
	in := x.Rollout.Status.CanaryStatus
	if in == nil || in.CurrentStepState != v1beta1.CanaryStepStateReady || x.d.Status.Analysis == nil {
		return
	}
	for _, rs := range []*analysisv1alpha1.RunStatus{x.d.Status.Analysis.StepRun, x.d.Status.Analysis.BackgroundRun} {
		if rs != nil && rs.Phase.Completed() && rs.Phase != analysisv1alpha1.AnalysisSuccessful && !rs.Overridden {
			rs.Overridden = true
			x.recordOverride("Approve", rs)
		}
	}
}

func (x *decider) recordOverride(action string, rs *analysisv1alpha1.RunStatus) {
	o := analysisv1alpha1.Override{Action: action, Step: x.cs.CurrentStepIndex, Time: metav1.NewTime(x.Now.Truncate(1e9))}
	msg := fmt.Sprintf("%s at step %d", action, o.Step)
	if rs != nil {
		o.Run, o.Verdict = rs.Name, rs.Phase
		msg += fmt.Sprintf(", overriding %s verdict %s", rs.Name, rs.Phase)
	}
	a := x.analysis()
	a.Overrides = append(a.Overrides, o)
	if len(a.Overrides) > 10 {
		a.Overrides = a.Overrides[len(a.Overrides)-10:]
	}
	x.event(corev1.EventTypeNormal, "Override", msg)
}

// overrides acts on a new promote, abort or retry annotation value; it
// reports whether the decision is made.
func (x *decider) overrides() bool {
	ann := x.Rollout.Annotations
	if ann[analysisv1alpha1.PromoteAnnotation] == "" && ann[analysisv1alpha1.AbortAnnotation] == "" && ann[analysisv1alpha1.RetryAnnotation] == "" {
		return false
	}
	a := x.analysis()
	if v := ann[analysisv1alpha1.AbortAnnotation]; v != "" && v != a.AbortHandled {
		a.AbortHandled = v
		if reason(&x.d.Status) != ReasonAborted {
			x.recordOverride("Abort", nil)
			x.abort("aborted by a person ("+analysisv1alpha1.AbortAnnotation+")", CauseManual)
			return true
		}
	}
	if v := ann[analysisv1alpha1.PromoteAnnotation]; v != "" && v != a.PromoteHandled {
		a.PromoteHandled = v
		x.recordOverride("Promote", a.StepRun)
		x.made(DecisionPromote, CauseManual)
		x.stopRuns()
		x.cs.CurrentStepState = v1beta1.CanaryStepStateCompleted
		x.setProgressing(v1beta1.ProgressingReasonFinalising, msgFinalising)
		x.finalise(true)
		return true
	}
	if v := ann[analysisv1alpha1.RetryAnnotation]; v != "" && v != a.RetryHandled {
		a.RetryHandled = v
		a.Attempt++
		x.recordOverride("Retry", a.StepRun)
		x.made(DecisionRetry, CauseManual)
		removeCondition(&x.d.Status, ConditionAnalysis)
		if reason(&x.d.Status) == ReasonAborted {
			// A retried release starts over with fresh runs.
			a.StepRun, a.BackgroundRun = nil, nil
			x.setProgressing(v1beta1.ProgressingReasonInRolling, "")
			x.resetTo(1)
			return false
		}
		if x.cs.CurrentStepState == v1beta1.CanaryStepStateMetricsAnalysis {
			a.StepRun = nil
		}
		a.BackgroundRun = nil
	}
	return false
}

// noteHandled marks the override annotations present at the start of a
// release as handled: only values set during the release act.
func (x *decider) noteHandled() {
	ann := x.Rollout.Annotations
	abort, retry, promote := ann[analysisv1alpha1.AbortAnnotation], ann[analysisv1alpha1.RetryAnnotation], ann[analysisv1alpha1.PromoteAnnotation]
	if abort == "" && retry == "" && promote == "" && x.d.Status.Analysis == nil {
		return
	}
	a := x.analysis()
	a.AbortHandled, a.RetryHandled, a.PromoteHandled = abort, retry, promote
	a.StepRun, a.BackgroundRun, a.Attempt = nil, nil, 0
}

// abort stops the release: traffic back to stable, the new pods scaled
// down, runs stopped; the workload stays frozen at its stable revision.
func (x *decider) abort(why, cause string) {
	x.made(DecisionRollback, cause)
	msg := fmt.Sprintf("Rollout is aborted: %s; the workload is held at its stable revision %s: re-apply it to end the release, push a fix, or retry (%s)",
		why, x.cs.StableRevision, analysisv1alpha1.RetryAnnotation)
	x.setProgressing(ReasonAborted, msg)
	setCondition(&x.d.Status, ConditionAnalysis, corev1.ConditionFalse, ReasonAborted, why, x.Now)
	x.event(corev1.EventTypeWarning, ReasonAborted, msg)
	x.aborted()
}

// aborted holds an aborted release at the stable revision.
func (x *decider) aborted() {
	x.setMessage(condition(&x.d.Status, v1beta1.RolloutConditionProgressing).Message)
	x.stopRuns()
	if x.routed() && !x.trafficDone(TrafficCall{Op: TrafficToStable}, false) {
		return
	}
	x.d.Action = Release
	x.d.Batch = workload.Batch{Index: x.cs.CurrentStepIndex, Updated: 0, RolloutID: x.Workload.RolloutID}
}

// stopRuns asks to terminate the release's runs that are still measuring.
func (x *decider) stopRuns() {
	for i := range x.Runs {
		ar := &x.Runs[i]
		if !ar.Status.Phase.Completed() && !ar.Spec.Terminate {
			x.d.StopRuns = append(x.d.StopRuns, ar.Name)
		}
	}
}
