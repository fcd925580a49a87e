package app

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cache keeps what Sluice reads of pods and ReplicaSets, not their
// pod specs (the bulk of them).
func TestCacheTransforms(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{"pod-template-hash": "abc"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "demo:v2"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	out, err := stripPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	p := out.(*corev1.Pod)
	if len(p.Spec.Containers) != 0 || p.ManagedFields != nil {
		t.Errorf("spec or managedFields kept: %+v", p)
	}
	if p.Labels["pod-template-hash"] != "abc" || len(p.Status.Conditions) != 1 {
		t.Errorf("labels or readiness lost: %+v", p)
	}

	two := int32(2)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"pod-template-hash": "abc"}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &two, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web"}}},
		}},
		Status: appsv1.ReplicaSetStatus{AvailableReplicas: 2},
	}
	out, err = stripReplicaSet(rs)
	if err != nil {
		t.Fatal(err)
	}
	r := out.(*appsv1.ReplicaSet)
	if len(r.Spec.Template.Spec.Containers) != 0 || *r.Spec.Replicas != 2 || r.Status.AvailableReplicas != 2 || r.Spec.Template.Labels["app"] != "web" {
		t.Errorf("ReplicaSet %+v", r)
	}
}
