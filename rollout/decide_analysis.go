package rollout

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

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
// release (or has aborted it); True once the last run passed, or when a
// verdict was let through (reason Ignored: its policy is Continue;
// Overridden: a person approved past it).
const ConditionAnalysis v1beta1.RolloutConditionType = "Analysis"

// Reasons of the Analysis condition besides the run phases.
const (
	// ReasonAnalysisNotStarted: a run could not be created (a template or
	// an arg is missing); the executor retries with backoff.
	ReasonAnalysisNotStarted = "AnalysisNotStarted"
	// ReasonVerdictIgnored: a verdict whose policy is Continue.
	ReasonVerdictIgnored = "Ignored"
	// ReasonVerdictOverridden: a person approved past the verdict.
	ReasonVerdictOverridden = "Overridden"
)

// RunError is a RunRequest the executor could not carry out.
type RunError struct {
	Request RunRequest
	Err     error
}

// RunRequest asks for the AnalysisRun of a step (0: the background run)
// for the current revision and attempt.
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
func (x *decider) observeRun(step int32) (*analysisv1alpha1.AnalysisRun, *analysisv1alpha1.RunStatus) {
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
	notStarted := condition(&x.d.Status, ConditionAnalysis)
	if notStarted != nil && (notStarted.Reason != ReasonAnalysisNotStarted || prev == nil || prev.Name != name) {
		notStarted = nil
	}
	if ar == nil {
		req := RunRequest{Step: step, Attempt: x.analysis().Attempt}
		x.d.RunsToStart = append(x.d.RunsToStart, req)
		for _, e := range x.RunErrors {
			if e.Request == req {
				why := fmt.Sprintf("%s could not start: %v", runLabel(step, name), e.Err)
				if notStarted == nil || notStarted.Message != why {
					x.event(corev1.EventTypeWarning, ReasonAnalysisNotStarted, why)
				}
				x.setCondition(ConditionAnalysis, corev1.ConditionFalse, ReasonAnalysisNotStarted, why)
				notStarted = condition(&x.d.Status, ConditionAnalysis)
			}
		}
		// The run could not be created before: the release waits for it
		// with that reason until it exists (it is asked for again each
		// time, and only its creation ends the hold).
		if notStarted != nil {
			rs.Message = notStarted.Message
			x.waitFor(v1beta1.HoldAnalysisNotStarted, name, "", notStarted.Message)
		}
	} else {
		if notStarted != nil {
			removeCondition(&x.d.Status, ConditionAnalysis)
		}
		rs.Phase, rs.Message = ar.Status.Phase, ar.Status.Message
		if rs.Phase.Completed() && (prev == nil || prev.Name != name || prev.Phase != rs.Phase) {
			x.verdictEvent(step, rs)
		}
	}
	*slot = rs
	return ar, rs
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

// heldBy is the hold reason of a verdict whose policy is Pause.
var heldBy = map[analysisv1alpha1.AnalysisPhase]v1beta1.HoldReason{
	analysisv1alpha1.AnalysisFailed:       v1beta1.HoldAnalysisFailedPaused,
	analysisv1alpha1.AnalysisError:        v1beta1.HoldAnalysisError,
	analysisv1alpha1.AnalysisInconclusive: v1beta1.HoldAnalysisInconclusive,
}

// heldByVerdict reports a hold by an analysis verdict (policy Pause).
func heldByVerdict(r v1beta1.HoldReason) bool {
	for _, h := range heldBy {
		if h == r {
			return true
		}
	}
	return false
}

// analyseStep runs step i's analysis; it reports whether the step may go
// on to its pause.
func (x *decider) analyseStep(i int32, a *analysisv1alpha1.RolloutAnalysis) bool {
	ar, rs := x.observeRun(i)
	if ar == nil || !rs.Phase.Completed() {
		x.waitFor(v1beta1.HoldAnalysisRunning, rs.Name, "", rs.Message)
		return false
	}
	return x.judge(i, a, ar, rs)
}

// judge applies a's policy to a completed run; true means go on.
func (x *decider) judge(step int32, a *analysisv1alpha1.RolloutAnalysis, ar *analysisv1alpha1.AnalysisRun, rs *analysisv1alpha1.RunStatus) bool {
	switch {
	case rs.Phase == analysisv1alpha1.AnalysisSuccessful:
		x.setCondition(ConditionAnalysis, corev1.ConditionTrue, string(rs.Phase), rs.Message)
		return true
	case rs.Overridden:
		x.setCondition(ConditionAnalysis, corev1.ConditionTrue, ReasonVerdictOverridden, fmt.Sprintf("%s was %s; a person approved past it", runLabel(step, rs.Name), rs.Phase))
		return true
	}
	what := fmt.Sprintf("%s is %s: %s", runLabel(step, rs.Name), rs.Phase, rs.Message)
	switch policy(a, rs.Phase) {
	case analysisv1alpha1.PolicyContinue:
		x.setCondition(ConditionAnalysis, corev1.ConditionTrue, ReasonVerdictIgnored, what+" (ignored: policy Continue)")
		return true
	case analysisv1alpha1.PolicyRollback:
		x.abort(what, CauseAnalysis, rs.Name, decisiveMetric(ar))
		return false
	}
	if c := condition(&x.Rollout.Status, ConditionAnalysis); c == nil || c.Message != what {
		x.made(DecisionPause, CauseAnalysis) // the hold begins
	}
	x.setCondition(ConditionAnalysis, corev1.ConditionFalse, string(rs.Phase), what)
	x.waitFor(heldBy[rs.Phase], rs.Name, decisiveMetric(ar), what)
	return false
}

// decisiveMetric names the run's metric that decided its verdict: the
// first whose phase is the run's.
func decisiveMetric(ar *analysisv1alpha1.AnalysisRun) string {
	if ar == nil {
		return ""
	}
	for _, m := range ar.Status.MetricResults {
		if m.Phase == ar.Status.Phase {
			return m.Name
		}
	}
	return ""
}

// background watches the whole-release run from the first ready batch on;
// it reports whether the steps may go on.
func (x *decider) background() bool {
	a := x.Rollout.Spec.Strategy.Analysis
	if a == nil || (x.cs.CurrentStepIndex <= 1 && (x.cs.CurrentStepState == v1beta1.CanaryStepStateInit || x.cs.CurrentStepState == v1beta1.CanaryStepStateUpgrade)) {
		return true
	}
	ar, rs := x.observeRun(0)
	if ar == nil || !rs.Phase.Completed() {
		return true
	}
	return x.judge(0, a, ar, rs)
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
	o := analysisv1alpha1.Override{Action: action, Step: x.cs.CurrentStepIndex, Time: x.now()}
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

// overrides acts on new values of the promote, abort and retry
// annotations; it reports whether the decision is made. Every new value
// is handled at once, and when several come together one acts, the
// safest: an abort, else a retry, else a promotion (the others are
// reported as ignored).
func (x *decider) overrides() bool {
	ann := x.Rollout.Annotations
	if ann[analysisv1alpha1.PromoteAnnotation] == "" && ann[analysisv1alpha1.AbortAnnotation] == "" && ann[analysisv1alpha1.RetryAnnotation] == "" {
		return false
	}
	a := x.analysis()
	fresh := func(key string, handled *string) bool {
		v := ann[key]
		if v == "" || v == *handled {
			return false
		}
		*handled = v
		return true
	}
	abort := fresh(analysisv1alpha1.AbortAnnotation, &a.AbortHandled)
	retry := fresh(analysisv1alpha1.RetryAnnotation, &a.RetryHandled)
	promote := fresh(analysisv1alpha1.PromoteAnnotation, &a.PromoteHandled)
	aborted := reason(&x.d.Status) == ReasonAborted
	ignore := func(what, why string) {
		x.event(corev1.EventTypeWarning, "OverrideIgnored", what+" ignored: "+why)
	}
	switch {
	case abort && !aborted:
		if retry {
			ignore("retry", "an abort came with it")
		}
		if promote {
			ignore("promote", "an abort came with it")
		}
		x.recordOverride("Abort", nil)
		x.abort("aborted by a person ("+analysisv1alpha1.AbortAnnotation+")", CauseManual, "", "")
		return true
	case retry:
		if promote {
			ignore("promote", "a retry came with it; promote the retried release")
		}
		x.retry(aborted)
		return false
	case promote && aborted:
		// Its new pods are gone and traffic is back on stable: promoting
		// would send everyone to a version with no pod. A retry releases
		// it again, step by step.
		ignore("promote", "the release is aborted: retry it ("+analysisv1alpha1.RetryAnnotation+") to release this version again, then promote it")
		return false
	case promote:
		x.recordOverride("Promote", a.StepRun)
		x.made(DecisionPromote, CauseManual)
		x.ended(v1beta1.OutcomePromoted, "promoted by a person ("+analysisv1alpha1.PromoteAnnotation+")")
		x.requestRunStop()
		x.cs.CurrentStepState = v1beta1.CanaryStepStateCompleted
		x.setProgressing(v1beta1.ProgressingReasonFinalising, msgFinalising)
		x.finalise(true)
		return true
	}
	return false
}

// retry re-runs the analysis that holds the release with fresh runs, or
// restarts an aborted release from step 1.
func (x *decider) retry(aborted bool) {
	a := x.analysis()
	a.Attempt++
	x.recordOverride("Retry", a.StepRun)
	x.made(DecisionRetry, CauseManual)
	removeCondition(&x.d.Status, ConditionAnalysis)
	if aborted {
		a.StepRun, a.BackgroundRun = nil, nil
		x.setProgressing(v1beta1.ProgressingReasonInRolling, "")
		x.release().Started = x.now()
		x.resetTo(1)
		return
	}
	if x.cs.CurrentStepState == v1beta1.CanaryStepStateMetricsAnalysis {
		a.StepRun = nil
	}
	a.BackgroundRun = nil
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
func (x *decider) abort(why, cause, run, metric string) {
	x.made(DecisionRollback, cause)
	outcome := v1beta1.OutcomeAborted
	if cause == CauseAnalysis {
		outcome = v1beta1.OutcomeRolledBack
	}
	x.ended(outcome, why)
	if last := x.d.Status.LastRelease; last != nil {
		last.Run, last.Metric = run, metric
	}
	x.setProgressing(ReasonAborted, "")
	x.setCondition(ConditionAnalysis, corev1.ConditionFalse, ReasonAborted, why)
	x.event(corev1.EventTypeWarning, ReasonAborted, msgAborted(why, x.cs.StableRevision))
	x.release().Batch = &v1beta1.BatchStatus{Step: x.cs.CurrentStepIndex, Replicas: 0, Shrink: true}
	x.aborted()
}

// aborted holds an aborted release at the stable revision: traffic back
// to stable first, then the new pods scaled to zero.
func (x *decider) aborted() {
	h := &v1beta1.Hold{Reason: v1beta1.HoldAborted}
	if last := x.d.Status.LastRelease; last != nil && (last.Outcome == v1beta1.OutcomeAborted || last.Outcome == v1beta1.OutcomeRolledBack) {
		h.Run, h.Metric, h.Message = last.Run, last.Metric, last.Message
	}
	x.setHold(h)
	x.requestRunStop()
	if x.routed() && !x.trafficDone(TrafficCall{Op: TrafficToStable}, false) {
		return
	}
	x.d.Action = Release
	x.d.Batch = workload.Batch{Index: x.cs.CurrentStepIndex, Updated: 0, RolloutID: x.Workload.RolloutID, Revision: x.cs.CanaryRevision, Shrink: true}
}

// requestRunStop asks the executor to terminate the release's runs that
// are still measuring.
func (x *decider) requestRunStop() {
	for i := range x.Runs {
		ar := &x.Runs[i]
		if !ar.Status.Phase.Completed() && !ar.Spec.Terminate {
			x.d.RunsToStop = append(x.d.RunsToStop, ar.Name)
		}
	}
}
