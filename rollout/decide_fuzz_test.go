package rollout

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// FuzzDecide drives releases through the executor with a random sequence
// of what the world and people do: pods that become ready or not, new
// templates, rollbacks, approvals, pauses, aborts, retries, promotions,
// step jumps, verdicts, failing writes and the passing of time, with and
// without a TrafficRouting. Whatever
// happens, Decide never panics, is pure (the same observation, the same
// decision; its input untouched), never releases more new pods than the
// committed step allows, and never removes new pods in a forward release
// (releaseSim checks the last two on every action, and that no new pod
// comes up before the Rollout holds its TrafficRouting).
func FuzzDecide(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{1, 9, 9, 9, 9, 3, 9, 9, 9, 9, 9, 9})
	f.Add([]byte{2, 9, 9, 13, 9, 9, 9, 10, 9, 9, 11, 9, 9})
	f.Add([]byte{3, 9, 9, 9, 14, 9, 9, 9, 6, 9, 9, 12, 9})
	f.Add([]byte{0, 9, 9, 9, 9, 9, 9, 15, 9, 9, 9, 16, 9, 9, 9, 8, 9})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 || len(ops) > 400 {
			return
		}
		plans := []func() *v1beta1.Rollout{example4, example1, blueGreen, func() *v1beta1.Rollout { return withAnalysis(example1(), errorRate) },
			sharedOnly, func() *v1beta1.Rollout {
				r := example1()
				r.Spec.Strategy.Canary.TrafficRoutingRef = "full-link"
				return r
			}}
		s := newReleaseSim(t, plans[int(ops[0])%len(plans)]())
		verdicts := []analysisv1alpha1.AnalysisPhase{analysisv1alpha1.AnalysisSuccessful, analysisv1alpha1.AnalysisFailed, analysisv1alpha1.AnalysisError, analysisv1alpha1.AnalysisInconclusive}
		verdict := analysisv1alpha1.AnalysisSuccessful
		s.verdict = func(int32) analysisv1alpha1.AnalysisPhase { return verdict }
		token := 0
		annotate := func(key string) {
			token++
			if s.r.Annotations == nil {
				s.r.Annotations = map[string]string{}
			}
			s.r.Annotations[key] = fmt.Sprint(token)
		}
		for _, op := range ops[1:] {
			s.actErr = nil
			switch op % 18 {
			case 0: // a new pod becomes unready, or one ready again
				if s.info.UpdatedReady > 0 {
					s.info.UpdatedReady--
				}
			case 1:
				s.info.UpdatedReady = s.info.Updated
			case 2: // the workload's controller lags behind its spec
				s.info.Settled = !s.info.Settled
			case 3: // a new template
				s.info.UpdateRevision, s.info.PodRevision = fmt.Sprintf("v%d", 3+token), fmt.Sprintf("v%d", 3+token)
				s.info.Updated, s.info.UpdatedReady, s.info.Others = 0, 0, s.info.Replicas
				s.info.Frozen = true
				token++
			case 4: // the stable template re-applied
				s.info.UpdateRevision, s.info.PodRevision = s.info.StableRevision, s.info.StableRevision
			case 5: // kubectl-kruise rollout approve, whatever the state
				if s.r.Status.Progress() != nil {
					s.approve()
				}
			case 6:
				s.r.Spec.Strategy.Paused = !s.r.Spec.Strategy.Paused
			case 7:
				annotate(analysisv1alpha1.AbortAnnotation)
			case 8:
				annotate(analysisv1alpha1.RetryAnnotation)
			case 9, 10, 11, 12: // time passes; a reconcile
			case 13:
				annotate(analysisv1alpha1.PromoteAnnotation)
			case 14: // a step jump, as kubectl-kruise rollout undo --fast
				if p := s.r.Status.Progress(); p != nil {
					p.NextStepIndex = int32(token%3) + 1
					token++
				}
			case 15:
				verdict = verdicts[token%len(verdicts)]
				token++
			case 16:
				s.actErr = errors.New("the workload write fails")
			case 17:
				s.info.Controlled = false
			}
			o := Observed{Rollout: s.r.DeepCopy(), Workload: s.info, Now: s.now, Runs: s.runs}
			in := o.Rollout.DeepCopy()
			a, b := Decide(o), Decide(o)
			if !equality.Semantic.DeepEqual(a, b) {
				t.Fatalf("Decide is not pure: two decisions on one observation differ:\n%+v\n%+v", a, b)
			}
			if !equality.Semantic.DeepEqual(in, o.Rollout) {
				t.Fatal("Decide changed its input")
			}
			s.reconcile()
			if st := s.r.Status; st.Phase == v1beta1.RolloutPhaseProgressing {
				if h := st.HoldOf(); h == nil {
					t.Fatalf("a release in progress with no hold: %+v", st)
				}
				if b := st.Release.Batch; b != nil {
					if steps := s.r.Spec.Strategy.Steps(); b.Step > int32(len(steps)) || b.Replicas > steps[max(b.Step, 1)-1].ReplicasFor(s.info.Replicas) {
						t.Fatalf("batch %+v beyond its step", b)
					}
				}
				checkTrafficInForce(t, s.r)
			}
			s.now = s.now.Add(time.Duration(op%4) * time.Second)
		}
	})
}

// checkTrafficInForce: while a release steps, the routing in force sends
// no more than the current step's weight (the previous step's while this
// one's pods come up), and an aborted release none once its pods go.
func checkTrafficInForce(t *testing.T, r *v1beta1.Rollout) {
	t.Helper()
	st := r.Status
	tr := st.TrafficOf()
	if tr == nil || tr.Weight == nil {
		return
	}
	steps := r.Spec.Strategy.Steps()
	weightOf := func(i int32) int32 {
		if i < 1 || int(i) > len(steps) {
			return 0
		}
		w, _ := steps[i-1].Weight()
		return w
	}
	switch st.ProgressingReason() {
	case v1beta1.ProgressingReasonInRolling, v1beta1.ProgressingReasonPaused:
		i := st.CurrentStepIndex
		allowed := weightOf(i)
		if s := st.CurrentStepState; s == v1beta1.CanaryStepStateInit || s == v1beta1.CanaryStepStateUpgrade {
			allowed = max(allowed, weightOf(i-1))
		}
		if *tr.Weight > allowed {
			t.Fatalf("weight %d%% in force at step %d %s, the step allows %d%%", *tr.Weight, i, st.CurrentStepState, allowed)
		}
	}
}
