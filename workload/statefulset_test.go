package workload

import (
	"context"
	"errors"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// statefulSet is a 4-replica StatefulSet releasing rev-2 over rev-1 with
// the given partition; ordinals at or above updatedFrom run rev-2.
func statefulSet(partition, updatedFrom int32, ready bool) []client.Object {
	four := int32(4)
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", UID: "s-uid", Generation: 2,
			Annotations: map[string]string{InProgressingAnnotation: `{"rolloutName":"db"}`, ControlInfoAnnotation: "{}"}},
		Spec: appsv1.StatefulSetSpec{Replicas: &four, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: &partition}}},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 2, CurrentRevision: "db-rev-1", UpdateRevision: "db-rev-2"},
	}
	objs := []client.Object{s}
	for i := int32(0); i < four; i++ {
		rev := "db-rev-1"
		if i >= updatedFrom {
			rev = "db-rev-2"
		}
		status := corev1.ConditionTrue
		if !ready && i == 0 {
			status = corev1.ConditionFalse
		}
		objs = append(objs, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("db-%d", i), Namespace: "ns",
				Labels:          map[string]string{"app": "db", appsv1.ControllerRevisionHashLabelKey: rev},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(s, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))}},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
		})
	}
	return objs
}

func TestStatefulSetObserve(t *testing.T) {
	a := &StatefulSet{Client: fakeClient(t, statefulSet(2, 2, true)...), Key: client.ObjectKey{Namespace: "ns", Name: "db"}}
	info, err := a.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Updated != 2 || info.UpdatedReady != 2 || info.Others != 2 || info.StableRevision != "db-rev-1" || info.UpdateRevision != "db-rev-2" ||
		!info.Settled || !info.Controlled || info.Released || info.RevisionLabel != appsv1.ControllerRevisionHashLabelKey {
		t.Errorf("info %+v", *info)
	}
}

// A batch of n pods sets partition = replicas - n: 4 replicas, a batch of
// 3 → partition 1 (ordinals 1, 2 and 3 updated). A forward batch never
// raises the partition; a shrinking one does, and takes back (deletes, to
// be recreated at the current revision) one pod at a time below it.
func TestStatefulSetRelease(t *testing.T) {
	ctx := context.Background()
	key := client.ObjectKey{Namespace: "ns", Name: "db"}
	for _, tc := range []struct {
		name                   string
		partition, updatedFrom int32
		ready                  bool
		batch                  Batch
		wantPartition          int32
		wantDeleted            string
		wantErr                error
	}{
		{name: "a batch of 3 of 4", partition: 3, updatedFrom: 3, ready: true, batch: Batch{Updated: 3, Revision: "db-rev-2"}, wantPartition: 1},
		{name: "a forward batch lower than the pods released keeps the partition", partition: 1, updatedFrom: 1, ready: true, batch: Batch{Updated: 1, Revision: "db-rev-2"}, wantPartition: 1},
		{name: "a shrinking batch raises it and takes one pod back", partition: 1, updatedFrom: 1, ready: true, batch: Batch{Updated: 1, Revision: "db-rev-2", Shrink: true}, wantPartition: 3, wantDeleted: "db-2"},
		{name: "while a pod is not ready none is taken back", partition: 1, updatedFrom: 1, ready: false, batch: Batch{Updated: 1, Revision: "db-rev-2", Shrink: true}, wantPartition: 3},
		{name: "a batch for another revision is refused", partition: 3, updatedFrom: 3, ready: true, batch: Batch{Updated: 3, Revision: "db-rev-3"}, wantPartition: 3, wantErr: ErrRevisionChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeClient(t, statefulSet(tc.partition, tc.updatedFrom, tc.ready)...)
			a := &StatefulSet{Client: c, Key: key}
			if err := a.Release(ctx, tc.batch); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Release: %v, want %v", err, tc.wantErr)
			}
			s := &appsv1.StatefulSet{}
			if err := c.Get(ctx, key, s); err != nil {
				t.Fatal(err)
			}
			if p := partitionOf(s); p != tc.wantPartition {
				t.Errorf("partition %d, want %d", p, tc.wantPartition)
			}
			var pods corev1.PodList
			if err := c.List(ctx, &pods, client.InNamespace("ns")); err != nil {
				t.Fatal(err)
			}
			deleted := ""
			for i := range 4 {
				name := fmt.Sprintf("db-%d", i)
				found := false
				for _, p := range pods.Items {
					found = found || p.Name == name
				}
				if !found {
					deleted += name
				}
			}
			if deleted != tc.wantDeleted {
				t.Errorf("deleted %q, want %q", deleted, tc.wantDeleted)
			}
		})
	}
}

// A rollback in batches: ordinals 0 and 1 already run the revision
// released (the one re-applied); a batch of 3 sets partition 3, so that
// only ordinal 3 is updated (partition 1 would update all 4). With none
// below, it is replicas - want.
func TestOrdinalPartition(t *testing.T) {
	below := func(upTo int32) func(int32) int32 { return func(p int32) int32 { return min(p, upTo) } }
	for _, c := range []struct{ want, upTo, partition int32 }{{3, 2, 3}, {4, 2, 2}, {2, 2, 4}, {1, 0, 3}, {4, 0, 0}} {
		if got := ordinalPartition(4, c.want, below(c.upTo)); got != c.partition {
			t.Errorf("want %d with %d below: partition %d, want %d", c.want, c.upTo, got, c.partition)
		}
	}
}
