package freeze

import (
	"context"
	"encoding/json"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

func scheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1beta1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// rolloutOf is a Rollout of the workload; batch, when not nil, is the
// batch its committed status holds the workload to.
func rolloutOf(apiVersion, kind string, batch *v1beta1.BatchStatus) *v1beta1.Rollout {
	r := &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}
	r.Spec.WorkloadRef = v1beta1.ObjectRef{APIVersion: apiVersion, Kind: kind, Name: "web"}
	r.Spec.Strategy.Canary = &v1beta1.CanaryStrategy{}
	r.Status.Phase = v1beta1.RolloutPhaseHealthy
	if batch != nil {
		r.Status.Phase = v1beta1.RolloutPhaseProgressing
		r.Status.Release = &v1beta1.ReleaseStatus{Batch: batch}
	}
	return r
}

// review runs the webhook on an update from old to cur and returns the
// object it lets through.
func review(t *testing.T, objs []client.Object, gvk metav1.GroupVersionKind, old, cur any) map[string]any {
	t.Helper()
	s := scheme(t)
	h := &Handler{Client: fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build(), Decoder: admission.NewDecoder(s)}
	oldRaw, _ := json.Marshal(old)
	curRaw, _ := json.Marshal(cur)
	resp := h.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Update, Kind: gvk, Object: runtime.RawExtension{Raw: curRaw}, OldObject: runtime.RawExtension{Raw: oldRaw},
	}})
	if !resp.Allowed {
		t.Fatalf("refused: %+v", resp.Result)
	}
	out := curRaw
	if len(resp.Patches) > 0 {
		p, _ := json.Marshal(resp.Patches)
		patch, err := jsonpatch.DecodePatch(p)
		if err != nil {
			t.Fatal(err)
		}
		if out, err = patch.Apply(curRaw); err != nil {
			t.Fatal(err)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func deployment(image string, paused bool, annotations map[string]string) *appsv1.Deployment {
	ten := int32(10)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "d-uid", Annotations: annotations},
		Spec: appsv1.DeploymentSpec{Replicas: &ten, Paused: paused, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}}}},
	}
}

var deploymentKind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}

func TestAFrozenDeploymentStaysFrozen(t *testing.T) {
	r := rolloutOf("apps/v1", "Deployment", nil)
	t.Run("a new template enters a release", func(t *testing.T) {
		out := review(t, []client.Object{r}, deploymentKind, deployment("demo:v1", false, nil), deployment("demo:v2", false, nil))
		meta, spec := out["metadata"].(map[string]any), out["spec"].(map[string]any)
		if spec["paused"] != true || meta["annotations"].(map[string]any)[workload.InProgressingAnnotation] == nil || meta["labels"].(map[string]any)[workload.StableRevisionLabel] == nil {
			t.Errorf("not frozen: %v", out)
		}
	})
	t.Run("an unchanged template passes", func(t *testing.T) {
		out := review(t, []client.Object{r}, deploymentKind, deployment("demo:v1", false, nil), deployment("demo:v1", false, nil))
		if out["spec"].(map[string]any)["paused"] == true {
			t.Error("paused without a release")
		}
	})
	t.Run("a re-apply mid-release that unpauses and drops the marks", func(t *testing.T) {
		held := rolloutOf("apps/v1", "Deployment", &v1beta1.BatchStatus{Step: 1, Replicas: 1})
		mark := map[string]string{workload.InProgressingAnnotation: `{"rolloutName":"web"}`}
		out := review(t, []client.Object{held}, deploymentKind, deployment("demo:v2", true, mark), deployment("demo:v2", false, nil))
		if out["spec"].(map[string]any)["paused"] != true || out["metadata"].(map[string]any)["annotations"].(map[string]any)[workload.InProgressingAnnotation] == nil {
			t.Errorf("a held Deployment was let go: %v", out)
		}
	})
}

func cloneSet(image string, partition any, annotations map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
		"metadata": map[string]any{"name": "web", "namespace": "ns"},
		"spec": map[string]any{"replicas": int64(10), "updateStrategy": map[string]any{},
			"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": image}}}}},
	}}
	if partition != nil {
		_ = unstructured.SetNestedField(u.Object, partition, "spec", "updateStrategy", "partition")
	}
	u.SetAnnotations(annotations)
	return u
}

var cloneSetKind = metav1.GroupVersionKind{Group: "apps.kruise.io", Version: "v1alpha1", Kind: "CloneSet"}

// A GitOps tool re-applying the v2 manifest mid-release (partition 0)
// would release every pod; the webhook keeps the committed batch's:
// 10 replicas, a batch of 1 → partition 9 (issue 10, defect 2).
func TestACloneSetIsHeldToItsBatch(t *testing.T) {
	mark := map[string]string{workload.InProgressingAnnotation: `{"rolloutName":"web"}`}
	held := rolloutOf("apps.kruise.io/v1alpha1", "CloneSet", &v1beta1.BatchStatus{Step: 1, Replicas: 1})
	for _, tc := range []struct {
		name     string
		old, cur *unstructured.Unstructured
		want     any
	}{
		{"a re-apply with partition 0", cloneSet("demo:v2", int64(9), mark), cloneSet("demo:v2", int64(0), mark), int64(9)},
		{"a replace without the marks", cloneSet("demo:v2", int64(9), mark), cloneSet("demo:v2", int64(0), nil), int64(9)},
		{"Sluice's own next batch within the held one", cloneSet("demo:v2", int64(9), mark), cloneSet("demo:v2", int64(9), mark), int64(9)},
		{"a new template mid-release freezes again", cloneSet("demo:v2", int64(9), mark), cloneSet("demo:v3", int64(0), mark), "100%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := review(t, []client.Object{held}, cloneSetKind, tc.old, tc.cur)
			p, _, _ := unstructured.NestedFieldNoCopy(out, "spec", "updateStrategy", "partition")
			if p != tc.want && !(isNumber(p) && isNumber(tc.want) && toInt(p) == toInt(tc.want)) {
				t.Errorf("partition %v, want %v", p, tc.want)
			}
			if ann, _, _ := unstructured.NestedStringMap(out, "metadata", "annotations"); ann[workload.InProgressingAnnotation] == "" {
				t.Error("the in-progressing mark is gone")
			}
		})
	}
	// A larger batch lets more through: a batch of 5 allows partition 5.
	wider := rolloutOf("apps.kruise.io/v1alpha1", "CloneSet", &v1beta1.BatchStatus{Step: 2, Replicas: 5})
	out := review(t, []client.Object{wider}, cloneSetKind, cloneSet("demo:v2", int64(9), mark), cloneSet("demo:v2", int64(5), mark))
	if p, _, _ := unstructured.NestedFieldNoCopy(out, "spec", "updateStrategy", "partition"); toInt(p) != 5 {
		t.Errorf("partition %v, want Sluice's 5", p)
	}
	// Without a batch (at rest, or once the workload is given back) the
	// webhook holds nothing.
	rest := rolloutOf("apps.kruise.io/v1alpha1", "CloneSet", nil)
	out = review(t, []client.Object{rest}, cloneSetKind, cloneSet("demo:v2", int64(9), nil), cloneSet("demo:v2", int64(0), nil))
	if p, _, _ := unstructured.NestedFieldNoCopy(out, "spec", "updateStrategy", "partition"); toInt(p) != 0 {
		t.Errorf("partition %v at rest, want the user's 0", p)
	}
}

func statefulSet(image string, partition int32, annotations map[string]string) *appsv1.StatefulSet {
	ten := int32(10)
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Annotations: annotations},
		Spec: appsv1.StatefulSetSpec{Replicas: &ten, UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: &partition}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}}}},
	}
}

func TestAStatefulSetIsHeldToItsBatch(t *testing.T) {
	mark := map[string]string{workload.InProgressingAnnotation: `{"rolloutName":"web"}`}
	held := rolloutOf("apps/v1", "StatefulSet", &v1beta1.BatchStatus{Step: 1, Replicas: 2})
	kind := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
	out := review(t, []client.Object{held}, kind, statefulSet("demo:v2", 8, mark), statefulSet("demo:v2", 0, mark))
	if p, _, _ := unstructured.NestedFieldNoCopy(out, "spec", "updateStrategy", "rollingUpdate", "partition"); toInt(p) != 8 {
		t.Errorf("partition %v, want 10 - 2 = 8", p)
	}
	out = review(t, []client.Object{held}, kind, statefulSet("demo:v2", 8, mark), statefulSet("demo:v3", 8, mark))
	if p, _, _ := unstructured.NestedFieldNoCopy(out, "spec", "updateStrategy", "rollingUpdate", "partition"); toInt(p) != int64(workload.FrozenPartition) {
		t.Errorf("partition %v after a new template, want frozen", p)
	}
}

func isNumber(v any) bool {
	switch v.(type) {
	case int64, float64:
		return true
	}
	return false
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return -1
}

func daemonSet(image string, strategy appsv1.DaemonSetUpdateStrategyType, annotations map[string]string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Annotations: annotations},
		Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: strategy},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}}}},
	}
}

// A native DaemonSet entering a release goes on OnDelete with its own
// strategy kept, as Kruise's webhook does; a client re-applying
// RollingUpdate mid-release changes the strategy restored at the end, not
// the hold.
func TestADaemonSetIsHeldOnOnDelete(t *testing.T) {
	kind := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}
	strategy := func(out map[string]any) string {
		s, _, _ := unstructured.NestedString(out, "spec", "updateStrategy", "type")
		return s
	}
	ann := func(out map[string]any, k string) string {
		s, _, _ := unstructured.NestedString(out, "metadata", "annotations", k)
		return s
	}
	out := review(t, []client.Object{rolloutOf("apps/v1", "DaemonSet", nil)}, kind,
		daemonSet("demo:v1", appsv1.RollingUpdateDaemonSetStrategyType, nil), daemonSet("demo:v2", appsv1.RollingUpdateDaemonSetStrategyType, nil))
	if strategy(out) != "OnDelete" || ann(out, workload.DaemonSetOriginalStrategyAnnotation) != "RollingUpdate" || ann(out, workload.InProgressingAnnotation) != `{"rolloutName":"web"}` {
		t.Errorf("not held: %v", out)
	}
	held := rolloutOf("apps/v1", "DaemonSet", &v1beta1.BatchStatus{Step: 1, Replicas: 1})
	mark := map[string]string{workload.InProgressingAnnotation: `{"rolloutName":"web"}`, workload.DaemonSetOriginalStrategyAnnotation: "OnDelete"}
	out = review(t, []client.Object{held}, kind, daemonSet("demo:v2", appsv1.OnDeleteDaemonSetStrategyType, mark), daemonSet("demo:v2", appsv1.RollingUpdateDaemonSetStrategyType, nil))
	if strategy(out) != "OnDelete" || ann(out, workload.DaemonSetOriginalStrategyAnnotation) != "RollingUpdate" || ann(out, workload.InProgressingAnnotation) == "" {
		t.Errorf("a re-apply mid-release let the DaemonSet go: %v", out)
	}
	out = review(t, []client.Object{rolloutOf("apps/v1", "DaemonSet", nil)}, kind,
		daemonSet("demo:v1", appsv1.RollingUpdateDaemonSetStrategyType, nil), daemonSet("demo:v1", appsv1.RollingUpdateDaemonSetStrategyType, nil))
	if strategy(out) != "RollingUpdate" {
		t.Errorf("held without a new template: %v", out)
	}
}

// countingReader counts the Rollout lists it serves.
type countingReader struct {
	client.Reader
	lists int
}

func (c *countingReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*v1beta1.RolloutList); ok {
		c.lists++
	}
	return c.Reader.List(ctx, list, opts...)
}

// The cache says which Rollout releases the workload; that one is read
// from the API server (its committed status, newer than the cache's), so
// no write lists every Rollout of the namespace. A Rollout the cache does
// not hold yet is found by that list.
func TestFindsTheRolloutThroughTheCache(t *testing.T) {
	s := scheme(t)
	stale := rolloutOf("apps/v1", "Deployment", nil)
	other := rolloutOf("apps/v1", "Deployment", nil)
	other.Name, other.Spec.WorkloadRef.Name = "api", "api"
	held := rolloutOf("apps/v1", "Deployment", &v1beta1.BatchStatus{Step: 1, Replicas: 1})
	frozen := func(h *Handler) bool {
		mark := map[string]string{workload.InProgressingAnnotation: `{"rolloutName":"web"}`}
		oldRaw, _ := json.Marshal(deployment("demo:v2", true, mark))
		curRaw, _ := json.Marshal(deployment("demo:v2", false, nil))
		resp := h.Handle(t.Context(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			Operation: admissionv1.Update, Kind: deploymentKind, Object: runtime.RawExtension{Raw: curRaw}, OldObject: runtime.RawExtension{Raw: oldRaw},
		}})
		return resp.Allowed && len(resp.Patches) > 0
	}

	t.Run("held by the live status, not the cache's", func(t *testing.T) {
		cached := fake.NewClientBuilder().WithScheme(s).WithIndex(&v1beta1.Rollout{}, workload.RolloutsByWorkload, workload.IndexRolloutByWorkload).WithObjects(stale, other).Build()
		live := &countingReader{Reader: fake.NewClientBuilder().WithScheme(s).WithObjects(held, other).Build()}
		h := &Handler{Client: live, Cached: cached, Decoder: admission.NewDecoder(s)}
		if !frozen(h) {
			t.Error("a re-apply mid-release was let through: the webhook read the cache's status")
		}
		if live.lists != 0 {
			t.Errorf("%d Rollout lists from the API server, want none", live.lists)
		}
	})
	t.Run("a Rollout the cache does not hold yet", func(t *testing.T) {
		cached := fake.NewClientBuilder().WithScheme(s).WithIndex(&v1beta1.Rollout{}, workload.RolloutsByWorkload, workload.IndexRolloutByWorkload).WithObjects(other).Build()
		live := &countingReader{Reader: fake.NewClientBuilder().WithScheme(s).WithObjects(held, other).Build()}
		h := &Handler{Client: live, Cached: cached, Decoder: admission.NewDecoder(s)}
		if ok := frozen(h); !ok || live.lists != 1 {
			t.Errorf("frozen %t after %d lists, want frozen after listing the namespace once", ok, live.lists)
		}
	})
}
