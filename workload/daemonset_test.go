package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// daemonSet is a DaemonSet on 6 nodes releasing hash v2 over v1, held on
// OnDelete; the first `updated` pods run v2.
func daemonSet(updated int) []client.Object {
	two := intstr.FromInt32(2)
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", UID: "ds-uid", Generation: 2,
			Annotations: map[string]string{InProgressingAnnotation: `{"rolloutName":"agent"}`, DaemonSetOriginalStrategyAnnotation: "RollingUpdate"}},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &two}}},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 6, UpdatedNumberScheduled: int32(updated), NumberAvailable: 6},
	}
	owner := *metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))
	objs := []client.Object{ds}
	for i, h := range []string{"v1", "v2"} {
		objs = append(objs, &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{Name: "agent-" + h, Namespace: "ns", Labels: map[string]string{"app": "agent", appsv1.DefaultDaemonSetUniqueLabelKey: h},
				OwnerReferences: []metav1.OwnerReference{owner}},
			Revision: int64(i + 1),
		})
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 6 {
		rev := "v1"
		if i < updated {
			rev = "v2"
		}
		objs = append(objs, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("agent-%d", i), Namespace: "ns", UID: "uid", ResourceVersion: "1",
				CreationTimestamp: metav1.NewTime(start.Add(time.Duration(i) * time.Minute)),
				Labels:            map[string]string{"app": "agent", appsv1.ControllerRevisionHashLabelKey: rev},
				OwnerReferences:   []metav1.OwnerReference{owner}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		})
	}
	return objs
}

func TestDaemonSetObserve(t *testing.T) {
	a := &DaemonSet{Client: fakeClient(t, daemonSet(2)...), Key: client.ObjectKey{Namespace: "ns", Name: "agent"}}
	info, err := a.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Replicas != 6 || info.Updated != 2 || info.UpdatedReady != 2 || info.Others != 4 || info.StableRevision != "v1" || info.UpdateRevision != "v2" ||
		info.PodRevision != "v2" || !info.Settled || !info.Frozen || info.Released || info.RevisionLabel != appsv1.ControllerRevisionHashLabelKey {
		t.Errorf("info %+v", *info)
	}
}

// A batch of 5 with 2 pods updated and maxUnavailable 2 deletes two old
// pods now (the cheapest by pod-deletion-cost, then the newest), and
// records the batch in Kruise's annotations: partition 6 - 5 = 1.
func TestDaemonSetReleaseDeletesOldPodsWithinMaxUnavailable(t *testing.T) {
	objs := daemonSet(2)
	objs[5].(*corev1.Pod).Annotations = map[string]string{PodDeletionCostAnnotation: "-5"} // agent-2
	c := fakeClient(t, objs...)
	a := &DaemonSet{Client: c, Key: client.ObjectKey{Namespace: "ns", Name: "agent"}}
	if err := a.Release(context.Background(), Batch{Index: 2, Updated: 5, Revision: "v2"}); err != nil {
		t.Fatal(err)
	}
	var pods corev1.PodList
	if err := c.List(context.Background(), &pods); err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, p := range pods.Items {
		left[p.Name] = true
	}
	// agent-2 (cost -5) and agent-5 (the newest of the rest) go.
	if len(pods.Items) != 4 || left["agent-2"] || left["agent-5"] {
		t.Errorf("pods left %v", left)
	}
	ds := &appsv1.DaemonSet{}
	if err := c.Get(context.Background(), a.Key, ds); err != nil {
		t.Fatal(err)
	}
	var control, revision map[string]string
	_ = json.Unmarshal([]byte(ds.Annotations[DaemonSetAdvancedControlAnnotation]), &control)
	_ = json.Unmarshal([]byte(ds.Annotations[DaemonSetRevisionAnnotation]), &revision)
	if control["partition"] != "1" || control["batch-revision"] != "v2" || revision["canary-revision"] != "v2" || revision["stable-revision"] != "v1" {
		t.Errorf("annotations %v", ds.Annotations)
	}
	// The new pods carry the batch that released them.
	for _, p := range pods.Items {
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] == "v2" && p.Labels[BatchIDLabel] != "2" {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
	}
}

// A batch for another revision does nothing.
func TestDaemonSetReleaseRefusesAnotherRevision(t *testing.T) {
	c := fakeClient(t, daemonSet(1)...)
	a := &DaemonSet{Client: c, Key: client.ObjectKey{Namespace: "ns", Name: "agent"}}
	if err := a.Release(context.Background(), Batch{Index: 1, Updated: 3, Revision: "v3"}); err == nil {
		t.Fatal("no error")
	}
	var pods corev1.PodList
	_ = c.List(context.Background(), &pods)
	if len(pods.Items) != 6 {
		t.Errorf("%d pods left, want 6", len(pods.Items))
	}
}

// Pods not ready go first and cost no availability; ready ones stop at
// maxUnavailable, counting new pods that are not ready yet.
func TestPodsToReplace(t *testing.T) {
	pod := func(name, rev string, ready bool) corev1.Pod {
		s := corev1.ConditionFalse
		if ready {
			s = corev1.ConditionTrue
		}
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{appsv1.ControllerRevisionHashLabelKey: rev}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: s}}}}
	}
	pods := []corev1.Pod{pod("new-unready", "v2", false), pod("a", "v1", true), pod("b", "v1", false), pod("c", "v1", true)}
	got := podsToReplace(pods, "v2", 4, 4, 2)
	if len(got) != 2 || got[0].Name != "b" {
		t.Errorf("got %v", got)
	}
	if got := podsToReplace(pods, "v2", 1, 4, 2); len(got) != 0 {
		t.Errorf("batch reached, still deleting %v", got)
	}
	// A node whose pod is gone and not yet replaced: it will run v2 and
	// is down meanwhile, so a batch of 2 deletes nothing more.
	if got := podsToReplace(pods, "v2", 2, 5, 2); len(got) != 0 {
		t.Errorf("deleting %v while a replacement is coming", got)
	}
}

// Prepare and Finalise: the original strategy is saved, OnDelete held,
// and given back at the end; with KeepPaused (a Rollout deleted
// mid-release under KeepWorkloadPausedOnRolloutDeletion) it stays held.
func TestDaemonSetPrepareAndFinalise(t *testing.T) {
	for _, keep := range []bool{false, true} {
		objs := daemonSet(2)
		ds := objs[0].(*appsv1.DaemonSet)
		ds.Annotations = nil
		ds.Spec.UpdateStrategy.Type = appsv1.RollingUpdateDaemonSetStrategyType
		c := fakeClient(t, objs...)
		a := &DaemonSet{Client: c, Key: client.ObjectKey{Namespace: "ns", Name: "agent"}, RolloutName: "agent", KeepPaused: keep}
		if err := a.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := &appsv1.DaemonSet{}
		_ = c.Get(context.Background(), a.Key, got)
		if got.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType || got.Annotations[DaemonSetOriginalStrategyAnnotation] != "RollingUpdate" || got.Annotations[ControlInfoAnnotation] == "" {
			t.Errorf("prepared %+v %v", got.Spec.UpdateStrategy, got.Annotations)
		}
		if err := a.Finalise(context.Background()); err != nil {
			t.Fatal(err)
		}
		_ = c.Get(context.Background(), a.Key, got)
		wantType := appsv1.RollingUpdateDaemonSetStrategyType
		if keep {
			wantType = appsv1.OnDeleteDaemonSetStrategyType
		}
		if got.Spec.UpdateStrategy.Type != wantType || got.Annotations[ControlInfoAnnotation] != "" {
			t.Errorf("keep=%v: finalised %+v %v", keep, got.Spec.UpdateStrategy, got.Annotations)
		}
	}
}
