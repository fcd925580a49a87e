package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
		{labelRollout, run.LabelRollout},
	} {
		if c.plugin != c.controller {
			t.Errorf("plugin has %q, controller %q", c.plugin, c.controller)
		}
	}
}

// paused is r paused by spec.strategy.paused, as the controller shows it.
func paused(r *v1beta1.Rollout) *v1beta1.Rollout {
	r.Spec.Strategy.Paused = true
	r.Status.Conditions[0].Reason = v1beta1.ProgressingReasonPaused
	r.Status.Message = "Rollout has been paused, you can resume it by kube-cli"
	return waitingFor(r, v1beta1.HoldPausedBySpec, "")
}

func TestCheck(t *testing.T) {
	upgrading := waitingFor(at(example1(), 2, v1beta1.CanaryStepStateUpgrade, v1beta1.ProgressingReasonInRolling, "Rollout is in step(2/3), and upgrade workload to new version"), v1beta1.HoldWaitingForPods, "")
	timed := timedPause("Rollout is in step(2/3), and wait duration(60 seconds) to enter the next step")
	finalising := waitingFor(at(example1(), 3, v1beta1.CanaryStepStateCompleted, v1beta1.ProgressingReasonFinalising, "Rollout is in finalising"), v1beta1.HoldWaitingForPods, "")
	initializing := waitingFor(at(example1(), 1, v1beta1.CanaryStepStateInit, v1beta1.ProgressingReasonInitializing, ""), v1beta1.HoldTrafficGracePeriod, "")
	noIngress := waitingFor(at(example1(), 1, v1beta1.CanaryStepStateInit, v1beta1.ProgressingReasonInitializing, ""), v1beta1.HoldTrafficError,
		`traffic routing failed at InitializeTrafficRouting: ingress "echoserver" not found`)
	cancelling := waitingFor(at(example1(), 2, v1beta1.CanaryStepStateUpgrade, v1beta1.ProgressingReasonCancelling, ""), v1beta1.HoldTrafficGracePeriod, "")
	abortedPaused := abortedRollout()
	abortedPaused.Spec.Strategy.Paused = true
	stuck := waitingFor(at(example1(), 2, v1beta1.CanaryStepStateUpgrade, v1beta1.ProgressingReasonInRolling, ""), v1beta1.HoldProgressDeadlineExceeded,
		"Rollout is in step(2/3), and the batch is not ready after 3s: 0 of 3 new pods ready; not ready: echoserver-x (CrashLoopBackOff)")
	notStarted := waitingFor(at(example1(), 1, v1beta1.CanaryStepStateMetricsAnalysis, v1beta1.ProgressingReasonInRolling, ""), v1beta1.HoldAnalysisNotStarted,
		`analysis of step 1 (rollouts-demo-5ddcc7f994-1) could not start: AnalysisTemplate "error-rate" not found`)
	trafficError := waitingFor(at(example1(), 2, v1beta1.CanaryStepStateTrafficRouting, v1beta1.ProgressingReasonInRolling, ""), v1beta1.HoldTrafficError,
		"traffic routing failed at RouteTraffic: the Ingress is gone")
	refused := waitingFor(at(example1(), 1, v1beta1.CanaryStepStatePaused, v1beta1.ProgressingReasonInRolling, ""), v1beta1.HoldNewRevisionRefused,
		"a blue-green release takes no new version mid-release: re-apply the stable template (revision 756ff5f57c) first, then release the new one")
	gone := waitingFor(at(example1(), 1, v1beta1.CanaryStepStateUpgrade, v1beta1.ProgressingReasonInRolling, ""), v1beta1.HoldWorkloadNotFound,
		"Deployment echoserver not found: the Rollout waits for it")

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
			actRetry:  "this release is neither (step 1/3, StepPaused, waiting for WaitingForApproval)",
		}},
		{"timed pause", timed, map[action]string{actApprove: "", actRetry: "neither", actResume: "not paused"}},
		{"upgrading a batch", upgrading, map[action]string{
			actApprove: "nothing waits for approval: step 2/3 is at StepUpgrade, waiting for WaitingForPods", actPause: "", actAbort: "", actPromote: "", actUndo: "",
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
		{"initializing without its Ingress", noIngress, map[action]string{
			actAbort: `the release cannot start: traffic routing failed at InitializeTrafficRouting: ingress "echoserver" not found: fix the routing objects`,
		}},
		{"cancelling", cancelling, map[action]string{actAbort: "being cancelled", actUndo: "being cancelled"}},
		{"progress deadline", stuck, map[action]string{
			actApprove: "step 2/3 is stuck (Rollout is in step(2/3), and the batch is not ready after 3s: 0 of 3 new pods ready; not ready: echoserver-x (CrashLoopBackOff)); approving does not make pods ready",
			actAbort:   "", actUndo: "", actPause: "", actPromote: "", actRetry: "neither",
		}},
		{"analysis not started", notStarted, map[action]string{
			actApprove: `step 1/3 waits for an analysis that could not start (analysis of step 1 (rollouts-demo-5ddcc7f994-1) could not start: AnalysisTemplate "error-rate" not found): fix the AnalysisTemplate`,
			actRetry:   "the controller retries on its own", actAbort: "", actUndo: "",
		}},
		{"traffic error", trafficError, map[action]string{
			actApprove: "step 2/3 is held by a failure (traffic routing failed at RouteTraffic: the Ingress is gone): fix its cause (the controller retries), or abort",
			actAbort:   "", actUndo: "", actPause: "",
		}},
		{"new revision refused", refused, map[action]string{
			actApprove: "a blue-green release takes no new version mid-release: re-apply the stable template (revision 756ff5f57c) first, then release the new one; until then the release takes no approve: run `kubectl sluice undo rollouts-demo`",
			actAbort:   "until then the release takes no abort", actPromote: "takes no promote", actRetry: "takes no retry",
			actUndo: "", actPause: "",
		}},
		{"workload gone", gone, map[action]string{
			actApprove: "Deployment echoserver not found: the Rollout waits for it: re-create the workload, or delete the Rollout",
			actAbort:   "re-create the workload", actUndo: "re-create the workload", actPause: "re-create the workload",
		}},
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

// Nothing the plugin decides depends on the message: each Rollout given
// another state's message (or none) reads the same.
func TestTheMessageDecidesNothing(t *testing.T) {
	type reading struct {
		Allowed              []action
		Waiting, State, Road string
		Code                 int
		Why                  string
	}
	read := func(r *v1beta1.Rollout) reading {
		s := stateOf(r)
		code, why := outcome(r)
		return reading{allowed(s), waitingText(s, now), stateText(s), currentRoute(s), code, why}
	}
	fixtures := map[string]func() *v1beta1.Rollout{
		"held": heldByAnalysis, "aborted": abortedRollout, "approval": waitingApproval,
		"timed":   func() *v1beta1.Rollout { return timedPause("") },
		"healthy": func() *v1beta1.Rollout { return healthy(example1()) },
	}
	for name, mk := range fixtures {
		want := read(mk())
		for _, msg := range []string{"", msgHeld, msgAborted, "Rollout has been cancelled: the workload is back at its stable revision", "Rollout is in step(1/3), and you need manually confirm to enter the next step"} {
			r := mk()
			r.Status.Message = msg
			if r.Status.CanaryStatus != nil {
				r.Status.CanaryStatus.Message = msg
			}
			if diff := cmp.Diff(want, read(r), cmp.AllowUnexported(reading{})); diff != "" {
				t.Errorf("%s with message %q reads differently (-want +got):\n%s", name, msg, diff)
			}
		}
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

// A trafficRoutingRef routes nothing (the controller does not act on it):
// the plugin shows no traffic for it, as the controller and the metrics.
func TestTrafficRoutingRefRoutesNothing(t *testing.T) {
	r := waitingApproval()
	r.Spec.Strategy.Canary.TrafficRoutings = nil
	r.Spec.Strategy.Canary.TrafficRoutingRef = "my-routing"
	r.Status.Release.Traffic = nil
	if got := currentRoute(stateOf(r)); got != "" {
		t.Errorf("a trafficRoutingRef shows traffic %q", got)
	}
}

// The rules read what the real release engine writes: each case lets
// rollout.Decide make a release wait, checks the hold the plugin reads
// and what it allows, and for approve feeds the plugin's patch back to
// Decide.
func TestRulesOnTheControllersDecisions(t *testing.T) {
	runOf := func(phase analysisv1alpha1.AnalysisPhase) analysisv1alpha1.AnalysisRun {
		name := run.Name(run.Target{Rollout: "rollouts-demo", CanaryRevision: "5ddcc7f994", StepIndex: 1})
		return analysisv1alpha1.AnalysisRun{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
			Spec:       analysisv1alpha1.AnalysisRunSpec{Rollout: "rollouts-demo", StepIndex: 1},
			Status:     analysisv1alpha1.AnalysisRunStatus{Phase: phase, Message: "metric \"error-rate\" " + string(phase)},
		}
	}
	info := func() *workload.Info {
		return &workload.Info{Replicas: 5, Frozen: true, Controlled: true, StableRevision: "756ff5f57c", UpdateRevision: "5ddcc7f994", PodRevision: "5ddcc7f994",
			Updated: 1, UpdatedReady: 1, Others: 4, Settled: true, RevisionLabel: "pod-template-hash"}
	}
	decideWith := func(r *v1beta1.Rollout, o rollout.Observed) *v1beta1.Rollout {
		o.Rollout, o.Now = r, now
		if o.Workload == nil {
			o.Workload = info()
		}
		d := rollout.Decide(o)
		// A traffic call the decision waits for fails, as the executor
		// would report it.
		if d.Traffic.Op != rollout.NoTraffic && o.Traffic == nil {
			o.Traffic = []rollout.TrafficResult{{Call: d.Traffic, Err: errors.New("the Ingress is gone")}}
			d = rollout.Decide(o)
		}
		out := r.DeepCopy()
		out.Status = d.Status
		return out
	}
	decide := func(r *v1beta1.Rollout, runs ...analysisv1alpha1.AnalysisRun) *v1beta1.Rollout {
		return decideWith(r, rollout.Observed{Runs: runs})
	}
	atAnalysis := func() *v1beta1.Rollout {
		r := at(example1(), 1, v1beta1.CanaryStepStateMetricsAnalysis, v1beta1.ProgressingReasonInRolling, "")
		r.Spec.Strategy.Canary.TrafficRoutings = nil // no traffic calls in between
		return r
	}
	expectHold := func(t *testing.T, r *v1beta1.Rollout, want v1beta1.HoldReason) state {
		t.Helper()
		s := stateOf(r)
		if s.waiting() != want {
			t.Fatalf("the plugin reads the hold %q, want %q (status.release %+v)", s.waiting(), want, r.Status.Release)
		}
		if c := r.Status.Condition(v1beta1.RolloutConditionWaiting); c == nil || c.Reason != string(want) {
			t.Errorf("the Waiting condition %+v does not say %s", c, want)
		}
		return s
	}

	t.Run("Error verdict holds", func(t *testing.T) {
		r := decide(atAnalysis(), runOf(analysisv1alpha1.AnalysisError))
		s := expectHold(t, r, v1beta1.HoldAnalysisError)
		if !s.heldByAnalysis() || !strings.Contains(s.detail(), "is Error") || stateText(s) != "Held" {
			t.Fatalf("not seen as held: %+v", s.hold)
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
		s := expectHold(t, r, v1beta1.HoldAborted)
		if !s.aborted() || stateText(s) != "Aborted" || desired(s) != 0 {
			t.Fatalf("not seen as aborted: %+v, %d pods desired", r.Status.Conditions, desired(s))
		}
		for a, allowed := range map[action]bool{actRetry: true, actUndo: true, actAbort: false, actApprove: false, actPromote: false, actPause: false} {
			if got := check(a, s) == nil; got != allowed {
				t.Errorf("%s allowed=%v, want %v (%v)", a, got, allowed, check(a, s))
			}
		}
		if code, why := outcome(r); code != ExitNotPromoted || !strings.HasPrefix(why, "the release was rolled back by its analysis at step 1: analysis of step 1") {
			t.Errorf("outcome %d %q", code, why)
		}
	})
	t.Run("passed analysis waits for approval", func(t *testing.T) {
		r := decide(atAnalysis(), runOf(analysisv1alpha1.AnalysisSuccessful))
		s := expectHold(t, r, v1beta1.HoldWaitingForApproval)
		if check(actApprove, s) != nil || check(actRetry, s) == nil {
			t.Errorf("approve: %v, retry: %v", check(actApprove, s), check(actRetry, s))
		}
		if got := waitingText(s, now); got != "step 1 waits for approval (pause: {})" {
			t.Errorf("waiting %q", got)
		}
	})
	t.Run("a run that cannot start", func(t *testing.T) {
		r := decideWith(atAnalysis(), rollout.Observed{RunErrors: []rollout.RunError{
			{Request: rollout.RunRequest{Step: 1}, Err: errors.New(`AnalysisTemplate "error-rate" not found`)},
		}})
		s := expectHold(t, r, v1beta1.HoldAnalysisNotStarted)
		if rf := check(actApprove, s); rf == nil || !strings.Contains(rf.Error(), `AnalysisTemplate "error-rate" not found`) {
			t.Errorf("approve: %v", rf)
		}
		if got := waitingText(s, now); !strings.HasPrefix(got, "analysis not started: ") {
			t.Errorf("waiting %q", got)
		}
	})
	t.Run("spec.strategy.paused", func(t *testing.T) {
		r := atAnalysis()
		r.Spec.Strategy.Paused = true
		r = decide(r, runOf(analysisv1alpha1.AnalysisRunning))
		s := expectHold(t, r, v1beta1.HoldPausedBySpec)
		if stateText(s) != "Paused" || check(actResume, s) != nil || check(actPause, s) == nil {
			t.Errorf("paused: reason %q, resume %v, pause %v", s.reason, check(actResume, s), check(actPause, s))
		}
	})
	t.Run("a batch past its progress deadline", func(t *testing.T) {
		r := at(example1(), 2, v1beta1.CanaryStepStateUpgrade, v1beta1.ProgressingReasonInRolling, "")
		r.Spec.Strategy.ProgressDeadlineSeconds = ptr(int32(3))
		r.Spec.Strategy.Canary.TrafficRoutings = nil
		w := info()
		w.Updated, w.UpdatedReady, w.Others, w.Unready = 3, 1, 2, []string{"echoserver-x (CrashLoopBackOff)"}
		r = decideWith(r, rollout.Observed{Workload: w})
		s := expectHold(t, r, v1beta1.HoldProgressDeadlineExceeded)
		if !strings.Contains(waitingText(s, now), "stuck: Rollout is in step(2/3), and the batch is not ready after 3s: 1 of 3 new pods ready; not ready: echoserver-x (CrashLoopBackOff)") {
			t.Errorf("waiting %q", waitingText(s, now))
		}
		if check(actApprove, s) == nil || check(actAbort, s) != nil || check(actUndo, s) != nil {
			t.Errorf("approve %v, abort %v, undo %v", check(actApprove, s), check(actAbort, s), check(actUndo, s))
		}
		if got := desired(s); got != 3 {
			t.Errorf("the batch in force has %d pods, want 3", got)
		}
	})
	t.Run("a routing call that fails", func(t *testing.T) {
		r := at(example1(), 2, v1beta1.CanaryStepStateTrafficRouting, v1beta1.ProgressingReasonInRolling, "")
		routedAt(r, 1)
		w := info()
		w.Updated, w.UpdatedReady, w.Others = 3, 3, 2
		r = decideWith(r, rollout.Observed{Workload: w})
		s := expectHold(t, r, v1beta1.HoldTrafficError)
		if !strings.Contains(s.detail(), "the Ingress is gone") || check(actApprove, s) == nil || check(actAbort, s) != nil {
			t.Errorf("detail %q, approve %v, abort %v", s.detail(), check(actApprove, s), check(actAbort, s))
		}
		// The routing in force is still step 1's, whatever the step says.
		if got := currentRoute(s); got != "header User-Agent=Andriod" {
			t.Errorf("route %q, want step 1's", got)
		}
	})
	t.Run("a new version mid blue-green release", func(t *testing.T) {
		r := waitingApproval()
		r.Spec.Strategy.BlueGreen = &v1beta1.BlueGreenStrategy{Steps: r.Spec.Strategy.Canary.Steps}
		r.Spec.Strategy.Canary = nil
		r.Status.BlueGreenStatus = &v1beta1.BlueGreenStatus{CommonStatus: r.Status.CanaryStatus.CommonStatus, UpdatedRevision: "5ddcc7f994", UpdatedReplicas: 1, UpdatedReadyReplicas: 1}
		r.Status.CanaryStatus = nil
		w := info()
		w.UpdateRevision, w.PodRevision = "77b8c9d5f6", "77b8c9d5f6"
		r = decideWith(r, rollout.Observed{Workload: w})
		s := expectHold(t, r, v1beta1.HoldNewRevisionRefused)
		for a, allowed := range map[action]bool{actUndo: true, actPause: true, actApprove: false, actAbort: false, actPromote: false, actRetry: false} {
			if got := check(a, s) == nil; got != allowed {
				t.Errorf("%s allowed=%v, want %v (%v)", a, got, allowed, check(a, s))
			}
		}
	})
}

func TestWaitingText(t *testing.T) {
	for _, c := range []struct {
		r    *v1beta1.Rollout
		want string
	}{
		{timedPause(""), "step 2 waits 60s before going on (45s left)"},
		{heldByAnalysis(), "held by analysis: " + whyHeld},
		{abortedRollout(), "aborted: " + whyAborted + "; the new version's pods are scaled to zero and traffic goes to stable"},
		{healthy(example1()), ""},
		{until(waitingFor(at(example1(), 2, v1beta1.CanaryStepStateUpgrade, v1beta1.ProgressingReasonInRolling, ""), v1beta1.HoldWaitingForPods, ""), 20*time.Second),
			"the batch of step 2: 1 of 3 new pods ready (progress deadline in 20s)"},
		{until(waitingFor(at(example1(), 1, v1beta1.CanaryStepStateTrafficRouting, v1beta1.ProgressingReasonInRolling, ""), v1beta1.HoldTrafficGracePeriod, ""), time.Second),
			"a routing change settles (gracePeriodSeconds, 1s left)"},
		{paused(waitingApproval()), "paused by spec.strategy.paused (kubectl sluice pause)"},
		{waitingFor(at(example1(), 3, v1beta1.CanaryStepStateCompleted, v1beta1.ProgressingReasonFinalising, ""), v1beta1.HoldWaitingForPods, ""), "the workload rolls out on its own"},
	} {
		if got := waitingText(stateOf(c.r), now); got != c.want {
			t.Errorf("waiting %q, want %q", got, c.want)
		}
	}
}
