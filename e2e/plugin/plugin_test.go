//go:build e2e

package plugin_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/cmd/kubectl-sluice/cli"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

// The guide's Example 1 as published (v1alpha1, step 1 waits for
// approval, steps 2 and 3 wait 60s): get shows the release, approve
// advances it with kubectl-kruise's patch, pause and resume hold and free
// it, promote --full completes it at once; what the state does not allow
// is refused with the reason.
func TestApprovePauseResumePromote(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	f.startExample1("", "docs/examples/guide/example1-rollout.yaml")

	if r := f.sluice("get", "nosuch"); r.code != cli.ExitNotFound || !strings.Contains(r.errOut, `rollout "nosuch" not found in namespace "`+f.ns+`"`) {
		t.Errorf("get nosuch: exit %d %q", r.code, r.errOut)
	}
	if row := f.getRow(); row["PHASE"] != "Healthy" || row["STEP"] != "-" {
		t.Errorf("before any release: %v", row)
	}
	f.refused([]string{"approve", name}, "cannot approve rollout rollouts-demo: no release is in progress (phase Healthy)")
	f.refused([]string{"abort", name}, "no release is in progress")
	f.refused([]string{"undo", name}, "`kubectl rollout undo`")

	f.setImage(imageV2)
	f.waitStep(1, v1beta1.CanaryStepStatePaused)
	row := f.getRow()
	for col, want := range map[string]string{"PHASE": "Progressing", "STEP": "1/3", "STATE": "StepPaused", "WAITING": "WaitingForApproval", "TRAFFIC": "header User-Agent=Andriod", "CANARY": "1/1", "VERDICT": "-"} {
		if row[col] != want {
			t.Errorf("get: %s = %q, want %q (row %v)", col, row[col], want, row)
		}
	}
	// On a terminal status -w redraws the view in place, each line cut to
	// the terminal's width; --timeout ends it with exit code 6.
	w := f.sluiceOnTerminal(90, "status", name, "-w", "--timeout", "3s", "--interval", "250ms")
	if w.code != cli.ExitTimeout || !strings.Contains(w.errOut, "timed out after 3s waiting for rollout rollouts-demo to end: it is at step 1/3 StepPaused") {
		t.Errorf("status -w --timeout: exit %d %q", w.code, w.errOut)
	}
	contains(t, "status -w on a terminal", w.out, "Every 250ms: kubectl sluice status rollouts-demo -w", "Waiting   WaitingForApproval for ", ": step 1 waits for approval")
	if n := strings.Count(w.out, "F\x1b[J"); n < 3 {
		t.Errorf("the view was redrawn in place %d times in 3s, want several", n)
	}
	for _, line := range strings.Split(regexp.MustCompile(`\x1b\[[0-9]*[A-Za-z]`).ReplaceAllString(w.out, ""), "\r\n") {
		if n := len([]rune(line)); n >= 90 {
			t.Errorf("a line of %d characters on a terminal 90 wide: %q", n, line)
		}
	}
	f.refused([]string{"retry", name}, "this release is neither (step 1/3, StepPaused, waiting for WaitingForApproval)")
	f.refused([]string{"resume", name}, "step 1 waits for approval: run `kubectl sluice approve rollouts-demo`")

	// pause holds the release; approve is refused while paused.
	f.ok("pause", name)
	f.waitRollout("paused", func(r *v1beta1.Rollout) bool {
		return r.Spec.Strategy.Paused && reason(r) == v1beta1.ProgressingReasonPaused
	})
	if row := f.getRow(); row["STATE"] != "Paused" || row["WAITING"] != "PausedBySpec" {
		t.Errorf("get while paused: %v", row)
	}
	f.refused([]string{"pause", name}, "already paused")
	f.refused([]string{"approve", name}, "resume it first with `kubectl sluice resume rollouts-demo`")
	f.ok("resume", name)
	f.waitStep(1, v1beta1.CanaryStepStatePaused)
	if r := f.rollout(); r.Spec.Strategy.Paused {
		t.Error("resume left spec.strategy.paused")
	}

	// approve goes on to step 2, which waits 60s.
	out := f.ok("approve", name)
	contains(t, "approve", out, "rollout/rollouts-demo: step 1/3 approved")
	r := f.waitRollout("step 2", func(r *v1beta1.Rollout) bool { return r.Status.CurrentStepIndex == 2 })
	if r.Status.Phase != v1beta1.RolloutPhaseProgressing {
		t.Errorf("after approve: %s", r.Status.Phase)
	}
	f.waitStep(2, v1beta1.CanaryStepStatePaused)
	view := f.ok("status", name)
	contains(t, "status", view,
		"Phase     Progressing: step 2/3 StepPaused",
		"  ✔  1     1         header User-Agent=Andriod",
		"  ▶  2     50% (3)   50%",
		"[############........] 3/3 ready",
		"Traffic   50% to the new version",
		"Waiting   TimedPause for ",
		": step 2 waits 60s before going on",
		"kubectl sluice promote rollouts-demo --full",
	)

	// promote --full skips the rest, even from a paused release (which it
	// resumes): done long before step 2's 60s.
	start := time.Now()
	f.ok("pause", name)
	f.waitRollout("paused at step 2", func(r *v1beta1.Rollout) bool { return reason(r) == v1beta1.ProgressingReasonPaused })
	contains(t, "promote", f.ok("promote", name, "--full"), "full promotion requested at step 2/3 (and resumed, so that the promotion acts now)")
	r = f.waitRollout("the release to complete", completed)
	if took := time.Since(start); took > 50*time.Second {
		t.Errorf("promote took %s: the pauses were not skipped", took)
	}
	if got := overrides(r); !slices.Contains(got, "Promote") {
		t.Errorf("promotion not recorded: %v", got)
	}
	if r.Spec.Strategy.Paused {
		t.Error("promote left the Rollout paused")
	}
	f.waitPods(imageV2, 5)
	f.refused([]string{"promote", name, "--full"}, "no release is in progress (phase Healthy)")
	if row := f.getRow(); row["PHASE"] != "Healthy" || row["STATE"] != "Completed" {
		t.Errorf("after the release: %v", row)
	}
}

// docs/examples' analysis release of a healthy version: abort rolls it
// back (its pods go), what an aborted release does not allow is refused,
// retry starts it again and status -w follows it to the end; history
// lists both attempts' runs, the overrides and the Events.
func TestAbortRetryHistory(t *testing.T) {
	f := newFixture(t, 6*time.Minute)
	f.startExample1(imageV2, "docs/examples/error-rate-template.yaml", "docs/examples/example1-analysis-rollout.yaml")
	f.waitRollout("the release to start", func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseProgressing && reason(r) == v1beta1.ProgressingReasonInRolling
	})

	out := f.ok("abort", name)
	contains(t, "abort", out, "abort requested at step 1/3")
	r := f.waitRollout("the release to abort", aborted)
	if l := r.Status.LastRelease; l == nil || l.Outcome != v1beta1.OutcomeAborted || l.Message != "aborted by a person (sluice.dev/abort)" || l.Step != 1 {
		t.Errorf("status.lastRelease after abort: %+v", l)
	}
	f.waitPods(imageV2, 0)
	f.waitPods(imageV1, 5)

	f.refused([]string{"abort", name}, "already aborted")
	f.refused([]string{"approve", name}, "approving does not resume it")
	f.refused([]string{"promote", name, "--full"}, "the release is aborted: to release this version anyway, retry it")
	f.refused([]string{"pause", name}, "aborted and nothing moves")
	if row := f.getRow(); row["STATE"] != "Aborted" || row["WAITING"] != "Aborted" || row["CANARY"] != "0/0" || row["TRAFFIC"] != "0%" {
		t.Errorf("get after abort: %v", row)
	}
	contains(t, "status", f.ok("status", name),
		"Phase     Progressing: step 1/3 Aborted",
		"  ✖  1 ",
		"Waiting   Aborted for ",
		": aborted: aborted by a person (sluice.dev/abort); the new version's pods are scaled to zero",
		"kubectl sluice retry rollouts-demo",
		"kubectl sluice undo rollouts-demo",
	)

	// The controller tells releases apart by their start, in whole seconds
	// (status.release.started): a retry within the second the aborted
	// release began would be taken for that release when it ends, and
	// status.lastRelease would keep saying Aborted. Retry in a later second.
	started := f.rollout().Status.Release.Started.Time
	if err := framework.Poll(f.ctx, 5*time.Second, func() (bool, error) { return time.Now().After(started.Add(time.Second)), nil }); err != nil {
		t.Fatal(err)
	}
	f.ok("retry", name)
	f.waitRollout("the retried release", func(r *v1beta1.Rollout) bool { return !aborted(r) })
	w := f.sluice("status", name, "-w", "--timeout", "3m")
	if w.code != cli.ExitOK {
		t.Fatalf("status -w: exit %d, want 0 once the release completed: %s", w.code, w.errOut)
	}
	contains(t, "status -w", w.out, "step 1/3", "step 2/3", "step 3/3", "Healthy  analysis Successful  | Rollout progressing has been completed")
	if strings.Contains(w.out, "\x1b[") {
		t.Error("status -w redraws with escape codes into a pipe")
	}
	r = f.rollout()
	if c := r.Status.CanaryStatus; !completed(r) || c.StableRevision != c.CanaryRevision || f.pods(imageV2) != 5 {
		t.Errorf("not promoted after retry: %s %+v, %d new pods", r.Status.Phase, c, f.pods(imageV2))
	}
	if got := overrides(r); !slices.Equal(got, []string{"Abort", "Retry"}) {
		t.Errorf("overrides %v, want Abort then Retry", got)
	}

	hash := r.Status.CanaryStatus.CanaryRevision
	h := f.ok("history", name)
	contains(t, "history", h,
		"Revision "+hash+" (stable)",
		name+"-"+hash+"-1-r1 ", name+"-"+hash+"-2-r1 ", name+"-"+hash+"-3-r1 ",
		"Successful",
		"Overrides", "Abort", "Retry",
		"Events", "ReleaseStarted", "Aborted", "ReleaseCompleted",
	)
	if strings.Index(h, "Events") < strings.Index(h, name+"-"+hash+"-3-r1") {
		t.Error("history: Events before the runs")
	}
}

// A version serving 20% errors is rolled back by its analysis: status -w
// exits 5 saying so, status shows the failing metric with its values and
// condition, and undo puts the stable template back, which ends the release.
func TestAnalysisRollbackThenUndo(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	f.startExample1(imageBad, "docs/examples/error-rate-template.yaml", "docs/examples/example1-analysis-rollout.yaml")
	f.waitRollout("the release to start", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseProgressing })

	w := f.sluice("status", name, "-w", "--timeout", "3m")
	if w.code != cli.ExitNotPromoted {
		t.Errorf("status -w: exit %d, want %d (aborted)", w.code, cli.ExitNotPromoted)
	}
	contains(t, "status -w", w.errOut, "the release was rolled back by its analysis at step 1: analysis of step 1")
	contains(t, "status -w", w.out, "Aborted  new pods")
	f.waitRollout("aborted", aborted)

	view := f.ok("status", name)
	contains(t, "status", view,
		"Analysis\n  step 1: "+name+"-",
		"error-rate   Failed",
		"[0.",
		"pass if result[0] < 0.05",
		`error-rate: value [0.`,
		"kubectl sluice undo rollouts-demo",
	)

	out := f.ok("undo", name)
	contains(t, "undo", out, "Deployment echoserver's template is back at the stable revision", "Sluice cancels the release")
	r := f.waitRollout("the release to be cancelled", completed)
	// The release ended when its analysis rolled it back; undo cleaned up.
	if l := r.Status.LastRelease; succeeded(r) != "False" || l == nil || l.Outcome != v1beta1.OutcomeRolledBack || l.Metric != "error-rate" || r.Status.Release != nil {
		t.Errorf("after undo: Succeeded %q, lastRelease %+v, release %+v", succeeded(r), l, r.Status.Release)
	}
	if img := f.deployment().Spec.Template.Spec.Containers[0].Image; img != imageV1 {
		t.Errorf("the Deployment runs %s after undo, want %s", img, imageV1)
	}
	f.waitPods(imageV1, 5)
	f.refused([]string{"undo", name}, "no release is in progress")
	if r := f.sluice("status", name, "-w", "--timeout", "30s"); r.code != cli.ExitNotPromoted || !strings.Contains(r.errOut, "the release was rolled back by its analysis") {
		t.Errorf("status -w after undo: exit %d %q, want %d (cancelled)", r.code, r.errOut, cli.ExitNotPromoted)
	}
}

// A release held by its analysis (Prometheus unreachable): get and status
// say so and why, retry runs the analysis again (a fresh run), and approve
// goes on past the verdict, which is recorded as an override.
func TestHeldByAnalysis(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	if _, err := manifest.Create(f.ctx, f.c, f.ns, []byte(framework.UnreachableTemplate)); err != nil {
		t.Fatal(err)
	}
	f.startExample1(imageV2, "docs/examples/example1-analysis-rollout.yaml")
	held := func(r *v1beta1.Rollout) bool {
		h := r.Status.HoldOf()
		return h != nil && h.Reason == v1beta1.HoldAnalysisError && h.Step == 1
	}
	r := f.waitRollout("the analysis to hold the release", held)
	first := r.Status.Analysis.StepRun.Name

	if row := f.getRow(); row["STATE"] != "Held" || row["WAITING"] != "AnalysisError" || row["VERDICT"] != "Error" || row["STEP"] != "1/3" {
		t.Errorf("get while held: %v", row)
	}
	contains(t, "status", f.ok("status", name),
		"Phase     Progressing: step 1/3 Held",
		"Waiting   AnalysisError for ",
		": held by analysis: analysis of step 1 ("+first+") is Error",
		"Prometheus at http://127.0.0.1:9 could not be reached",
		"error-rate  Error",
		"kubectl sluice approve rollouts-demo         go on despite the analysis verdict (recorded as an override)",
		"kubectl sluice retry rollouts-demo           run the analysis of this step again",
	)
	all := f.ok("get", "-A")
	if !regexp.MustCompile(`(?m)^NAMESPACE\s+NAME\s+PHASE`).MatchString(all) || !regexp.MustCompile(`(?m)^`+f.ns+`\s+rollouts-demo\s+Progressing\s+1/3\s+Held`).MatchString(all) {
		t.Errorf("get -A lacks this namespace's row")
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(f.ok("get", name, "-o", "json")), &obj); err != nil || obj["kind"] != "Rollout" || obj["apiVersion"] != "rollouts.kruise.io/v1beta1" {
		t.Errorf("get -o json: %v %v %v", err, obj["kind"], obj["apiVersion"])
	}

	f.ok("retry", name)
	r = f.waitRollout("the retried analysis to hold again", func(r *v1beta1.Rollout) bool {
		return held(r) && r.Status.Analysis.StepRun.Name != first
	})
	if got := r.Status.Analysis.StepRun.Name; got != first+"-r1" {
		t.Errorf("retried run %s, want %s-r1", got, first)
	}

	f.ok("approve", name)
	r = f.waitRollout("step 2", func(r *v1beta1.Rollout) bool { return r.Status.CurrentStepIndex >= 2 })
	a := r.Status.Analysis
	if got := overrides(r); !slices.Equal(got, []string{"Retry", "Approve"}) {
		t.Fatalf("overrides %v, want Retry then Approve", got)
	}
	if o := a.Overrides[1]; o.Verdict != "Error" || o.Run != first+"-r1" || o.Step != 1 {
		t.Errorf("approval recorded as %+v", o)
	}
	contains(t, "history", f.ok("history", name), first+" ", first+"-r1 ", "Error", "Approve")
}
