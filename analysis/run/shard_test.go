package run

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// A shard measures the runs whose Rollout is in its cache (which holds
// the shard's Rollouts only), whatever the runs' own labels say, so runs
// follow their Rollout to another shard; runs no Rollout controls go by
// their labels.
func TestShardOwnsRunsOfItsRollouts(t *testing.T) {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1beta1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	mine := &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u-web"}}
	// The cache of this shard: "web" only ("api" is another shard's).
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(mine).Build()
	sel, err := labels.Parse("sharding.fluxcd.io/key=shard1")
	if err != nil {
		t.Fatal(err)
	}
	f, err := newShardFilter(c, &Shard{Owner: &v1beta1.Rollout{}, Selector: sel}, s)
	if err != nil {
		t.Fatal(err)
	}
	owned := func(name string, uid types.UID) *v1alpha1.AnalysisRun {
		yes := true
		return &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name + "-1",
			Labels:          map[string]string{"sharding.fluxcd.io/key": "shard2"}, // stale: the Rollout moved
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "rollouts.kruise.io/v1beta1", Kind: "Rollout", Name: name, UID: uid, Controller: &yes}}}}
	}
	loose := func(shard string) *v1alpha1.AnalysisRun {
		return &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "by-hand", Labels: map[string]string{"sharding.fluxcd.io/key": shard}}}
	}
	for _, tc := range []struct {
		what string
		run  *v1alpha1.AnalysisRun
		want bool
	}{
		{"run of a Rollout in the shard", owned("web", "u-web"), true},
		{"run of another shard's Rollout", owned("api", "u-api"), false},
		{"run of a deleted Rollout of the same name", owned("web", "u-old"), false},
		{"run without a Rollout, labelled for the shard", loose("shard1"), true},
		{"run without a Rollout, labelled for another", loose("shard2"), false},
	} {
		got, err := f.owns(t.Context(), tc.run)
		if err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		if got != tc.want {
			t.Errorf("%s: owns %v, want %v", tc.what, got, tc.want)
		}
	}

	// Unsharded, every run is measured.
	var none *shardFilter
	if got, _ := none.owns(t.Context(), owned("api", "u-api")); !got {
		t.Error("an unsharded manager skipped a run")
	}
}

// Another shard's run is left alone: no status written, no requeue.
func TestReconcileSkipsAnotherShardsRun(t *testing.T) {
	h := newHarness(t, metric("m", "vector(1)", "result[0] == 1"))
	s := h.c.Scheme()
	if err := v1beta1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	run := &v1alpha1.AnalysisRun{}
	if err := h.c.Get(t.Context(), h.key, run); err != nil {
		t.Fatal(err)
	}
	yes := true
	run.OwnerReferences = []metav1.OwnerReference{{APIVersion: "rollouts.kruise.io/v1beta1", Kind: "Rollout", Name: "web", UID: "u-web", Controller: &yes}}
	if err := h.c.Update(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	f, err := newShardFilter(h.c, &Shard{Owner: &v1beta1.Rollout{}, Selector: labels.Everything()}, s)
	if err != nil {
		t.Fatal(err)
	}
	h.r.shard = f
	res, err := h.r.Reconcile(t.Context(), ctrl.Request{NamespacedName: h.key})
	if err != nil || !res.IsZero() {
		t.Fatalf("reconcile of another shard's run: %v %v", res, err)
	}
	after := &v1alpha1.AnalysisRun{}
	if err := h.c.Get(t.Context(), client.ObjectKeyFromObject(run), after); err != nil {
		t.Fatal(err)
	}
	if after.Status.StartedAt != nil || len(h.prom.got) != 0 {
		t.Errorf("another shard's run was measured: %+v", after.Status)
	}
}
