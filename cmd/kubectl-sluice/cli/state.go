package cli

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// Names the controller writes (rollout/ and analysis/run); the plugin
// does not import those packages to stay small, and a test checks that
// the values agree.
const (
	reasonAborted             = "Aborted"
	conditionAnalysis         = "Analysis"
	reasonAnalysisNotStarted  = "AnalysisNotStarted"
	conditionProgressDeadline = "ProgressDeadline"
	labelRollout              = "sluice.dev/rollout"
	// analysisHoldMarker is in the message of a release held by an
	// analysis verdict: "Rollout is in step(i/n), paused: <why>. Approve ...".
	analysisHoldMarker = ", paused: "
)

// state is what the plugin needs to know about a Rollout to show it and
// to decide which overrides make sense now.
type state struct {
	name      string
	phase     v1beta1.RolloutPhase
	reason    string // of the Progressing condition
	blueGreen bool
	steps     []v1beta1.CanaryStep
	routed    bool // the strategy has trafficRoutings
	common    *v1beta1.CommonStatus
	// newPods and newReady count the new version's pods (status).
	newPods, newReady int32
	specPaused        bool
	message           string
	// heldBy is the analysis verdict holding the release, if any.
	heldBy string
	// notStarted says why an AnalysisRun could not be created, if so.
	notStarted string
}

// stateOf reads a Rollout.
func stateOf(r *v1beta1.Rollout) state {
	s := state{name: r.Name, phase: r.Status.Phase, specPaused: r.Spec.Strategy.Paused, message: r.Status.Message}
	switch st := r.Spec.Strategy; {
	case st.Canary != nil:
		s.steps, s.routed = st.Canary.Steps, len(st.Canary.TrafficRoutings) > 0 || st.Canary.TrafficRoutingRef != ""
	case st.BlueGreen != nil:
		s.blueGreen = true
		s.steps, s.routed = st.BlueGreen.Steps, len(st.BlueGreen.TrafficRoutings) > 0 || st.BlueGreen.TrafficRoutingRef != ""
	}
	if c := conditionOf(r, v1beta1.RolloutConditionProgressing); c != nil {
		s.reason = c.Reason
	}
	if cs := r.Status.CanaryStatus; cs != nil && !s.blueGreen {
		s.common, s.newPods, s.newReady = &cs.CommonStatus, cs.CanaryReplicas, cs.CanaryReadyReplicas
	}
	if bg := r.Status.BlueGreenStatus; bg != nil && s.blueGreen {
		s.common, s.newPods, s.newReady = &bg.CommonStatus, bg.UpdatedReplicas, bg.UpdatedReadyReplicas
	}
	if s.progressing() && s.reason != reasonAborted {
		if _, why, ok := strings.Cut(s.message, analysisHoldMarker); ok {
			why, _, _ = strings.Cut(why, ". Approve to go on")
			s.heldBy = why
		}
	}
	if c := conditionOf(r, conditionAnalysis); c != nil && s.inRolling() && c.Status == corev1.ConditionFalse && c.Reason == reasonAnalysisNotStarted {
		s.notStarted = c.Message
	}
	return s
}

func conditionOf(r *v1beta1.Rollout, t v1beta1.RolloutConditionType) *v1beta1.RolloutCondition {
	for i := range r.Status.Conditions {
		if r.Status.Conditions[i].Type == t {
			return &r.Status.Conditions[i]
		}
	}
	return nil
}

func (s state) progressing() bool { return s.phase == v1beta1.RolloutPhaseProgressing }

func (s state) aborted() bool { return s.progressing() && s.reason == reasonAborted }

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

// lastFullStep reports whether the current step is the last one at
// 100%, which does not pause (as in Kruise).
func (s state) lastFullStep() bool {
	st := s.step()
	return st != nil && int(s.stepIndex()) == len(s.steps) && st.Replicas != nil &&
		st.Replicas.Type == intstr.String && st.Replicas.StrVal == "100%"
}

// waitingForApproval: the step's pause is pause: {} and it has been reached.
func (s state) waitingForApproval() bool {
	st := s.step()
	return s.inRolling() && s.stepState() == v1beta1.CanaryStepStatePaused && st != nil && st.Pause.Duration == nil && !s.lastFullStep()
}

// timedPause: the step waits out pause: {duration: N}.
func (s state) timedPause() bool {
	st := s.step()
	return s.inRolling() && s.stepState() == v1beta1.CanaryStepStatePaused && st != nil && st.Pause.Duration != nil && !s.lastFullStep()
}

// inRolling: the release is going through its steps (not paused by
// spec, aborted, starting or finishing).
func (s state) inRolling() bool {
	if !s.progressing() || s.common == nil {
		return false
	}
	switch s.reason {
	case v1beta1.ProgressingReasonInRolling, "":
		return true
	}
	return false
}

// pauseLeft is what is left of a timed pause at now.
func (s state) pauseLeft(now time.Time) time.Duration {
	st := s.step()
	if !s.timedPause() || s.common.LastUpdateTime == nil {
		return 0
	}
	return max(0, s.common.LastUpdateTime.Add(time.Duration(*st.Pause.Duration)*time.Second).Sub(now))
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
// else why not and what to do instead.
func check(a action, s state) *refusal {
	no := func(format string, args ...any) *refusal {
		return &refusal{action: a, name: s.name, why: fmt.Sprintf(format, args...)}
	}
	cmd := func(verb string) string { return "kubectl sluice " + verb + " " + s.name }

	if a == actResume {
		if s.specPaused {
			return nil
		}
		if s.waitingForApproval() || s.heldBy != "" {
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
		return no("the release is starting (the routing objects are being prepared): try again in a moment")
	case v1beta1.ProgressingReasonFinalising:
		return no("the release is finalising (the new version is being promoted): nothing is left to %s; follow it with `%s -w`", a, cmd("status"))
	case v1beta1.ProgressingReasonCancelling:
		return no("the release is being cancelled (the workload returns to its stable revision): nothing is left to %s", a)
	}

	switch a {
	case actApprove:
		switch {
		case s.specPaused || s.reason == v1beta1.ProgressingReasonPaused:
			return no("the release is paused (spec.strategy.paused): resume it first with `%s`", cmd("resume"))
		case s.aborted():
			return no("the release is aborted; approving does not resume it: retry it (`%s`) or go back to the stable revision (`%s`)", cmd("retry"), cmd("undo"))
		case s.waitingForApproval(), s.timedPause(), s.heldBy != "":
			return nil
		}
		if s.notStarted != "" {
			return no("step %d/%d waits for an analysis that could not start (%s): fix the AnalysisTemplate or the Rollout's analysis args (the controller retries), or abort", s.stepIndex(), len(s.steps), s.notStarted)
		}
		return no("nothing waits for approval: step %d/%d is at %s (approve applies to a step paused with pause: {} or held by its analysis)", s.stepIndex(), len(s.steps), s.stepState())
	case actPause:
		switch {
		case s.specPaused || s.reason == v1beta1.ProgressingReasonPaused:
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
		case s.specPaused || s.reason == v1beta1.ProgressingReasonPaused:
			return no("the release is paused (spec.strategy.paused): resume it first with `%s`", cmd("resume"))
		case s.heldBy != "":
			return nil
		}
		return no("retry re-runs an analysis that holds the release or restarts an aborted release, and this release is neither (step %d/%d, %s)", s.stepIndex(), len(s.steps), s.stepState())
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

// pauseReason says why the release does not move on by itself, or "".
func pauseReason(s state, now time.Time) string {
	if !s.progressing() {
		return ""
	}
	switch {
	case s.aborted():
		return "aborted: the new version's pods are scaled to zero and traffic goes to stable"
	case s.reason == v1beta1.ProgressingReasonPaused || (s.specPaused && s.inRolling()):
		return "paused by spec.strategy.paused (kubectl sluice pause)"
	case s.heldBy != "":
		return "held by analysis: " + s.heldBy
	case s.notStarted != "":
		return "analysis not started: " + s.notStarted + " (fix the AnalysisTemplate or the analysis args: the controller retries)"
	case s.waitingForApproval():
		return fmt.Sprintf("step %d waits for approval (pause: {})", s.stepIndex())
	case s.timedPause():
		return fmt.Sprintf("step %d waits %ds before going on (%s left)", s.stepIndex(), *s.step().Pause.Duration, s.pauseLeft(now).Round(time.Second))
	}
	return ""
}

// stuck is the progress-deadline message while a batch is late.
func stuck(r *v1beta1.Rollout) string {
	if c := conditionOf(r, conditionProgressDeadline); c != nil && c.Status == corev1.ConditionTrue {
		return c.Message
	}
	return ""
}
