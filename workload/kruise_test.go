package workload

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func cloneSet(partition any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "web", "namespace": "ns", "generation": int64(2)},
		"spec":     map[string]any{"replicas": int64(10), "updateStrategy": map[string]any{}},
		"status": map[string]any{
			"observedGeneration": int64(2), "replicas": int64(10), "updatedReplicas": int64(3), "updatedReadyReplicas": int64(2),
			"updateRevision": "web-7c9d4f", "currentRevision": "web-5b8e2a",
		},
	}}
	u.SetGroupVersionKind(CloneSetKind)
	if partition != nil {
		_ = unstructured.SetNestedField(u.Object, partition, "spec", "updateStrategy", "partition")
	}
	return u
}

func partitioned(t *testing.T, objs ...client.Object) (*Partitioned, client.Client) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	return &Partitioned{Client: c, Key: client.ObjectKey{Namespace: "ns", Name: "web"}, GVK: CloneSetKind, RolloutName: "r"}, c
}

func TestPartitionedObserve(t *testing.T) {
	a, _ := partitioned(t, cloneSet("100%"))
	info, err := a.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// CloneSet revisions are trimmed to the hash its pods carry in
	// pod-template-hash: the stable Service selects stable pods by it
	// (issue 10, defect 1: the full name selected nothing).
	want := Info{Replicas: 10, StableRevision: "5b8e2a", UpdateRevision: "7c9d4f", PodRevision: "7c9d4f",
		Updated: 3, UpdatedReady: 2, Others: 7, Settled: true, RevisionLabel: "pod-template-hash"}
	if info.Replicas != want.Replicas || info.StableRevision != want.StableRevision || info.UpdateRevision != want.UpdateRevision ||
		info.PodRevision != want.PodRevision || info.Updated != 3 || info.UpdatedReady != 2 || info.Others != 7 || !info.Settled ||
		info.RevisionLabel != want.RevisionLabel || info.Released {
		t.Errorf("info = %+v, want %+v", *info, want)
	}
}

// A batch of n pods leaves replicas-n on the old revision; Finalise
// removes the partition and Sluice's annotations.
func TestPartitionedReleaseAndFinalise(t *testing.T) {
	ctx := context.Background()
	a, c := partitioned(t, cloneSet("100%"))
	if err := a.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	get := func() *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(CloneSetKind)
		if err := c.Get(ctx, a.Key, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	if p, _, _ := unstructured.NestedString(get().Object, "spec", "updateStrategy", "partition"); p != "100%" {
		t.Errorf("Prepare changed the frozen partition to %q", p)
	}
	if get().GetAnnotations()[ControlInfoAnnotation] == "" {
		t.Error("Prepare must mark the workload as controlled")
	}
	for _, tc := range []struct{ batch, want int64 }{{1, 9}, {5, 5}, {10, 0}, {12, 0}} {
		if err := a.Release(ctx, Batch{Index: 1, Updated: int32(tc.batch)}); err != nil {
			t.Fatal(err)
		}
		if p, _, _ := unstructured.NestedInt64(get().Object, "spec", "updateStrategy", "partition"); p != tc.want {
			t.Errorf("batch of %d: partition %d, want %d", tc.batch, p, tc.want)
		}
	}
	if err := a.Finalise(ctx); err != nil {
		t.Fatal(err)
	}
	u := get()
	if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "updateStrategy", "partition"); found {
		t.Error("Finalise left the partition")
	}
	if len(u.GetAnnotations()) != 0 {
		t.Errorf("annotations left: %v", u.GetAnnotations())
	}
}

func TestPartitionOf(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want int32
	}{{nil, 0}, {int64(3), 3}, {"30%", 3}, {"100%", 10}, {"25%", 3}} {
		u := cloneSet(tc.v)
		if got, err := partitionOf32(u, []string{"spec", "updateStrategy", "partition"}, 10); err != nil || got != tc.want {
			t.Errorf("partition %v = %d (%v), want %d", tc.v, got, err, tc.want)
		}
	}
}
