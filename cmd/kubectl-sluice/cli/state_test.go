package cli

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/analysis/run"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/rollout"
	"github.com/sluicehq/sluice/workload"
)

// The plugin keeps copies of the controller's names to stay small.
func TestNamesMatchTheController(t *testing.T) {
	for _, c := range []struct{ plugin, controller string }{
		{reasonAborted, rollout.ReasonAborted},
		{conditionAnalysis, string(rollout.ConditionAnalysis)},
		{reasonAnalysisNotStarted, rollout.ReasonAnalysisNotStarted},
		{conditionProgressDeadline, string(rollout.ConditionProgressDeadline)},
		{labelRollout, run.LabelRollout},
	} {
		if c.plugin != c.controller {
			t.Errorf("plugin has %q, controller %q", c.plugin, c.controller)
		}
	}
}

func TestCheck(t *testing.T) {
	paused := func(r *v1beta1.Rollout) *v1beta1.Rollout {
		r.Spec.Strategy.Paused = true
		r.Status.Conditions[0].Reason = v1beta1.ProgressingReasonPaused
		r.Status.Message = "Rollout has been paused, you can resume it by kube-cli"
		return r
	}
	upgrading := at(example1(), 2, v1beta1.CanaryStepStateUpgrade, v1beta1.ProgressingReasonInRolling, "Rollout is in step(2/3), and upgrade workload to new version")
	timed := at(example1(), 2, v1beta1.CanaryStepStatePaused, v1beta1.ProgressingReasonInRolling, "Rollout is in step(2/3), and wait duration(60 seconds) to enter the next step")
	finalising := at(example1(), 3, v1beta1.CanaryStepStateCompleted, v1beta1.ProgressingReasonFinalising, "Rollout is in finalising")
	initializing := at(example1(), 1, v1beta1.CanaryStepStateInit, v1beta1.ProgressingReasonInitializing, "")
	cancelling := at(example1(), 2, v1beta1.CanaryStepStateUpgrade, v1beta1.ProgressingReasonCancelling, "")
	abortedPaused := abortedRollout()
	abortedPaused.Spec.Strategy.Paused = true

	// "" means allowed; otherwise a part of the refusal.
	cases := []struct {
		name string
		r    *v1beta1.Rollout
		want map[action]string
	}{
		{"healthy", healthy(example1()), map[action]string{
			actApprove: "no release is in progress (phase Healthy)", actPause: "no release is in progress", actResume: "it is not paused",
			actAbort: "no release is in progress", actRetry: "no release is in progress", actPromote: "no release is in progress",
			actUndo: "`kubectl rollout undo`",
		}},
		{"waiting for approval", waitingApproval(), map[action]string{
			actApprove: "", actPause: "", actAbort: "", actPromote: "", actUndo: "",
			actResume: "step 1 waits for approval: run `kubectl sluice approve rollouts-demo`",
			actRetry:  "this release is neither (step 1/3, StepPaused)",
		}},
		{"timed pause", timed, map[action]string{actApprove: "", actRetry: "neither", actResume: "not paused"}},
		{"upgrading a batch", upgrading, map[action]string{
			actApprove: "nothing waits for approval: step 2/3 is at StepUpgrade", actPause: "", actAbort: "", actPromote: "", actUndo: "",
			actRetry: "neither",
		}},
		{"held by analysis", heldByAnalysis(), map[action]string{
			actApprove: "", actRetry: "", actAbort: "", actPause: "", actPromote: "", actUndo: "",
			actResume: "waits for approval",
		}},
		{"aborted", abortedRollout(), map[action]string{
			actApprove: "approving does not resume it: retry it (`kubectl sluice retry rollouts-demo`)",
			actAbort:   "already aborted", actPause: "aborted and nothing moves", actRetry: "", actUndo: "",
			actPromote: "aborted: to release this version anyway, retry it",
			actResume:  "it is not paused",
		}},
		{"aborted and paused", abortedPaused, map[action]string{actResume: "", actRetry: "", actAbort: "already aborted", actUndo: ""}},
		{"paused", paused(waitingApproval()), map[action]string{
			actResume: "", actPause: "already paused", actApprove: "resume it first with `kubectl sluice resume rollouts-demo`",
			actRetry: "resume it first", actAbort: "", actPromote: "", actUndo: "",
		}},
		{"finalising", finalising, map[action]string{
			actApprove: "finalising", actAbort: "finalising", actUndo: "finalising", actPause: "finalising", actPromote: "finalising",
		}},
		{"initializing", initializing, map[action]string{actAbort: "the release is starting", actApprove: "starting"}},
		{"cancelling", cancelling, map[action]string{actAbort: "being cancelled", actUndo: "being cancelled"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := stateOf(c.r)
			for a, want := range c.want {
				got := check(a, s)
				switch {
				case want == "" && got != nil:
					t.Errorf("%s refused: %v", a, got)
				case want != "" && got == nil:
					t.Errorf("%s allowed, want refused with %q", a, want)
				case want != "" && !strings.Contains(got.Error(), want):
					t.Errorf("%s: %q lacks %q", a, got.Error(), want)
				case got != nil && !strings.HasPrefix(got.Error(), "cannot "+string(a)+" rollout rollouts-demo: "):
					t.Errorf("%s: %q does not say what was refused", a, got.Error())
				}
			}
		})
	}
}

func TestBlueGreenState(t *testing.T) {
	r := waitingApproval()
	r.Spec.Strategy.BlueGreen = &v1beta1.BlueGreenStrategy{Steps: r.Spec.Strategy.Canary.Steps}
	r.Spec.Strategy.Canary = nil
	cs := r.Status.CanaryStatus
	r.Status.CanaryStatus = nil
	r.Status.BlueGreenStatus = &v1beta1.BlueGreenStatus{CommonStatus: cs.CommonStatus, UpdatedReplicas: 5, UpdatedReadyReplicas: 4}
	s := stateOf(r)
	if !s.blueGreen || s.stepIndex() != 1 || s.newPods != 5 || s.newReady != 4 || check(actApprove, s) != nil {
		t.Errorf("blue-green state %+v, approve: %v", s, check(actApprove, s))
	}
}

// The rules read what the real release engine writes: each case lets
// rollout.Decide make a release wait, checks what the plugin allows, and
// for approve feeds the plugin's patch back to Decide.
func TestRulesOnTheControllersDecisions(t *testing.T) {
	runOf := func(phase analysisv1alpha1.AnalysisPhase) analysisv1alpha1.AnalysisRun {
		name := run.Name(run.Target{Rollout: "rollouts-demo", CanaryRevision: "5ddcc7f994", StepIndex: 1})
		return analysisv1alpha1.AnalysisRun{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
			Spec:       analysisv1alpha1.AnalysisRunSpec{Rollout: "rollouts-demo", StepIndex: 1},
			Status:     analysisv1alpha1.AnalysisRunStatus{Phase: phase, Message: "metric \"error-rate\" " + string(phase)},
		}
	}
	info := &workload.Info{Replicas: 5, Frozen: true, StableRevision: "756ff5f57c", UpdateRevision: "5ddcc7f994", PodRevision: "5ddcc7f994",
		Updated: 1, UpdatedReady: 1, Others: 4, Settled: true, RevisionLabel: "pod-template-hash"}
	decide := func(r *v1beta1.Rollout, runs ...analysisv1alpha1.AnalysisRun) *v1beta1.Rollout {
		d := rollout.Decide(rollout.Observed{Rollout: r, Workload: info, Now: now, Runs: runs})
		out := r.DeepCopy()
		out.Status = d.Status
		return out
	}
	atAnalysis := func() *v1beta1.Rollout {
		r := at(example1(), 1, v1beta1.CanaryStepStateMetricsAnalysis, v1beta1.ProgressingReasonInRolling, "")
		r.Spec.Strategy.Canary.TrafficRoutings = nil // no traffic calls in between
		return r
	}

	t.Run("Error verdict holds", func(t *testing.T) {
		r := decide(atAnalysis(), runOf(analysisv1alpha1.AnalysisError))
		s := stateOf(r)
		if s.heldBy == "" || !strings.Contains(s.heldBy, "is Error") {
			t.Fatalf("not seen as held: %q", r.Status.Message)
		}
		for _, a := range []action{actApprove, actRetry, actAbort, actPromote, actUndo} {
			if rf := check(a, s); rf != nil {
				t.Errorf("%s refused: %v", a, rf)
			}
		}
		// The approval patch, then the controller: the release goes on and
		// the override is recorded.
		r.Status.CanaryStatus.CurrentStepState = v1beta1.CanaryStepStateReady
		r = decide(r, runOf(analysisv1alpha1.AnalysisError))
		if r.Status.CurrentStepIndex != 2 || r.Status.Analysis == nil || len(r.Status.Analysis.Overrides) != 1 || r.Status.Analysis.Overrides[0].Action != "Approve" {
			t.Errorf("approval not taken: step %d, analysis %+v", r.Status.CurrentStepIndex, r.Status.Analysis)
		}
	})
	t.Run("Failed verdict aborts", func(t *testing.T) {
		r := decide(atAnalysis(), runOf(analysisv1alpha1.AnalysisFailed))
		s := stateOf(r)
		if !s.aborted() || stateText(s) != "Aborted" {
			t.Fatalf("not seen as aborted: %+v", r.Status.Conditions)
		}
		for a, allowed := range map[action]bool{actRetry: true, actUndo: true, actAbort: false, actApprove: false, actPromote: false, actPause: false} {
			if got := check(a, s) == nil; got != allowed {
				t.Errorf("%s allowed=%v, want %v (%v)", a, got, allowed, check(a, s))
			}
		}
	})
	t.Run("passed analysis waits for approval", func(t *testing.T) {
		r := decide(atAnalysis(), runOf(analysisv1alpha1.AnalysisSuccessful))
		s := stateOf(r)
		if !s.waitingForApproval() || s.heldBy != "" {
			t.Fatalf("not waiting for approval: %s %q", r.Status.CurrentStepState, r.Status.Message)
		}
		if check(actApprove, s) != nil || check(actRetry, s) == nil {
			t.Errorf("approve: %v, retry: %v", check(actApprove, s), check(actRetry, s))
		}
		if got := pauseReason(s, now); got != "step 1 waits for approval (pause: {})" {
			t.Errorf("pause reason %q", got)
		}
	})
	t.Run("a run that cannot start", func(t *testing.T) {
		r := atAnalysis()
		d := rollout.Decide(rollout.Observed{Rollout: r, Workload: info, Now: now, RunErrors: []rollout.RunError{
			{Request: rollout.RunRequest{Step: 1}, Err: errors.New(`AnalysisTemplate "error-rate" not found`)},
		}})
		r.Status = d.Status
		s := stateOf(r)
		if !strings.Contains(s.notStarted, `AnalysisTemplate "error-rate" not found`) {
			t.Fatalf("not seen: %+v", r.Status.Conditions)
		}
		if rf := check(actApprove, s); rf == nil || !strings.Contains(rf.Error(), "fix the AnalysisTemplate") {
			t.Errorf("approve: %v", rf)
		}
		if got := pauseReason(s, now); !strings.HasPrefix(got, "analysis not started: ") {
			t.Errorf("pause reason %q", got)
		}
	})
	t.Run("spec.strategy.paused", func(t *testing.T) {
		r := atAnalysis()
		r.Spec.Strategy.Paused = true
		r = decide(r, runOf(analysisv1alpha1.AnalysisRunning))
		s := stateOf(r)
		if s.reason != v1beta1.ProgressingReasonPaused || stateText(s) != "Paused" || check(actResume, s) != nil || check(actPause, s) == nil {
			t.Errorf("paused: reason %q, resume %v, pause %v", s.reason, check(actResume, s), check(actPause, s))
		}
	})
}

func TestPauseReason(t *testing.T) {
	timed := at(example1(), 2, v1beta1.CanaryStepStatePaused, v1beta1.ProgressingReasonInRolling, "")
	for _, c := range []struct {
		r    *v1beta1.Rollout
		want string
	}{
		{timed, "step 2 waits 60s before going on (45s left)"},
		{heldByAnalysis(), `held by analysis: analysis of step 1 (rollouts-demo-5ddcc7f994-1) is Error: metric "error-rate" Error: Prometheus at http://127.0.0.1:9 could not be reached`},
		{abortedRollout(), "aborted: the new version's pods are scaled to zero and traffic goes to stable"},
		{healthy(example1()), ""},
		{at(example1(), 2, v1beta1.CanaryStepStateUpgrade, v1beta1.ProgressingReasonInRolling, ""), ""},
	} {
		if got := pauseReason(stateOf(c.r), now); got != c.want {
			t.Errorf("pause reason %q, want %q", got, c.want)
		}
	}
	// The last step at 100% does not pause.
	last := at(example1(), 3, v1beta1.CanaryStepStatePaused, v1beta1.ProgressingReasonInRolling, "")
	if s := stateOf(last); s.waitingForApproval() || s.timedPause() {
		t.Error("the last 100% step is seen as pausing")
	}
	stuckR := at(example1(), 2, v1beta1.CanaryStepStateUpgrade, v1beta1.ProgressingReasonInRolling, "")
	stuckR.Status.Conditions = append(stuckR.Status.Conditions, v1beta1.RolloutCondition{Type: conditionProgressDeadline, Status: corev1.ConditionTrue, Message: "not ready: echoserver-x (ImagePullBackOff)"})
	if got := stuck(stuckR); got != "not ready: echoserver-x (ImagePullBackOff)" {
		t.Errorf("stuck %q", got)
	}
}
