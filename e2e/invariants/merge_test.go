package invariants

import (
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

func event(k Kind, rv uint64, at time.Time) Event {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetName(k.String())
	return Event{Kind: k, Type: Modified, Object: u, RV: rv, Time: at}
}

func rvs(es []Event) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.RV)
	}
	return out
}

func TestMergerReleasesInRevisionOrderAfterTheWatermark(t *testing.T) {
	t0 := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	q := newMerger(time.Second)
	// The pods' watch delivers first, the Rollout's 300ms later with a
	// lower revision.
	q.push(event(Pod, 11, t0))
	q.push(event(Pod, 12, t0))
	q.push(event(Rollout, 10, t0.Add(300*time.Millisecond)))
	if got := q.pop(t0.Add(999 * time.Millisecond)); len(got) != 0 {
		t.Fatalf("released %v before the watermark", rvs(got))
	}
	// At t0+1s the pods have waited long enough, but revision 10 has not:
	// nothing may pass it.
	if got := q.pop(t0.Add(time.Second)); len(got) != 0 {
		t.Fatalf("released %v ahead of revision 10", rvs(got))
	}
	if got := rvs(q.pop(t0.Add(1300 * time.Millisecond))); !slices.Equal(got, []uint64{10, 11, 12}) {
		t.Fatalf("released %v, want 10 11 12", got)
	}
	// A stream lagging beyond the watermark: applied at once, marked late.
	q.push(event(Service, 9, t0.Add(2*time.Second)))
	q.push(event(Service, 13, t0.Add(2*time.Second)))
	got := q.pop(t0.Add(2 * time.Second))
	if len(got) != 1 || got[0].RV != 9 || !got[0].Late {
		t.Fatalf("released %+v, want revision 9, late", got)
	}
	if got := rvs(q.flush()); !slices.Equal(got, []uint64{13}) {
		t.Fatalf("flushed %v, want 13", got)
	}
}

// The abort annotation (a Rollout event) is written before the pods are
// scaled back, but the pods' watch delivers first. Evaluated in arrival
// order the model sees a forward release losing pods; merged by revision
// it sees the abort first.
func TestCrossStreamOrdering(t *testing.T) {
	// scenario records the events of an aborted release at step 2.
	record := func(t *testing.T) (*scenario, []Event) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.release(v2)
		a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStatePaused)
		a.scale(v2, 5, 5)
		a.scale(v1, 5, 5)
		s.expect()
		var held []Event
		s.hold = &held
		a.ro.Annotations = map[string]string{analysisv1alpha1.AbortAnnotation: "now"}
		a.putRollout()
		a.scale(v1, 10, 10)
		a.scale(v2, 0, 0)
		s.hold = nil
		return s, held
	}
	// Arrival: every Pod and ReplicaSet event at once, the Rollout's 300ms
	// later.
	arrive := func(held []Event, t0 time.Time) []Event {
		out := slices.Clone(held)
		for i := range out {
			out[i].Time = t0
			if out[i].Kind == Rollout {
				out[i].Time = t0.Add(300 * time.Millisecond)
			}
		}
		slices.SortStableFunc(out, func(a, b Event) int { return a.Time.Compare(b.Time) })
		return out
	}

	t.Run("in arrival order: a false violation", func(t *testing.T) {
		s, held := record(t)
		for _, e := range arrive(held, s.now) {
			s.apply(e)
		}
		s.expect(ForwardOnly)
	})
	t.Run("merged by revision: none", func(t *testing.T) {
		s, held := record(t)
		q := newMerger(time.Second)
		for _, e := range arrive(held, s.now) {
			q.push(e)
		}
		for _, e := range q.pop(s.now.Add(2 * time.Second)) {
			s.apply(e)
		}
		s.expect()
	})
}
