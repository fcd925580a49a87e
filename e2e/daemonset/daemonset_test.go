//go:build e2e

package daemonset_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/docs/examples"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/workload"
)

const (
	imageV1 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.2"
	imageV2 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3"
)

// rolloutFor releases one pod (analysis, then approval), half of them,
// then all, each batch judged by the error-rate AnalysisTemplate of
// docs/examples.
func rolloutFor(apiVersion string) string {
	return fmt.Sprintf(`apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: agent}
spec:
  workloadRef: {apiVersion: %s, kind: DaemonSet, name: agent}
  strategy:
    canary:
      steps:
      - replicas: 1
        analysis: {templates: [{templateName: error-rate}]}
      - replicas: 50%%
        pause: {duration: 0}
        analysis: {templates: [{templateName: error-rate}]}
      - replicas: 100%%
        analysis: {templates: [{templateName: error-rate}]}
`, apiVersion)
}

const nativeDaemonSet = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: "` + imageV1 + `"}]}
`

const advancedDaemonSet = `apiVersion: apps.kruise.io/v1alpha1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: "` + imageV1 + `"}]}
`

// fixture is one test's namespace, DaemonSet and Rollout.
type fixture struct {
	t   *testing.T
	ctx context.Context
	c   client.Client
	ns  string
	gvk schema.GroupVersionKind
}

// newFixture creates the error-rate AnalysisTemplate, the DaemonSet and
// its Rollout (rolloutFor), and waits until every node runs a ready pod.
func newFixture(t *testing.T, gvk schema.GroupVersionKind, daemonSet string) *fixture {
	t.Helper()
	template, err := examples.File("error-rate-template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureWith(t, gvk, nodes, string(template), daemonSet, rolloutFor(gvk.GroupVersion().String()))
}

// newFixtureWith creates the objects (the workload named agent, its
// Rollout named agent) and waits for the Rollout to be Healthy and want
// ready pods.
func newFixtureWith(t *testing.T, gvk schema.GroupVersionKind, want int, objects ...string) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	f := &fixture{t: t, ctx: ctx, c: env.Client, ns: env.Namespace(t), gvk: gvk}
	for _, m := range objects {
		if _, err := manifest.Create(ctx, f.c, f.ns, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	f.waitRollout("Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
	f.waitPods("every pod ready", func(pods []corev1.Pod) bool { return len(pods) == want && readyCount(pods) == want })
	return f
}

func (f *fixture) get() *unstructured.Unstructured {
	f.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(f.gvk)
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "agent"}, u); err != nil {
		f.t.Fatal(err)
	}
	return u
}

// setImage changes the template's image, as kubectl apply would.
func (f *fixture) setImage(image string) {
	f.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(f.gvk)
	u.SetNamespace(f.ns)
	u.SetName("agent")
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"agent","image":%q}]}}}}`, image)
	if err := f.c.Patch(f.ctx, u, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) waitRollout(what string, cond func(*v1beta1.Rollout) bool) *v1beta1.Rollout {
	f.t.Helper()
	r, err := framework.WaitRollout(f.ctx, f.c, client.ObjectKey{Namespace: f.ns, Name: "agent"}, 3*time.Minute, cond)
	if err != nil {
		f.t.Fatalf("waiting for %s: %v\nrollout: %s\npods: %s\nmanager log:\n%s", what, err, describeRollout(r), describe(f.pods()), env.Manager.LogTail())
	}
	return r
}

func describeRollout(r *v1beta1.Rollout) string {
	if r == nil {
		return "none"
	}
	return fmt.Sprintf("phase %s step %d %s: %s", r.Status.Phase, r.Status.CurrentStepIndex, r.Status.CurrentStepState, r.Status.Message)
}

// pods are the DaemonSet's pods not being deleted.
func (f *fixture) pods() []corev1.Pod {
	var l corev1.PodList
	if err := f.c.List(f.ctx, &l, client.InNamespace(f.ns), client.MatchingLabels{"app": "agent"}); err != nil {
		f.t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func (f *fixture) waitPods(what string, cond func([]corev1.Pod) bool) []corev1.Pod {
	f.t.Helper()
	var pods []corev1.Pod
	if err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
		pods = f.pods()
		return cond(pods), nil
	}); err != nil {
		f.t.Fatalf("waiting for %s: %v\npods: %s", what, err, describe(pods))
	}
	return pods
}

func describe(pods []corev1.Pod) string {
	var b strings.Builder
	for _, p := range pods {
		fmt.Fprintf(&b, "\n  %s on %s %s ready=%v labels=%v", p.Name, p.Spec.NodeName, p.Status.Phase, ready(&p), p.Labels)
	}
	return b.String()
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func readyCount(pods []corev1.Pod) int {
	n := 0
	for i := range pods {
		if ready(&pods[i]) {
			n++
		}
	}
	return n
}

// ofImage are the pods running image.
func ofImage(pods []corev1.Pod, image string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.Spec.Containers[0].Image == image {
			out = append(out, p)
		}
	}
	return out
}

func (f *fixture) approve() {
	f.t.Helper()
	r := &v1beta1.Rollout{}
	r.Namespace, r.Name = f.ns, "agent"
	patch := client.RawPatch(types.MergePatchType, []byte(`{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`))
	if err := f.c.Status().Patch(f.ctx, r, patch); err != nil {
		f.t.Fatal(err)
	}
}

func pausedAt(step int32) func(*v1beta1.Rollout) bool {
	return func(r *v1beta1.Rollout) bool {
		return r.Status.CurrentStepIndex == step && r.Status.CurrentStepState == v1beta1.CanaryStepStatePaused
	}
}

func completed(r *v1beta1.Rollout) bool {
	return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
}

// checkRuns: one successful AnalysisRun per step reached.
func (f *fixture) checkRuns(want int) {
	f.t.Helper()
	var runs v1alpha1.AnalysisRunList
	if err := f.c.List(f.ctx, &runs, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	if len(runs.Items) != want {
		f.t.Errorf("%d AnalysisRuns, want %d", len(runs.Items), want)
	}
	for _, ar := range runs.Items {
		if ar.Status.Phase != v1alpha1.AnalysisSuccessful {
			f.t.Errorf("run %s: %s %s", ar.Name, ar.Status.Phase, ar.Status.Message)
		}
	}
}

// checkBatches: every pod runs the new version and carries the batch it
// was released in: 1 pod, then 2 more (half of 6), then the last 3.
func (f *fixture) checkBatches(pods []corev1.Pod) {
	f.t.Helper()
	byBatch := map[string]int{}
	for _, p := range pods {
		byBatch[p.Labels[workload.BatchIDLabel]]++
	}
	if byBatch["1"] != 1 || byBatch["2"] != 2 || byBatch["3"] != 3 {
		f.t.Errorf("pods by %s: %v, want 1:1 2:2 3:3%s", workload.BatchIDLabel, byBatch, describe(pods))
	}
}

func annotation(u *unstructured.Unstructured, k string) string { return u.GetAnnotations()[k] }

// A native DaemonSet is released as Kruise Rollout releases it: held on
// OnDelete (its own strategy kept in an annotation), each batch made by
// deleting old pods — the lowest pod-deletion-cost first — whose
// replacements the DaemonSet controller creates from the new template, an
// analysis after each batch, and its RollingUpdate strategy given back at
// the end.
func TestNativeDaemonSetReleasedInBatches(t *testing.T) {
	f := newFixture(t, appsv1.SchemeGroupVersion.WithKind("DaemonSet"), nativeDaemonSet)
	// The pod of kwok-node-2 is the cheapest to lose: the first batch
	// replaces it.
	var first *corev1.Pod
	for _, p := range f.pods() {
		if p.Spec.NodeName == "kwok-node-2" {
			first = &p
		}
	}
	if first == nil {
		t.Fatalf("no pod on kwok-node-2:%s", describe(f.pods()))
	}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"controller.kubernetes.io/pod-deletion-cost":"-100"}}}`))
	if err := f.c.Patch(f.ctx, first, patch); err != nil {
		t.Fatal(err)
	}

	f.setImage(imageV2)
	ds := f.get()
	if typ, _, _ := unstructured.NestedString(ds.Object, "spec", "updateStrategy", "type"); typ != "OnDelete" {
		t.Errorf("updateStrategy.type %q while frozen, want OnDelete", typ)
	}
	if got := annotation(ds, workload.DaemonSetOriginalStrategyAnnotation); got != "RollingUpdate" {
		t.Errorf("%s = %q, want RollingUpdate", workload.DaemonSetOriginalStrategyAnnotation, got)
	}
	if got := annotation(ds, workload.InProgressingAnnotation); got != `{"rolloutName":"agent"}` {
		t.Errorf("%s = %q", workload.InProgressingAnnotation, got)
	}

	r := f.waitRollout("step 1 to wait for approval", pausedAt(1))
	pods := f.pods()
	news := ofImage(pods, imageV2)
	if len(news) != 1 || news[0].Spec.NodeName != "kwok-node-2" {
		t.Fatalf("after batch 1: new pods %s, want one on kwok-node-2", describe(news))
	}
	if len(pods) != nodes {
		t.Errorf("%d pods, want %d", len(pods), nodes)
	}
	hash := news[0].Labels[appsv1.ControllerRevisionHashLabelKey]
	if r.Status.CanaryStatus == nil || r.Status.CanaryStatus.CanaryRevision != hash || r.Status.CanaryStatus.PodTemplateHash != hash {
		t.Errorf("canaryStatus %+v, want canaryRevision and podTemplateHash %s", r.Status.CanaryStatus, hash)
	}
	ds = f.get()
	var control, revision map[string]string
	if err := json.Unmarshal([]byte(annotation(ds, workload.DaemonSetAdvancedControlAnnotation)), &control); err != nil || control["partition"] != "5" || control["batch-revision"] != hash {
		t.Errorf("%s = %q, want partition 5 batch-revision %s (%v)", workload.DaemonSetAdvancedControlAnnotation, annotation(ds, workload.DaemonSetAdvancedControlAnnotation), hash, err)
	}
	old := ofImage(pods, imageV1)[0].Labels[appsv1.ControllerRevisionHashLabelKey]
	if err := json.Unmarshal([]byte(annotation(ds, workload.DaemonSetRevisionAnnotation)), &revision); err != nil || revision["canary-revision"] != hash || revision["stable-revision"] != old {
		t.Errorf("%s = %q, want canary %s stable %s (%v)", workload.DaemonSetRevisionAnnotation, annotation(ds, workload.DaemonSetRevisionAnnotation), hash, old, err)
	}
	if got := ds.GetLabels()[workload.WorkloadTypeLabel]; got != "daemonset" {
		t.Errorf("%s = %q", workload.WorkloadTypeLabel, got)
	}
	f.checkRuns(1)

	f.approve()
	f.waitRollout("the release to complete", completed)
	pods = f.waitPods("every pod on the new version", func(pods []corev1.Pod) bool {
		return len(ofImage(pods, imageV2)) == nodes && len(pods) == nodes && readyCount(pods) == nodes
	})
	f.checkBatches(pods)
	f.checkRuns(3)
	ds = f.get()
	if typ, _, _ := unstructured.NestedString(ds.Object, "spec", "updateStrategy", "type"); typ != "RollingUpdate" {
		t.Errorf("updateStrategy.type %q after the release, want RollingUpdate back", typ)
	}
	for _, k := range []string{workload.InProgressingAnnotation, workload.DaemonSetOriginalStrategyAnnotation, workload.DaemonSetAdvancedControlAnnotation,
		workload.DaemonSetRevisionAnnotation, workload.ControlInfoAnnotation} {
		if v, ok := ds.GetAnnotations()[k]; ok {
			t.Errorf("%s = %q left after the release", k, v)
		}
	}
}

// An Advanced DaemonSet is released through its partition, counted in
// nodes: frozen at 32767, then desired - n for a batch of n; its
// controller updates the nodes in reverse name order, so the first batch
// is kwok-node-5's pod.
func TestAdvancedDaemonSetReleasedInBatches(t *testing.T) {
	f := newFixture(t, workload.AdvancedDaemonSetKind, advancedDaemonSet)
	u := f.get()
	if d, _, _ := unstructured.NestedInt64(u.Object, "status", "desiredNumberScheduled"); d != nodes {
		t.Fatalf("desiredNumberScheduled %d, want %d", d, nodes)
	}
	partition := []string{"spec", "updateStrategy", "rollingUpdate", "partition"}

	f.setImage(imageV2)
	if p, _, _ := unstructured.NestedFieldNoCopy(f.get().Object, partition...); fmt.Sprint(p) != fmt.Sprint(workload.FrozenPartition) {
		t.Errorf("partition %v while frozen, want %d", p, workload.FrozenPartition)
	}

	r := f.waitRollout("step 1 to wait for approval", pausedAt(1))
	news := ofImage(f.pods(), imageV2)
	if len(news) != 1 || news[0].Spec.NodeName != "kwok-node-5" {
		t.Fatalf("after batch 1: new pods %s, want one on kwok-node-5", describe(news))
	}
	u = f.get()
	if p, _, _ := unstructured.NestedInt64(u.Object, partition...); p != nodes-1 {
		t.Errorf("partition %d at batch 1, want %d", p, nodes-1)
	}
	hash, _, _ := unstructured.NestedString(u.Object, "status", "daemonSetHash")
	if news[0].Labels[appsv1.ControllerRevisionHashLabelKey] != hash || r.Status.CanaryStatus == nil || r.Status.CanaryStatus.CanaryRevision != hash {
		t.Errorf("daemonSetHash %s, new pod's revision %s, canaryStatus %+v", hash, news[0].Labels[appsv1.ControllerRevisionHashLabelKey], r.Status.CanaryStatus)
	}
	f.checkRuns(1)

	f.approve()
	f.waitRollout("the release to complete", completed)
	pods := f.waitPods("every pod on the new version", func(pods []corev1.Pod) bool {
		return len(ofImage(pods, imageV2)) == nodes && len(pods) == nodes && readyCount(pods) == nodes
	})
	f.checkBatches(pods)
	f.checkRuns(3)
	u = f.get()
	if p, found, _ := unstructured.NestedFieldNoCopy(u.Object, partition...); found {
		t.Errorf("partition %v left after the release", p)
	}
	if _, ok := u.GetAnnotations()[workload.InProgressingAnnotation]; ok {
		t.Errorf("%s left after the release", workload.InProgressingAnnotation)
	}
}
