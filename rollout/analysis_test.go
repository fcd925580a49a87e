package rollout

import (
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// withAnalysis gives every step of r an analysis and a zero pause, so a
// release that passes its analysis needs no person.
func withAnalysis(r *v1beta1.Rollout, a analysisv1alpha1.RolloutAnalysis) *v1beta1.Rollout {
	zero := int32(0)
	for i := range r.Spec.Strategy.Canary.Steps {
		s := &r.Spec.Strategy.Canary.Steps[i]
		s.Analysis = a.DeepCopy()
		s.Pause = v1beta1.RolloutPause{Duration: &zero}
	}
	return r
}

var errorRate = analysisv1alpha1.RolloutAnalysis{Templates: []analysisv1alpha1.AnalysisTemplateRef{{TemplateName: "error-rate"}}}

func phases(p analysisv1alpha1.AnalysisPhase, at int32) func(int32) analysisv1alpha1.AnalysisPhase {
	return func(step int32) analysisv1alpha1.AnalysisPhase {
		if step == at {
			return p
		}
		return analysisv1alpha1.AnalysisSuccessful
	}
}

func pastStep(i int32) func(Decision) bool {
	return func(d Decision) bool { return d.Status.CurrentStepIndex > i }
}

func aborted(d Decision) bool { return reason(&d.Status) == ReasonAborted }

func TestAnalysisPromotesHandsOff(t *testing.T) {
	s := newReleaseSim(t, withAnalysis(example1(), errorRate))
	s.verdict = phases(analysisv1alpha1.AnalysisSuccessful, 0)
	s.run(healthy)
	var started []string
	for _, c := range s.changes {
		if strings.HasPrefix(c, "StartRun") {
			started = append(started, c)
		}
	}
	if want := []string{"StartRun rollouts-demo-v2-1", "StartRun rollouts-demo-v2-2", "StartRun rollouts-demo-v2-3"}; !slices.Equal(started, want) {
		t.Errorf("runs %q, want %q", started, want)
	}
	// Each step's analysis runs after its traffic is in place.
	if i, j := slices.Index(s.changes, "RouteTraffic step 2"), slices.Index(s.changes, "StartRun rollouts-demo-v2-2"); i < 0 || j < i {
		t.Errorf("step 2 analysed before its traffic: %q", s.changes)
	}
	if c := condition(&s.r.Status, v1beta1.RolloutConditionSucceeded); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("Succeeded = %+v", c)
	}
}

func TestAnalysisWaitsForTheRun(t *testing.T) {
	s := newReleaseSim(t, withAnalysis(example1(), errorRate))
	s.run(atStep(1, v1beta1.CanaryStepStateMetricsAnalysis))
	for range 5 {
		s.reconcile()
	}
	st := s.r.Status
	if st.CurrentStepState != v1beta1.CanaryStepStateMetricsAnalysis || !strings.Contains(st.Message, "analysing the new version (rollouts-demo-v2-1)") {
		t.Errorf("state %s, message %q", st.CurrentStepState, st.Message)
	}
	if n := len(s.runs); n != 1 {
		t.Errorf("%d runs created, want 1", n)
	}
}

// A Failed verdict rolls back on its own: traffic to stable, then the new
// pods scaled down; the Rollout says which metric failed. Re-applying the
// stable template then ends the release.
func TestAnalysisFailedRollsBack(t *testing.T) {
	s := newReleaseSim(t, withAnalysis(example1(), errorRate))
	s.verdict = phases(analysisv1alpha1.AnalysisFailed, 2)
	s.run(aborted)
	s.run(func(Decision) bool { return s.info.Updated == 0 })
	st := s.r.Status
	if !strings.Contains(st.Message, `Rollout is aborted: analysis of step 2 (rollouts-demo-v2-2) is Failed: metric "error-rate" Failed: value [0.2]`) {
		t.Errorf("message %q", st.Message)
	}
	if c := condition(&st, ConditionAnalysis); c == nil || c.Status != corev1.ConditionFalse || c.Reason != ReasonAborted {
		t.Errorf("Analysis condition %+v", c)
	}
	if s.routedStep != 0 || st.Phase != v1beta1.RolloutPhaseProgressing {
		t.Errorf("routed step %d, phase %s", s.routedStep, st.Phase)
	}
	// Held: more reconciles change nothing.
	before := len(s.changes)
	for range 5 {
		s.reconcile()
	}
	if len(s.changes) != before || !aborted(Decision{Status: s.r.Status}) {
		t.Errorf("an aborted release moved: %q", s.changes[before:])
	}

	s.info.UpdateRevision = s.info.StableRevision
	s.run(healthy)
	if c := condition(&s.r.Status, v1beta1.RolloutConditionSucceeded); c == nil || c.Status != corev1.ConditionFalse {
		t.Errorf("Succeeded = %+v", c)
	}
}

// Error and Inconclusive pause by default; approval goes on and is recorded.
func TestAnalysisPauseAndApprove(t *testing.T) {
	for _, p := range []analysisv1alpha1.AnalysisPhase{analysisv1alpha1.AnalysisError, analysisv1alpha1.AnalysisInconclusive} {
		t.Run(string(p), func(t *testing.T) {
			s := newReleaseSim(t, withAnalysis(example1(), errorRate))
			s.verdict = phases(p, 1)
			held := func(d Decision) bool { return strings.Contains(d.Status.Message, "paused: analysis of step 1") }
			s.run(held)
			for range 3 {
				if d := s.reconcile(); !held(d) || d.Status.CurrentStepState != v1beta1.CanaryStepStateMetricsAnalysis {
					t.Fatalf("not held: %s %q", d.Status.CurrentStepState, d.Status.Message)
				}
			}
			s.r.Status.CanaryStatus.CurrentStepState = v1beta1.CanaryStepStateReady // kubectl-kruise approve
			s.run(pastStep(1))
			o := s.r.Status.Analysis.Overrides
			if len(o) != 1 || o[0].Action != "Approve" || o[0].Step != 1 || o[0].Verdict != p || o[0].Run != "rollouts-demo-v2-1" {
				t.Errorf("overrides %+v", o)
			}
		})
	}
}

// Policy Continue records the verdict and goes on.
func TestAnalysisContinue(t *testing.T) {
	a := errorRate
	a.OnFailed = analysisv1alpha1.PolicyContinue
	s := newReleaseSim(t, withAnalysis(example1(), a))
	s.verdict = phases(analysisv1alpha1.AnalysisFailed, 1)
	s.run(healthy)
}

// The retry annotation re-runs a held step's analysis with a fresh run,
// and restarts an aborted release from step 1.
func TestRetryAnnotation(t *testing.T) {
	s := newReleaseSim(t, withAnalysis(example1(), errorRate))
	s.verdict = phases(analysisv1alpha1.AnalysisInconclusive, 1)
	s.run(func(d Decision) bool { return strings.Contains(d.Status.Message, "paused") })
	s.verdict = phases(analysisv1alpha1.AnalysisSuccessful, 0)
	s.r.Annotations = map[string]string{analysisv1alpha1.RetryAnnotation: "1"}
	s.run(pastStep(1))
	if !slices.Contains(s.changes, "StartRun rollouts-demo-v2-1-r1") {
		t.Errorf("no fresh run: %q", s.changes)
	}
	// The same value again does nothing.
	runs := len(s.runs)
	s.reconcile()
	if len(s.runs) != runs {
		t.Error("a handled retry acted again")
	}

	s.verdict = phases(analysisv1alpha1.AnalysisFailed, 3)
	s.run(aborted)
	s.verdict = phases(analysisv1alpha1.AnalysisSuccessful, 0)
	s.r.Annotations[analysisv1alpha1.RetryAnnotation] = "2"
	s.run(healthy)
	if !slices.Contains(s.changes, "StartRun rollouts-demo-v2-1-r2") {
		t.Errorf("the retried release did not start over: %q", s.changes)
	}
}

// The abort annotation aborts at once; one present before the release
// started is not acted on.
func TestAbortAnnotation(t *testing.T) {
	r := example1()
	r.Annotations = map[string]string{analysisv1alpha1.AbortAnnotation: "old"}
	s := newReleaseSim(t, r)
	s.run(atStep(1, v1beta1.CanaryStepStatePaused))
	s.r.Annotations[analysisv1alpha1.AbortAnnotation] = "now"
	s.run(aborted)
	if !strings.Contains(s.r.Status.Message, "aborted by a person") {
		t.Errorf("message %q", s.r.Status.Message)
	}
	s.run(func(Decision) bool { return s.info.Updated == 0 })
	if o := s.r.Status.Analysis.Overrides; len(o) != 1 || o[0].Action != "Abort" {
		t.Errorf("overrides %+v", o)
	}
}

// The background run starts after the first batch; its Failed verdict
// aborts at whatever step, and the end of a release stops it.
func TestBackgroundAnalysis(t *testing.T) {
	r := example1()
	r.Spec.Strategy.Analysis = errorRate.DeepCopy()
	s := newReleaseSim(t, r)
	s.run(atStep(1, v1beta1.CanaryStepStatePaused))
	if !slices.Contains(s.changes, "StartRun rollouts-demo-v2-bg") {
		t.Fatalf("no background run: %q", s.changes)
	}
	s.runs[0].Status.Phase = analysisv1alpha1.AnalysisFailed
	s.run(aborted)
	if !strings.Contains(s.r.Status.Message, "background analysis rollouts-demo-v2-bg is Failed") {
		t.Errorf("message %q", s.r.Status.Message)
	}

	s = newReleaseSim(t, r.DeepCopy())
	s.run(healthy)
	if !slices.Contains(s.changes, "StopRun rollouts-demo-v2-bg") {
		t.Errorf("the background run was not stopped: %q", s.changes)
	}
}

// A run that cannot be created (a template is missing) is shown and retried.
func TestAnalysisNotStarted(t *testing.T) {
	s := newReleaseSim(t, withAnalysis(example1(), errorRate))
	s.startErr = errors.New(`AnalysisTemplate ns/error-rate: not found`)
	s.run(atStep(1, v1beta1.CanaryStepStateMetricsAnalysis))
	s.reconcile()
	c := condition(&s.r.Status, ConditionAnalysis)
	if c == nil || c.Reason != ReasonAnalysisNotStarted || !strings.Contains(c.Message, "not found") || !strings.Contains(s.r.Status.Message, "could not start") {
		t.Errorf("condition %+v, message %q", c, s.r.Status.Message)
	}
}

// The promote annotation skips the remaining steps and analyses: the
// release finalises with the success order and is recorded.
func TestPromoteAnnotation(t *testing.T) {
	s := newReleaseSim(t, withAnalysis(example1(), errorRate))
	s.verdict = phases(analysisv1alpha1.AnalysisInconclusive, 1)
	s.run(func(d Decision) bool { return strings.Contains(d.Status.Message, "paused") })
	s.r.Annotations = map[string]string{analysisv1alpha1.PromoteAnnotation: "now"}
	s.run(healthy)
	if c := s.r.Status.CanaryStatus; c.StableRevision != "v2" {
		t.Errorf("not promoted: stable %s", c.StableRevision)
	}
	if slices.Contains(s.changes, "StartRun rollouts-demo-v2-2") {
		t.Errorf("step 2 was analysed: %q", s.changes)
	}
	if o := s.r.Status.Analysis.Overrides; len(o) != 1 || o[0].Action != "Promote" || o[0].Verdict != analysisv1alpha1.AnalysisInconclusive {
		t.Errorf("overrides %+v", o)
	}
	if s.pinned || s.canaryService || s.routedStep != 0 {
		t.Errorf("routing left behind")
	}
}

// Each decision is counted once, with its cause.
func TestDecisionsMade(t *testing.T) {
	hands := func(s *releaseSim) {}
	for _, tc := range []struct {
		name    string
		rollout *v1beta1.Rollout
		verdict analysisv1alpha1.AnalysisPhase
		after   func(s *releaseSim)
		done    func(Decision) bool
		want    []Made
	}{
		{name: "analysis promotes", rollout: withAnalysis(example1(), errorRate), verdict: analysisv1alpha1.AnalysisSuccessful, after: hands, done: healthy,
			want: []Made{{DecisionAdvance, CauseAnalysis}, {DecisionAdvance, CauseAnalysis}, {DecisionComplete, CauseAnalysis}}},
		{name: "a person approves, the plan times out", rollout: example1(), after: hands, done: healthy,
			want: []Made{{DecisionAdvance, CauseManual}, {DecisionAdvance, CausePlan}, {DecisionComplete, CausePlan}}},
		{name: "analysis rolls back", rollout: withAnalysis(example1(), errorRate), verdict: analysisv1alpha1.AnalysisFailed, after: hands, done: aborted,
			want: []Made{{DecisionRollback, CauseAnalysis}}},
		{name: "analysis holds once, a person approves", rollout: withAnalysis(example1(), errorRate), verdict: analysisv1alpha1.AnalysisInconclusive,
			after: func(s *releaseSim) {
				s.run(func(d Decision) bool { return strings.Contains(d.Status.Message, "paused") })
				for range 3 {
					s.reconcile()
				}
				s.verdict = phases(analysisv1alpha1.AnalysisSuccessful, 0)
				s.approve()
			},
			done: pastStep(1),
			want: []Made{{DecisionPause, CauseAnalysis}, {DecisionAdvance, CauseManual}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newReleaseSim(t, tc.rollout)
			if tc.verdict != "" {
				s.verdict = phases(tc.verdict, 1)
				if tc.verdict == analysisv1alpha1.AnalysisSuccessful {
					s.verdict = phases(tc.verdict, 0)
				}
			}
			tc.after(s)
			s.run(tc.done)
			if !slices.Equal(s.made, tc.want) {
				t.Errorf("made %v, want %v", s.made, tc.want)
			}
		})
	}
}
