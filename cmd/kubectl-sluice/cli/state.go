package cli

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// Names the controller writes (rollout/ and analysis/run); the plugin
// does not import those packages to stay small, and a test checks that
// the values agree.
const (
	reasonAborted = "Aborted"
	labelRollout  = "sluice.dev/rollout"
)

// state is what the plugin needs to know about a Rollout to show it and
// to decide which overrides make sense now. It is read from the status'
// structured fields (status.release, status.lastRelease, the Progressing
// condition) and the plan's view accessors, never from the message.
type state struct {
	name      string
	phase     v1beta1.RolloutPhase
	reason    string // of the Progressing condition
	blueGreen bool
	steps     []v1beta1.CanaryStep
	routed    bool // the plan routes traffic of its own (RoutesSteps)
	common    *v1beta1.CommonStatus
	// newPods and newReady count the new version's pods (status).
	newPods, newReady int32
	specPaused        bool
	// hold is what the release in progress waits for, batch the batch the
	// workload is held to, traffic the routing in force (nil: all to
	// stable); all nil at rest.
	hold    *v1beta1.Hold
	batch   *v1beta1.BatchStatus
	traffic *v1beta1.TrafficStatus
	// last is how the last release ended, if one did.
	last *v1beta1.ReleaseRecord
}

// stateOf reads a Rollout.
func stateOf(r *v1beta1.Rollout) state {
	st, plan := &r.Status, &r.Spec.Strategy
	s := state{
		name: r.Name, phase: st.Phase, reason: st.ProgressingReason(), specPaused: plan.Paused,
		blueGreen: plan.IsBlueGreen(), steps: plan.Steps(), routed: plan.RoutesSteps(),
		common: st.Progress(), last: st.LastRelease,
	}
	s.newPods, s.newReady = st.NewPods()
	if st.InProgress() && st.Release != nil {
		s.hold, s.batch, s.traffic = st.HoldOf(), st.Release.Batch, st.TrafficOf()
	}
	return s
}

func (s state) progressing() bool { return s.phase == v1beta1.RolloutPhaseProgressing }

// aborted: the release was rolled back (by its analysis or a person) and
// is held at the stable revision.
func (s state) aborted() bool { return s.progressing() && s.reason == reasonAborted }

// pausedBySpec: spec.strategy.paused holds the release.
func (s state) pausedBySpec() bool {
	return s.specPaused || s.reason == v1beta1.ProgressingReasonPaused || s.waits(v1beta1.HoldPausedBySpec)
}

// waiting is the hold reason, "" when nothing holds a release.
func (s state) waiting() v1beta1.HoldReason {
	if s.hold == nil {
		return ""
	}
	return s.hold.Reason
}

// waits reports whether the release waits for one of reasons.
func (s state) waits(reasons ...v1beta1.HoldReason) bool {
	for _, r := range reasons {
		if s.hold != nil && s.hold.Reason == r {
			return true
		}
	}
	return false
}

// heldByAnalysis: a verdict whose policy is Pause holds the release.
func (s state) heldByAnalysis() bool {
	return s.waits(v1beta1.HoldAnalysisInconclusive, v1beta1.HoldAnalysisError, v1beta1.HoldAnalysisFailedPaused)
}

// detail is the hold's detail in words (the verdict, the error, the stuck
// pods), or "".
func (s state) detail() string {
	if s.hold == nil {
		return ""
	}
	return s.hold.Message
}

// stepIndex is the 1-based current step, 0 without a release.
func (s state) stepIndex() int32 {
	if s.common == nil {
		return 0
	}
	return s.common.CurrentStepIndex
}

func (s state) stepState() v1beta1.CanaryStepState {
	if s.common == nil {
		return ""
	}
	return s.common.CurrentStepState
}

// step is the current step's spec, if any.
func (s state) step() *v1beta1.CanaryStep {
	if i := s.stepIndex(); i >= 1 && int(i) <= len(s.steps) {
		return &s.steps[i-1]
	}
	return nil
}

// left is what is left of a timed wait (the hold's until) at now.
func (s state) left(now time.Time) time.Duration {
	if s.hold == nil || s.hold.Until == nil {
		return 0
	}
	return max(0, s.hold.Until.Sub(now))
}

// action is a command that changes a Rollout.
type action string

const (
	actApprove action = "approve"
	actPause   action = "pause"
	actResume  action = "resume"
	actAbort   action = "abort"
	actRetry   action = "retry"
	actPromote action = "promote"
	actUndo    action = "undo"
)

// allActions in the order "what you can do next" lists them.
var allActions = []action{actApprove, actResume, actRetry, actPause, actPromote, actAbort, actUndo}

// refusal says why the state does not allow an action, and what to do.
type refusal struct {
	action action
	name   string
	why    string
}

func (r *refusal) Error() string {
	return fmt.Sprintf("cannot %s rollout %s: %s", r.action, r.name, r.why)
}

// check is the rule book: nil when the Rollout's state allows the action,
// else why not and what to do instead. It follows what the controller
// does in each hold (docs/release.md has the table).
func check(a action, s state) *refusal {
	no := func(format string, args ...any) *refusal {
		return &refusal{action: a, name: s.name, why: fmt.Sprintf(format, args...)}
	}
	cmd := func(verb string) string { return "kubectl sluice " + verb + " " + s.name }
	at := fmt.Sprintf("step %d/%d", s.stepIndex(), len(s.steps))

	if a == actResume {
		if s.specPaused {
			return nil
		}
		if s.waits(v1beta1.HoldWaitingForApproval) || s.heldByAnalysis() {
			return no("it is not paused (spec.strategy.paused is false); step %d waits for approval: run `%s`", s.stepIndex(), cmd("approve"))
		}
		return no("it is not paused (spec.strategy.paused is false)")
	}

	// Everything else needs a release in progress.
	if !s.progressing() {
		phase := s.phase
		if phase == "" {
			phase = "not yet observed by sluice-controller"
		}
		switch a {
		case actUndo:
			return no("no release is in progress (phase %s): to go back to an earlier version, roll the workload back (`kubectl rollout undo`) and the Rollout releases it in steps", phase)
		default:
			return no("no release is in progress (phase %s): %s applies to a release; change the workload's template to start one", phase, a)
		}
	}
	switch s.reason {
	case v1beta1.ProgressingReasonInitializing:
		if s.waits(v1beta1.HoldTrafficError) {
			return no("the release cannot start: %s: fix the routing objects (the controller retries)", s.detail())
		}
		return no("the release is starting (the routing objects are being prepared): try again in a moment")
	case v1beta1.ProgressingReasonFinalising:
		return no("the release is finalising (the new version is being promoted): nothing is left to %s; follow it with `%s -w`", a, cmd("status"))
	case v1beta1.ProgressingReasonCancelling:
		return no("the release is being cancelled (the workload returns to its stable revision): nothing is left to %s", a)
	}
	// Two holds keep the controller from reading any override.
	switch {
	case s.waits(v1beta1.HoldWorkloadNotFound):
		return no("%s: re-create the workload, or delete the Rollout", s.detail())
	case s.waits(v1beta1.HoldNewRevisionRefused) && a != actUndo && a != actPause:
		return no("%s; until then the release takes no %s: run `%s`", s.detail(), a, cmd("undo"))
	}

	switch a {
	case actApprove:
		switch {
		case s.pausedBySpec():
			return no("the release is paused (spec.strategy.paused): resume it first with `%s`", cmd("resume"))
		case s.aborted():
			return no("the release is aborted; approving does not resume it: retry it (`%s`) or go back to the stable revision (`%s`)", cmd("retry"), cmd("undo"))
		case s.waits(v1beta1.HoldWaitingForApproval, v1beta1.HoldTimedPause), s.heldByAnalysis():
			return nil
		case s.waits(v1beta1.HoldAnalysisNotStarted):
			return no("%s waits for an analysis that could not start (%s): fix the AnalysisTemplate or the Rollout's analysis args (the controller retries), or abort", at, s.detail())
		case s.waits(v1beta1.HoldProgressDeadlineExceeded):
			return no("%s is stuck (%s); approving does not make pods ready: push a fixed version, abort (`%s`) or go back to the stable revision (`%s`)", at, s.detail(), cmd("abort"), cmd("undo"))
		case s.waits(v1beta1.HoldTrafficError, v1beta1.HoldWorkloadError):
			return no("%s is held by a failure (%s): fix its cause (the controller retries), or abort (`%s`)", at, s.detail(), cmd("abort"))
		}
		return no("nothing waits for approval: %s is at %s, waiting for %s (approve applies to a step paused with pause: {} or held by its analysis)", at, s.stepState(), dash(string(s.waiting())))
	case actPause:
		switch {
		case s.pausedBySpec():
			return no("it is already paused: resume it with `%s`", cmd("resume"))
		case s.aborted():
			return no("the release is aborted and nothing moves: retry it (`%s`) or go back to the stable revision (`%s`)", cmd("retry"), cmd("undo"))
		}
		return nil
	case actAbort:
		if s.aborted() {
			return no("it is already aborted: retry it (`%s`) or go back to the stable revision (`%s`)", cmd("retry"), cmd("undo"))
		}
		return nil // while paused, the plugin resumes with the abort so that it acts now
	case actRetry:
		switch {
		case s.aborted():
			return nil
		case s.pausedBySpec():
			return no("the release is paused (spec.strategy.paused): resume it first with `%s`", cmd("resume"))
		case s.heldByAnalysis():
			return nil
		case s.waits(v1beta1.HoldAnalysisNotStarted):
			return no("the analysis could not start (%s): the controller retries on its own; fix the AnalysisTemplate or the Rollout's analysis args", s.detail())
		}
		return no("retry re-runs an analysis that holds the release or restarts an aborted release, and this release is neither (%s, %s, waiting for %s)", at, s.stepState(), dash(string(s.waiting())))
	case actPromote:
		if s.aborted() {
			return no("the release is aborted: to release this version anyway, retry it (`%s`) and promote it while it runs", cmd("retry"))
		}
		return nil
	case actUndo:
		return nil
	}
	return no("unknown action")
}

// allowed lists the actions the state allows, in allActions order.
func allowed(s state) []action {
	var out []action
	for _, a := range allActions {
		if check(a, s) == nil {
			out = append(out, a)
		}
	}
	return out
}

// waitingText says what the release in progress waits for, in words, from
// its hold: "" when nothing holds it.
func waitingText(s state, now time.Time) string {
	h := s.hold
	if h == nil {
		return ""
	}
	with := func(text string) string {
		if d := s.detail(); d != "" {
			return text + ": " + d
		}
		return text
	}
	switch h.Reason {
	case v1beta1.HoldWaitingForPods:
		if s.reason == v1beta1.ProgressingReasonFinalising || s.reason == v1beta1.ProgressingReasonCancelling || s.batch == nil {
			return "the workload rolls out on its own"
		}
		text := fmt.Sprintf("the batch of step %d: %d of %d new pods ready", s.batch.Step, s.newReady, s.batch.Replicas)
		if h.Until != nil {
			text += fmt.Sprintf(" (progress deadline in %s)", s.left(now).Round(time.Second))
		}
		return text
	case v1beta1.HoldTrafficGracePeriod:
		if h.Until == nil {
			return "a routing change is being applied"
		}
		return fmt.Sprintf("a routing change settles (gracePeriodSeconds, %s left)", s.left(now).Round(time.Second))
	case v1beta1.HoldAnalysisRunning:
		return with("analysis " + dash(h.Run) + " is measuring")
	case v1beta1.HoldTimedPause:
		text := fmt.Sprintf("step %d waits", h.Step)
		if st := s.step(); st != nil && st.Pause.Duration != nil {
			text += fmt.Sprintf(" %ds", *st.Pause.Duration)
		}
		return text + fmt.Sprintf(" before going on (%s left)", s.left(now).Round(time.Second))
	case v1beta1.HoldWaitingForApproval:
		return fmt.Sprintf("step %d waits for approval (pause: {})", h.Step)
	case v1beta1.HoldPausedBySpec:
		return "paused by spec.strategy.paused (kubectl sluice pause)"
	case v1beta1.HoldAnalysisInconclusive, v1beta1.HoldAnalysisError, v1beta1.HoldAnalysisFailedPaused:
		return with("held by analysis")
	case v1beta1.HoldAnalysisNotStarted:
		return with("analysis not started") + " (fix the AnalysisTemplate or the analysis args: the controller retries)"
	case v1beta1.HoldAborted:
		return with("aborted") + "; the new version's pods are scaled to zero and traffic goes to stable"
	case v1beta1.HoldProgressDeadlineExceeded:
		return with("stuck")
	case v1beta1.HoldTrafficError, v1beta1.HoldWorkloadError:
		return with("failing") + " (the controller retries)"
	}
	return with(string(h.Reason))
}

// endedText says how a release ended, after "the release ".
func endedText(l *v1beta1.ReleaseRecord) string {
	if l == nil {
		return "ended"
	}
	why := ""
	if l.Message != "" {
		why = ": " + l.Message
	}
	switch l.Outcome {
	case v1beta1.OutcomeCompleted:
		return "completed"
	case v1beta1.OutcomePromoted:
		return "was promoted" + why
	case v1beta1.OutcomeRolledBack:
		return fmt.Sprintf("was rolled back by its analysis at step %d%s", l.Step, why)
	case v1beta1.OutcomeAborted:
		return fmt.Sprintf("was aborted at step %d%s", l.Step, why)
	case v1beta1.OutcomeCancelled:
		return "was cancelled" + why
	}
	return string(l.Outcome) + why
}

// succeeded reports whether a release that ended put its new version in
// place (completed or promoted).
func succeeded(l *v1beta1.ReleaseRecord) bool {
	return l == nil || l.Outcome == v1beta1.OutcomeCompleted || l.Outcome == v1beta1.OutcomePromoted
}
