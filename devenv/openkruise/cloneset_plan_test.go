package openkruise

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestResolveCloneSetNumbers(t *testing.T) {
	str, num := intstr.FromString, intstr.FromInt32
	for _, tc := range []struct {
		name                   string
		replicas               int32
		partition, surge, unav *intstr.IntOrString
		paused                 bool
		want                   cloneSetNumbers
	}{
		{name: "defaults: maxUnavailable 20% of 10 rounds to 2", replicas: 10,
			want: cloneSetNumbers{replicas: 10, maxUnavailable: 2}},
		{name: "20% of 4 rounds up to 1", replicas: 4,
			want: cloneSetNumbers{replicas: 4, maxUnavailable: 1}},
		{name: "with a surge, maxUnavailable rounds down", replicas: 4, surge: ptr.To(num(1)),
			want: cloneSetNumbers{replicas: 4, maxSurge: 1, maxUnavailable: 0}},
		{name: "paused: no surge", replicas: 4, surge: ptr.To(num(1)), paused: true,
			want: cloneSetNumbers{replicas: 4, maxUnavailable: 1}},
		{name: "partition 7", replicas: 10, partition: ptr.To(num(7)),
			want: cloneSetNumbers{replicas: 10, partition: 7, maxUnavailable: 2}},
		{name: "partition above replicas is clamped", replicas: 10, partition: ptr.To(num(12)),
			want: cloneSetNumbers{replicas: 10, partition: 10, maxUnavailable: 2}},
		{name: "25% rounds up: 3 of 10 kept old", replicas: 10, partition: ptr.To(str("25%")),
			want: cloneSetNumbers{replicas: 10, partition: 3, maxUnavailable: 2}},
		{name: "99% keeps one pod updating", replicas: 10, partition: ptr.To(str("99%")),
			want: cloneSetNumbers{replicas: 10, partition: 9, maxUnavailable: 2}},
		{name: "100% keeps all", replicas: 10, partition: ptr.To(str("100%")),
			want: cloneSetNumbers{replicas: 10, partition: 10, maxUnavailable: 2}},
		{name: "a fractional percentage", replicas: 10, partition: ptr.To(str("33.3%")),
			want: cloneSetNumbers{replicas: 10, partition: 4, maxUnavailable: 2}},
		{name: "maxUnavailable 50%", replicas: 5, unav: ptr.To(str("50%")),
			want: cloneSetNumbers{replicas: 5, maxUnavailable: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &cloneSetSpec{Replicas: &tc.replicas}
			spec.UpdateStrategy = cloneSetUpdateStrategy{Partition: tc.partition, MaxSurge: tc.surge, MaxUnavailable: tc.unav, Paused: tc.paused}
			got, err := resolveCloneSetNumbers(spec)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.scaleMaxUnavailable = got.scaleMaxUnavailable
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	_, err := resolveCloneSetNumbers(&cloneSetSpec{UpdateStrategy: cloneSetUpdateStrategy{Partition: ptr.To(str("half"))}})
	if err == nil || !strings.Contains(err.Error(), "spec.updateStrategy.partition") {
		t.Errorf("a bad partition must be an error naming the field, got %v", err)
	}
}

// world is a CloneSet's pods as the planning functions see them, moved
// pass by pass the way the controller and kwok move them: created pods
// become ready one pass later, deleted ones are gone at once.
type world struct {
	t    *testing.T
	n    cloneSetNumbers
	pods []csPod
	// fewest is the fewest pods ever available and not marked for
	// deletion; most the most pods ever there.
	fewest, most int
}

func newWorld(t *testing.T, replicas, partition, maxUnavailable int) *world {
	w := &world{t: t, n: cloneSetNumbers{replicas: replicas, partition: partition, maxUnavailable: maxUnavailable, scaleMaxUnavailable: 1 << 30},
		fewest: replicas, most: replicas}
	for range replicas {
		w.pods = append(w.pods, csPod{ready: true, available: true})
	}
	return w
}

// pass runs one controller pass (scale, else update), then lets the pods
// created before it become ready. It reports whether anything changed.
func (w *world) pass() bool {
	for i := range w.pods {
		w.pods[i].ready, w.pods[i].available = true, true
	}
	changed := false
	plan := planCloneSetScale(w.n, w.pods)
	switch {
	case plan.create > 0:
		for i := range plan.create {
			w.pods = append(w.pods, csPod{updated: i >= plan.createAtCurrent})
		}
		changed = true
	case len(plan.delete) > 0:
		gone := map[int]bool{}
		for _, i := range plan.delete {
			gone[i] = true
		}
		var kept []csPod
		for i, p := range w.pods {
			if !gone[i] {
				kept = append(kept, p)
			}
		}
		w.pods, changed = kept, true
	default:
		for _, i := range planCloneSetUpdate(w.n, w.pods) {
			if !w.pods[i].specifiedDelete {
				w.pods[i].specifiedDelete, changed = true, true
			}
		}
	}
	available := 0
	for _, p := range w.pods {
		if p.available && !p.specifiedDelete {
			available++
		}
	}
	w.fewest, w.most = min(w.fewest, available), max(w.most, len(w.pods))
	return changed
}

// settle runs passes until nothing changes.
func (w *world) settle() {
	for range 200 {
		if !w.pass() && !w.pass() {
			return
		}
	}
	w.t.Fatal("the CloneSet never settled")
}

func (w *world) count() (updated, total int) {
	for _, p := range w.pods {
		if p.updated {
			updated++
		}
	}
	return updated, len(w.pods)
}

// Worked numbers of the brief: 10 replicas, partition 7 → exactly 3 pods
// on the update revision, never more than maxUnavailable (2) pods down;
// raising the partition to 9 leaves the 3 (no rollback without the
// CloneSetPartitionRollback gate); partition 0 (what the defaulting webhook
// sets when the partition is removed) updates all 10.
func TestCloneSetPartitionSimulated(t *testing.T) {
	w := newWorld(t, 10, 7, 2)
	w.settle()
	if updated, total := w.count(); updated != 3 || total != 10 {
		t.Fatalf("partition 7: %d of %d pods updated, want 3 of 10", updated, total)
	}
	if w.fewest < 8 {
		t.Errorf("partition 7: %d pods available at one point, maxUnavailable 2 of 10 allows no fewer than 8", w.fewest)
	}
	w.n.partition = 9
	w.settle()
	if updated, total := w.count(); updated != 3 || total != 10 {
		t.Errorf("partition raised to 9: %d of %d pods updated, want the 3 kept", updated, total)
	}
	w.n.partition = 0
	w.settle()
	if updated, total := w.count(); updated != 10 || total != 10 {
		t.Errorf("partition 0: %d of %d pods updated, want 10 of 10", updated, total)
	}
	if w.fewest < 8 || w.most > 10 {
		t.Errorf("between %d available and %d pods at one point, want at least 8 and at most 10", w.fewest, w.most)
	}
}

// With maxSurge 1 (and so maxUnavailable 20% of 4 rounded down to 0), a
// new pod comes before each old one goes: never fewer than 4 available,
// never more than 5 pods.
func TestCloneSetSurgeSimulated(t *testing.T) {
	w := newWorld(t, 4, 0, 0)
	w.n.maxSurge = 1
	w.settle()
	if updated, total := w.count(); updated != 4 || total != 4 {
		t.Errorf("%d of %d pods updated, want 4 of 4", updated, total)
	}
	if w.fewest < 4 || w.most > 5 {
		t.Errorf("between %d available and %d pods at one point, want at least 4 and at most 5", w.fewest, w.most)
	}
}

// The first passes of a ReCreate update, step by step.
func TestCloneSetPlansStepByStep(t *testing.T) {
	n := cloneSetNumbers{replicas: 10, partition: 7, maxUnavailable: 2, scaleMaxUnavailable: 1 << 30}
	old := func(k int) []csPod {
		var ps []csPod
		for range k {
			ps = append(ps, csPod{ready: true, available: true})
		}
		return ps
	}
	pods := old(10)
	if d := diffCloneSet(n, pods); d.updateNum != 3 || d.updateMaxUnavailable != 2 || d.scaleUpNum != 0 {
		t.Errorf("10 old pods, partition 7: %+v, want updateNum 3, updateMaxUnavailable 2", d)
	}
	// 1. Update marks 2 pods (maxUnavailable), not 3.
	marked := planCloneSetUpdate(n, pods)
	if len(marked) != 2 {
		t.Fatalf("marked %v, want 2 pods", marked)
	}
	for _, i := range marked {
		pods[i].specifiedDelete = true
	}
	// 2. Scale deletes both (deleteReadyLimit 2 + 0 surplus - 0 unavailable).
	if plan := planCloneSetScale(n, pods); len(plan.delete) != 2 || plan.create != 0 {
		t.Fatalf("scale with 2 marked pods: %+v, want 2 deleted", plan)
	}
	// 3. With 8 old pods left, Scale creates 2, both at the update
	//    revision (the partition keeps 7 old and 8 are).
	pods = old(8)
	if plan := planCloneSetScale(n, pods); plan.create != 2 || plan.createAtCurrent != 0 {
		t.Fatalf("scale with 8 pods: %+v, want 2 created at the update revision", plan)
	}
	// 4. While the 2 new pods are not ready, nothing more is marked.
	pods = append(pods, csPod{updated: true}, csPod{updated: true})
	if marked := planCloneSetUpdate(n, pods); len(marked) != 0 {
		t.Errorf("marked %v while 2 new pods are unavailable", marked)
	}
	// 5. Once they are ready, the third pod goes.
	pods[8].ready, pods[8].available, pods[9].ready, pods[9].available = true, true, true, true
	if marked := planCloneSetUpdate(n, pods); len(marked) != 1 {
		t.Errorf("marked %v with 2 new pods ready, want 1", marked)
	}
}

// A scale-down deletes old pods first; a scale-up keeps the partition's
// number of old pods.
func TestCloneSetScale(t *testing.T) {
	n := cloneSetNumbers{replicas: 4, partition: 2, maxUnavailable: 1, scaleMaxUnavailable: 1 << 30}
	pods := []csPod{{updated: true, ready: true, available: true}, {ready: true, available: true}, {ready: true, available: true}, {ready: true, available: true}, {updated: true, ready: true, available: true}, {ready: true, available: true}}
	plan := planCloneSetScale(n, pods)
	// 6 pods, 4 wanted: 2 surplus, of which 4 old - 2 kept = 2 old;
	// deleteReadyLimit = 1 + 2 surplus = 3.
	if len(plan.delete) != 2 || pods[plan.delete[0]].updated || pods[plan.delete[1]].updated {
		t.Errorf("scale down deletes %v, want 2 old pods", plan.delete)
	}
	n.replicas = 6
	pods = []csPod{{updated: true, ready: true, available: true}, {ready: true, available: true}}
	if plan := planCloneSetScale(n, pods); plan.create != 4 || plan.createAtCurrent != 1 {
		t.Errorf("scale up from 1 old + 1 new to 6 with partition 2: %+v, want 4 created, 1 of them old", plan)
	}
}
