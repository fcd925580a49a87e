package rollout

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// A decision is recorded before it is acted on: when the status cannot be
// written (another writer won, our read was stale), nothing moves.
func TestNothingMovesUnlessTheDecisionIsCommitted(t *testing.T) {
	s := newReleaseSim(t, example4())
	s.run(atStep(1, v1beta1.CanaryStepStatePaused))
	s.approve()
	s.commitErr = fmt.Errorf("%w: the object has been modified", ErrStale)
	before, acts := *s.info, s.acts
	d := s.reconcile()
	if d.Action != Release || d.Batch.Updated != 5 {
		t.Fatalf("decided %s %+v, want the release of step 2's 5 pods", d.Action, d.Batch)
	}
	if s.acts != acts || s.info.Updated != before.Updated {
		t.Errorf("acted on an uncommitted decision: %d actions, %d new pods (was %d)", s.acts-acts, s.info.Updated, before.Updated)
	}
	s.commitErr = nil
	s.run(atStep(2, v1beta1.CanaryStepStatePaused))
	if s.info.Updated != 5 {
		t.Errorf("%d new pods at step 2, want 5", s.info.Updated)
	}
}

// A workload write that fails reaches Decide like any observation: the
// hold, an Event and the message say so, and the next attempt clears it.
func TestAWorkloadActionThatFailsHoldsTheRelease(t *testing.T) {
	s := newReleaseSim(t, example4())
	s.actErr = errors.New(`admission webhook "policy.example.com" denied the request`)
	s.reconcile()
	h := s.r.Status.HoldOf()
	if h == nil || h.Reason != v1beta1.HoldWorkloadError || !strings.Contains(h.Message, "denied the request") {
		t.Fatalf("hold %+v", h)
	}
	if s.r.Status.Message != h.Message {
		t.Errorf("message %q, want the hold's %q", s.r.Status.Message, h.Message)
	}
	if !slices.ContainsFunc(s.events, func(e Event) bool { return e.Reason == ReasonWorkloadActionFailed }) {
		t.Errorf("no %s Event: %+v", ReasonWorkloadActionFailed, s.events)
	}
	events := len(s.events)
	s.reconcile()
	if n := len(s.events) - events; n != 0 {
		t.Errorf("the same failure again made %d more Events", n)
	}
	s.actErr = nil
	s.run(atStep(1, v1beta1.CanaryStepStatePaused))
	if h := s.r.Status.HoldOf(); h == nil || h.Reason != v1beta1.HoldWaitingForApproval {
		t.Errorf("hold after the write succeeded: %+v", h)
	}
}

// A jump back (kubectl-kruise rollout undo --fast) re-enters the step:
// traffic comes down to the step's route first, the extra new pods go,
// and the step counts as done (and is analysed afresh) only with exactly
// its pods.
func TestStepJumpBack(t *testing.T) {
	s := newReleaseSim(t, withAnalysis(example1(), errorRate))
	s.verdict = phases(analysisv1alpha1.AnalysisSuccessful, 0)
	for i := range s.r.Spec.Strategy.Canary.Steps {
		s.r.Spec.Strategy.Canary.Steps[i].Pause = v1beta1.RolloutPause{} // every step waits for approval
	}
	s.run(atStep(2, v1beta1.CanaryStepStatePaused))
	if s.info.Updated != 5 || s.routedStep != 2 {
		t.Fatalf("at step 2: %d new pods, route of step %d", s.info.Updated, s.routedStep)
	}
	s.r.Status.CanaryStatus.NextStepIndex = 1
	changes, events := len(s.changes), len(s.events)

	d := s.reconcile()
	if s.routedStep != 1 {
		t.Fatalf("the route is step %d's after the jump decision, want step 1's first", s.routedStep)
	}
	if d.Status.CurrentStepIndex != 2 {
		t.Fatalf("entered step %d before the traffic came down", d.Status.CurrentStepIndex)
	}
	s.until(atStep(1, v1beta1.CanaryStepStatePaused))
	if s.info.Updated != 1 {
		t.Errorf("%d new pods at step 1 after the jump, want 1", s.info.Updated)
	}
	for _, e := range s.events[events:] {
		if e.Reason == "StepUpgraded" && !strings.HasPrefix(e.Message, "step 1/3: 1 of 10 pods") {
			t.Errorf("event %q: the step was done before its pods were", e.Message)
		}
	}
	if !slices.Contains(s.changes[changes:], "StartRun rollouts-demo-v2-1-r1") {
		t.Errorf("step 1 not analysed afresh after the jump: %q", s.changes[changes:])
	}
	if b := s.r.Status.Release.Batch; b.Shrink || b.Replicas != 1 {
		t.Errorf("batch %+v after the jump completed", b)
	}
}

// A cancelled release says what it is: Healthy at the step it stopped,
// no pod of the cancelled revision counted, and how it ended.
func TestCancelledState(t *testing.T) {
	s := newReleaseSim(t, example4())
	s.run(atStep(2, v1beta1.CanaryStepStatePaused))
	s.info.UpdateRevision, s.info.PodRevision = "v1", "v1" // the stable template re-applied
	s.run(healthy)
	st := s.r.Status
	cs := st.CanaryStatus
	if cs.CanaryReplicas != 0 || cs.CanaryReadyReplicas != 0 || cs.CanaryRevision != "v2" || cs.StableRevision != "v1" || st.CurrentStepIndex != 2 {
		t.Errorf("canaryStatus %+v", *cs)
	}
	if st.Release != nil {
		t.Errorf("status.release %+v at rest", st.Release)
	}
	if l := st.LastRelease; l == nil || l.Outcome != v1beta1.OutcomeCancelled || l.Revision != "v2" || l.StableRevision != "v1" || l.Step != 2 || l.Started == nil {
		t.Errorf("lastRelease %+v", l)
	}
	if st.Message != msgRolledBack {
		t.Errorf("message %q", st.Message)
	}
}

// How each release ended is recorded once, when it ends.
func TestLastRelease(t *testing.T) {
	t.Run("completed", func(t *testing.T) {
		s := newReleaseSim(t, example4())
		s.run(healthy)
		if l := s.r.Status.LastRelease; l == nil || l.Outcome != v1beta1.OutcomeCompleted || l.Revision != "v2" || l.StableRevision != "v1" || l.Step != 3 {
			t.Errorf("lastRelease %+v", l)
		}
		if s.r.Status.CanaryStatus.StableRevision != "v2" {
			t.Error("the new revision is not stable")
		}
	})
	t.Run("rolled back by analysis, then cancelled", func(t *testing.T) {
		s := newReleaseSim(t, withAnalysis(example1(), errorRate))
		s.verdict = phases(analysisv1alpha1.AnalysisFailed, 1)
		s.run(aborted)
		rec := s.r.Status.LastRelease.DeepCopy()
		if rec.Outcome != v1beta1.OutcomeRolledBack || rec.Run != "rollouts-demo-v2-1" || rec.Metric != "error-rate" || rec.Step != 1 {
			t.Fatalf("lastRelease %+v", rec)
		}
		if h := s.r.Status.HoldOf(); h.Reason != v1beta1.HoldAborted || h.Metric != "error-rate" {
			t.Errorf("hold %+v", h)
		}
		s.info.UpdateRevision, s.info.PodRevision = "v1", "v1"
		s.run(healthy)
		if l := s.r.Status.LastRelease; l.Outcome != v1beta1.OutcomeRolledBack || !l.Ended.Equal(&rec.Ended) {
			t.Errorf("the cancel after the rollback rewrote the record: %+v", l)
		}
	})
	t.Run("aborted by a person", func(t *testing.T) {
		s := newReleaseSim(t, example4())
		s.run(atStep(1, v1beta1.CanaryStepStatePaused))
		s.r.Annotations = map[string]string{analysisv1alpha1.AbortAnnotation: "now"}
		s.run(aborted)
		if l := s.r.Status.LastRelease; l.Outcome != v1beta1.OutcomeAborted {
			t.Errorf("lastRelease %+v", l)
		}
	})
	t.Run("promoted", func(t *testing.T) {
		s := newReleaseSim(t, example4())
		s.run(atStep(1, v1beta1.CanaryStepStatePaused))
		s.r.Annotations = map[string]string{analysisv1alpha1.PromoteAnnotation: "now"}
		s.run(healthy)
		if l := s.r.Status.LastRelease; l.Outcome != v1beta1.OutcomePromoted || l.Step != 1 {
			t.Errorf("lastRelease %+v", l)
		}
	})
}

// Every status of a release says why it waits, from a closed set, and the
// message is built from that (not the other way round).
func TestEveryWaitHasAReason(t *testing.T) {
	seen := map[v1beta1.HoldReason]bool{}
	check := func(s *releaseSim) func(Decision) bool {
		return func(d Decision) bool {
			if d.Status.Phase == v1beta1.RolloutPhaseProgressing {
				h := d.Status.HoldOf()
				if h == nil || h.Reason == "" {
					t.Fatalf("no hold at %s/%d %s", d.Status.Phase, d.Status.CurrentStepIndex, d.Status.CurrentStepState)
				}
				seen[h.Reason] = true
				if c := condition(&d.Status, v1beta1.RolloutConditionWaiting); c == nil || c.Reason != string(h.Reason) || c.ObservedGeneration != s.r.Generation {
					t.Fatalf("Waiting condition %+v for hold %s", c, h.Reason)
				}
			}
			return healthy(d)
		}
	}
	s := newReleaseSim(t, withAnalysis(example1(), errorRate))
	s.verdict = phases(analysisv1alpha1.AnalysisSuccessful, 0)
	s.run(check(s))
	s = newReleaseSim(t, example1())
	s.run(check(s))
	for _, r := range []v1beta1.HoldReason{v1beta1.HoldWaitingForPods, v1beta1.HoldTrafficGracePeriod, v1beta1.HoldAnalysisRunning, v1beta1.HoldTimedPause, v1beta1.HoldWaitingForApproval} {
		if !seen[r] {
			t.Errorf("never waited for %s (saw %v)", r, seen)
		}
	}
}

// An approval counts only where the release waits for one: patched onto a
// step whose pods are coming up, or whose analysis still measures, it is
// ignored (an Event says so) and the step keeps waiting.
func TestApprovalOnlyWhereOneIsAwaited(t *testing.T) {
	t.Run("while the batch comes up", func(t *testing.T) {
		r := inStep(2, v1beta1.CanaryStepStateUpgrade, t0)
		r.Status.CurrentStepIndex, r.Status.CurrentStepState = 2, v1beta1.CanaryStepStateUpgrade
		r.Status.CanaryStatus.CurrentStepState = v1beta1.CanaryStepStateReady // the patch
		d := Decide(Observed{Rollout: r, Workload: frozen(3, 1), Now: t0})
		if d.Status.CurrentStepIndex != 2 || d.Status.CurrentStepState != v1beta1.CanaryStepStateUpgrade {
			t.Errorf("went to step %d %s with 1 of 5 pods ready", d.Status.CurrentStepIndex, d.Status.CurrentStepState)
		}
		if !slices.ContainsFunc(d.Events, func(e Event) bool { return e.Reason == "ApprovalIgnored" }) {
			t.Errorf("events %+v", d.Events)
		}
	})
	t.Run("while the analysis measures", func(t *testing.T) {
		s := newReleaseSim(t, withAnalysis(example1(), errorRate))
		s.run(atStep(1, v1beta1.CanaryStepStateMetricsAnalysis))
		s.approve()
		d := s.reconcile()
		if d.Status.CurrentStepIndex != 1 || d.Status.CurrentStepState != v1beta1.CanaryStepStateMetricsAnalysis {
			t.Errorf("an approval skipped the running analysis: step %d %s", d.Status.CurrentStepIndex, d.Status.CurrentStepState)
		}
	})
	t.Run("at a paused step", func(t *testing.T) {
		s := newReleaseSim(t, example4())
		s.until(atStep(1, v1beta1.CanaryStepStatePaused))
		s.approve()
		if d := s.reconcile(); d.Status.CurrentStepIndex != 2 {
			t.Errorf("the approval was not honoured: step %d %s", d.Status.CurrentStepIndex, d.Status.CurrentStepState)
		}
	})
}

// A retry started in the same second as the aborted release it restarts
// is still a release of its own: its end is recorded.
func TestARetryInTheSameSecondRecordsItsOwnEnd(t *testing.T) {
	s := newReleaseSim(t, withAnalysis(example1(), errorRate))
	s.verdict = phases(analysisv1alpha1.AnalysisFailed, 1)
	s.run(aborted)
	s.verdict = phases(analysisv1alpha1.AnalysisSuccessful, 0)
	s.r.Annotations = map[string]string{analysisv1alpha1.RetryAnnotation: "1"}
	s.now = s.r.Status.LastRelease.Ended.Time // no second has passed
	s.run(healthy)
	if l := s.r.Status.LastRelease; l.Outcome != v1beta1.OutcomeCompleted {
		t.Errorf("lastRelease %+v after the retried release completed", l)
	}
}

// A run that cannot be created holds the release with AnalysisNotStarted
// from one attempt to the next, without flapping through AnalysisRunning
// (its since, the metric and alerts would start over every time).
func TestAnalysisNotStartedHolds(t *testing.T) {
	s := newReleaseSim(t, withAnalysis(example1(), errorRate))
	s.startErr = errors.New(`AnalysisTemplate "error-rate" not found`)
	s.run(func(d Decision) bool {
		h := d.Status.HoldOf()
		return h != nil && h.Reason == v1beta1.HoldAnalysisNotStarted
	})
	since := s.r.Status.HoldOf().Since
	for range 3 {
		s.reconcile()
		if h := s.r.Status.HoldOf(); h.Reason != v1beta1.HoldAnalysisNotStarted || !h.Since.Equal(&since) {
			t.Fatalf("hold %+v, want AnalysisNotStarted since %s", h, since)
		}
	}
	s.startErr = nil
	s.verdict = phases(analysisv1alpha1.AnalysisSuccessful, 0)
	s.run(atStep(2, v1beta1.CanaryStepStateUpgrade))
	if c := condition(&s.r.Status, ConditionAnalysis); c != nil && c.Reason == ReasonAnalysisNotStarted {
		t.Errorf("condition %+v once the run exists", c)
	}
}

// A version pushed while a release finalises (the freeze webhook keeps the
// workload frozen) is never rolled out natively: the workload is not
// resumed, the released revision becomes the stable one where the workload
// allows, and the newer version is released from there, step by step.
func TestANewVersionWhileFinalising(t *testing.T) {
	for _, tc := range []struct {
		name        string
		canHandOver bool
		outcome     v1beta1.ReleaseOutcome
		stable      string
	}{
		{"the released revision becomes stable", true, v1beta1.OutcomeCompleted, "v2"},
		{"the released pods are not the workload's own", false, v1beta1.OutcomeCancelled, "v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newReleaseSim(t, example1())
			s.info.CanHandOver = tc.canHandOver
			s.run(func(d Decision) bool {
				p := d.Status.Progress()
				return p != nil && p.FinalisingStep == v1beta1.FinalisingStepResumeWorkload
			})
			changes := len(s.changes)
			// The webhook freezes the workload for the new template.
			i := s.info
			i.UpdateRevision, i.PodRevision, i.Updated, i.UpdatedReady, i.Others = "v4", "v4", 0, 0, i.Replicas
			i.Frozen, i.Released = true, false
			s.run(func(d Decision) bool {
				return d.Status.Phase == v1beta1.RolloutPhaseProgressing && d.Status.CanaryStatus.CanaryRevision == "v4"
			})
			if slices.Contains(s.changes[changes:], "ResumeWorkload") {
				t.Fatalf("the workload was resumed with the newer template: %q", s.changes[changes:])
			}
			if l := s.r.Status.LastRelease; l == nil || l.Outcome != tc.outcome || l.Revision != "v2" {
				t.Errorf("lastRelease %+v, want %s of v2", l, tc.outcome)
			}
			if got := s.r.Status.CanaryStatus.StableRevision; got != tc.stable {
				t.Errorf("the release of v4 starts from stable %s, want %s", got, tc.stable)
			}
		})
	}
}
