//go:build e2e

package openkruise_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/devenv/openkruise"
)

const cloneSetV1 = `apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata: {name: web}
spec:
  replicas: 10
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "demo:1.10.2"}]}
`

// A CloneSet of 10: 10 ready pods labelled exactly as OpenKruise labels
// them, the revision recorded, the status complete, the defaults filled in.
func TestCloneSetPods(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openkruise.CloneSetKind, "web")
	f.create(cloneSetV1)
	u := f.wait("10 ready pods", settled(10, 10))

	// The defaulting webhook's work, as stored.
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	for path, want := range map[string]any{
		"updateStrategy.type": "ReCreate", "updateStrategy.partition": int64(0), "updateStrategy.maxUnavailable": "20%",
		"updateStrategy.maxSurge": int64(0), "revisionHistoryLimit": int64(10),
		"template.spec.containers.0.imagePullPolicy":          "Always", // OpenKruise's own default, not Kubernetes'
		"template.spec.containers.0.terminationMessagePolicy": "File",
		"template.spec.restartPolicy":                         "Always",
	} {
		if got := field(spec, path); got != want {
			t.Errorf("spec.%s = %v (%T), want %v", path, got, got, want)
		}
	}
	if _, ok := spec["scaleStrategy"]; !ok {
		t.Error("spec.scaleStrategy missing")
	}

	// The revision: named <name>-<hash of the stored template>.
	update := statusString(u, "updateRevision")
	tmpl := &corev1.PodTemplateSpec{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec["template"].(map[string]any), tmpl); err != nil {
		t.Fatal(err)
	}
	data, err := openkruise.ControllerRevisionData(tmpl, true)
	if err != nil {
		t.Fatal(err)
	}
	hash := openkruise.ControllerRevisionHash(data, 0)
	if update != "web-"+hash {
		t.Errorf("updateRevision %s, want web-%s", update, hash)
	}
	cr := &appsv1.ControllerRevision{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: update}, cr); err != nil {
		t.Fatalf("the ControllerRevision %s: %v", update, err)
	}
	if cr.Revision != 1 || cr.Labels["controller-revision-hash"] != hash || cr.Labels["app"] != "web" ||
		string(cr.Data.Raw) != string(data) || metav1.GetControllerOf(cr).UID != u.GetUID() {
		t.Errorf("ControllerRevision: revision %d, labels %v, owner %v", cr.Revision, cr.Labels, cr.OwnerReferences)
	}
	if v, ok := cr.Annotations["kruise.io/cloneset-volumeclaimtemplate-hash"]; !ok || v != "" {
		t.Errorf("ControllerRevision annotations %v", cr.Annotations)
	}

	// The status.
	status, _, _ := unstructured.NestedMap(u.Object, "status")
	wantStatus := map[string]any{
		"observedGeneration": u.GetGeneration(), "replicas": int64(10), "readyReplicas": int64(10),
		"availableReplicas": int64(10), "updatedReplicas": int64(10), "updatedReadyReplicas": int64(10),
		"updatedAvailableReplicas": int64(10), "expectedUpdatedReplicas": int64(10),
		"currentRevision": update, "updateRevision": update, "collisionCount": int64(0), "labelSelector": "app=web",
	}
	if d := cmp.Diff(wantStatus, status); d != "" {
		t.Errorf("status (-want +got):\n%s", d)
	}

	// The pods.
	pods := f.pods()
	if len(pods) != 10 {
		t.Fatalf("%d pods, want 10", len(pods))
	}
	name := regexp.MustCompile(`^web-([bcdfghjklmnpqrstvwxz2456789]{5})$`)
	for _, p := range pods {
		m := name.FindStringSubmatch(p.Name)
		if m == nil {
			t.Errorf("pod name %s is not web-<instance id>", p.Name)
			continue
		}
		want := map[string]string{
			"app": "web", "controller-revision-hash": update, "pod-template-hash": hash,
			"apps.kruise.io/cloneset-instance-id": m[1], "lifecycle.apps.kruise.io/state": "Normal",
		}
		if d := cmp.Diff(want, p.Labels); d != "" {
			t.Errorf("pod %s labels (-want +got):\n%s", p.Name, d)
		}
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != u.GetUID() || ref.Kind != "CloneSet" || ref.APIVersion != "apps.kruise.io/v1alpha1" {
			t.Errorf("pod %s controller %v", p.Name, ref)
		}
		var gates []string
		for _, g := range p.Spec.ReadinessGates {
			gates = append(gates, string(g.ConditionType))
		}
		if strings.Join(gates, ",") != "InPlaceUpdateReady,KruisePodReady" {
			t.Errorf("pod %s readiness gates %v", p.Name, gates)
		}
		if !podReady(&p) || p.Spec.Containers[0].Image != "demo:1.10.2" {
			t.Errorf("pod %s ready=%v image %s", p.Name, podReady(&p), p.Spec.Containers[0].Image)
		}
	}
}

// field reads a dotted path (numbers index lists) from a JSON map.
func field(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[k]
		case []any:
			var i int
			fmt.Sscanf(k, "%d", &i)
			if i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// The partition, from outside: a new template with partition 7 gives
// exactly 3 new pods, never more than maxUnavailable (20% → 2) down;
// raising the partition to 9 rolls nothing back (OpenKruise's
// CloneSetPartitionRollback gate is off by default); removing it lets the
// defaulting webhook set 0, and all 10 pods update, the current revision
// following. Re-applying the first template goes back to its revision.
func TestCloneSetPartition(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openkruise.CloneSetKind, "web")
	f.create(cloneSetV1)
	v1 := statusString(f.wait("10 ready pods", settled(10, 10)), "updateRevision")
	w := f.watchPods(10)

	f.patch(`{"spec":{"updateStrategy":{"partition":7},"template":{"spec":{"containers":[{"name":"web","image":"demo:1.10.3"}]}}}}`)
	u := f.wait("3 updated pods", settled(10, 3))
	v2 := statusString(u, "updateRevision")
	if v2 == v1 || statusString(u, "currentRevision") != v1 || statusInt(u, "expectedUpdatedReplicas") != 3 {
		t.Errorf("partition 7: update %s current %s expected %d; want update ≠ %s, current %s, expected 3",
			v2, statusString(u, "currentRevision"), statusInt(u, "expectedUpdatedReplicas"), v1, v1)
	}
	byRevision := countBy(f.pods(), "pod-template-hash")
	if want := map[string]int{openkruise.ShortHash(v1): 7, openkruise.ShortHash(v2): 3}; !cmp.Equal(want, byRevision) {
		t.Errorf("pods by pod-template-hash %v, want %v", byRevision, want)
	}

	// Raising the partition: the stand-in's pass that records the new
	// generation has already acted on it.
	f.patch(`{"spec":{"updateStrategy":{"partition":9}}}`)
	u = f.wait("partition 9 observed", func(u *unstructured.Unstructured) bool {
		return statusInt(u, "observedGeneration") == u.GetGeneration() && statusInt(u, "expectedUpdatedReplicas") == 1
	})
	pods := f.pods()
	for _, p := range pods {
		if _, marked := p.Labels["apps.kruise.io/specified-delete"]; marked {
			t.Errorf("pod %s marked for deletion after the partition was raised", p.Name)
		}
	}
	if got := countBy(pods, "pod-template-hash")[openkruise.ShortHash(v2)]; got != 3 || statusInt(u, "updatedReplicas") != 3 {
		t.Errorf("partition raised to 9: %d pods updated (status %d), want the 3 kept", got, statusInt(u, "updatedReplicas"))
	}

	// Removing the partition: the webhook defaults it to 0.
	f.patch(`{"spec":{"updateStrategy":{"partition":null}}}`)
	if p, found, _ := unstructured.NestedFieldNoCopy(f.get().Object, "spec", "updateStrategy", "partition"); !found || p != int64(0) {
		t.Errorf("partition after its removal: %v (found %v), want 0", p, found)
	}
	u = f.wait("all pods updated", settled(10, 10))
	if statusString(u, "currentRevision") != v2 {
		t.Errorf("currentRevision %s, want %s once every pod is updated", statusString(u, "currentRevision"), v2)
	}
	if got := countBy(f.pods(), "controller-revision-hash"); !cmp.Equal(map[string]int{v2: 10}, got) {
		t.Errorf("pods by controller-revision-hash %v, want all 10 on %s", got, v2)
	}
	if minReady, _, _, _ := w.snapshot(); minReady < 8 {
		t.Errorf("%d pods ready at one point, maxUnavailable 2 of 10 allows no fewer than 8", minReady)
	}

	// The first template again: its revision is reused, renumbered.
	f.patch(`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"demo:1.10.2"}]}}}}`)
	u = f.wait("back to the first revision", settled(10, 10))
	if statusString(u, "updateRevision") != v1 || statusString(u, "currentRevision") != v1 {
		t.Errorf("after re-applying the first template: update %s current %s, want %s", statusString(u, "updateRevision"), statusString(u, "currentRevision"), v1)
	}
	cr := &appsv1.ControllerRevision{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: v1}, cr); err != nil || cr.Revision != 3 {
		t.Errorf("revision %s: number %d (%v), want 3", v1, cr.Revision, err)
	}
}
