//go:build e2e

package openkruise_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/devenv/openkruise"
)

const advancedStatefulSetV1 = `apiVersion: apps.kruise.io/v1beta1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 10
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "demo:1.10.2"}]}
`

// An Advanced StatefulSet of 10, created in order; partition 5 updates
// ordinals 9 down to 5, one at a time; raising the partition rolls nothing
// back; removing it (defaulted to 0) updates the rest.
func TestAdvancedStatefulSet(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openkruise.AdvancedStatefulSetKind, "web")
	w := f.watchPods(10)
	f.create(advancedStatefulSetV1)
	u := f.wait("10 ready pods", settled(10, 10))
	v1 := statusString(u, "updateRevision")

	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	for path, want := range map[string]any{
		"podManagementPolicy": "OrderedReady", "updateStrategy.type": "RollingUpdate",
		"updateStrategy.rollingUpdate.partition": int64(0), "updateStrategy.rollingUpdate.maxUnavailable": int64(1),
		"updateStrategy.rollingUpdate.podUpdatePolicy": "ReCreate", "revisionHistoryLimit": int64(10),
		"persistentVolumeClaimRetentionPolicy.whenScaled": "Retain",
	} {
		if got := field(spec, path); got != want {
			t.Errorf("spec.%s = %v (%T), want %v", path, got, got, want)
		}
	}
	_, added, _, readyBelow := w.snapshot()
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("web-%d", i))
	}
	if !slices.Equal(added, want) {
		t.Errorf("pods created in the order %v, want %v", added, want)
	}
	for name, ok := range readyBelow {
		if !ok {
			t.Errorf("%s was created before the pods below it were ready", name)
		}
	}
	for _, p := range f.pods() {
		ord := strconv.Itoa(ordinal(p.Name))
		want := map[string]string{"app": "web", "controller-revision-hash": v1, "statefulset.kubernetes.io/pod-name": p.Name,
			"apps.kubernetes.io/pod-index": ord, "lifecycle.apps.kruise.io/state": "Normal"}
		if d := cmp.Diff(want, p.Labels); d != "" {
			t.Errorf("pod %s labels (-want +got):\n%s", p.Name, d)
		}
		if p.Spec.Hostname != p.Name || p.Spec.Subdomain != "web" || metav1.GetControllerOf(&p).Kind != "StatefulSet" {
			t.Errorf("pod %s: hostname %s subdomain %s owner %v", p.Name, p.Spec.Hostname, p.Spec.Subdomain, p.OwnerReferences)
		}
	}

	f.patch(`{"spec":{"updateStrategy":{"rollingUpdate":{"partition":5}},"template":{"spec":{"containers":[{"name":"web","image":"demo:1.10.3"}]}}}}`)
	u = f.wait("ordinals 5-9 updated", settled(10, 5))
	v2 := statusString(u, "updateRevision")
	if statusString(u, "currentRevision") != v1 || statusInt(u, "currentReplicas") != 5 || v2 == v1 {
		t.Errorf("partition 5: current %s (%d pods), update %s", statusString(u, "currentRevision"), statusInt(u, "currentReplicas"), v2)
	}
	checkOrdinals := func(from int) {
		t.Helper()
		for _, p := range f.pods() {
			want := v1
			if ordinal(p.Name) >= from {
				want = v2
			}
			if got := p.Labels["controller-revision-hash"]; got != want {
				t.Errorf("%s at %s, want %s", p.Name, got, want)
			}
		}
	}
	checkOrdinals(5)
	if _, _, deleted, _ := w.snapshot(); !slices.Equal(deleted, []string{"web-9", "web-8", "web-7", "web-6", "web-5"}) {
		t.Errorf("pods replaced in the order %v, want 9 down to 5", deleted)
	}

	f.patch(`{"spec":{"updateStrategy":{"rollingUpdate":{"partition":8}}}}`)
	u = f.wait("partition 8 observed", func(u *unstructured.Unstructured) bool {
		return statusInt(u, "observedGeneration") == u.GetGeneration()
	})
	if statusInt(u, "updatedReplicas") != 5 {
		t.Errorf("partition raised to 8: %d pods updated, want the 5 kept", statusInt(u, "updatedReplicas"))
	}
	checkOrdinals(5)

	f.patch(`{"spec":{"updateStrategy":{"rollingUpdate":{"partition":null}}}}`)
	if p := field(f.get().Object, "spec.updateStrategy.rollingUpdate.partition"); p != int64(0) {
		t.Errorf("partition after its removal: %v, want 0", p)
	}
	u = f.wait("all updated", settled(10, 10))
	if statusString(u, "currentRevision") != v2 || statusInt(u, "currentReplicas") != 10 {
		t.Errorf("current %s (%d pods), want %s (10)", statusString(u, "currentRevision"), statusInt(u, "currentReplicas"), v2)
	}
	checkOrdinals(0)
	if minReady, _, _, _ := w.snapshot(); minReady < 9 {
		t.Errorf("%d pods ready at one point, maxUnavailable 1 of 10 allows no fewer than 9", minReady)
	}
}

// The revision hash is Kubernetes' own: for a native StatefulSet, the
// kube-controller-manager names its revision exactly as the stand-in
// computes it (with Kubernetes 1.37's encoding of the template, which
// leaves out the null creationTimestamp OpenKruise v1.9's still writes).
func TestRevisionHashIsKubernetes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, appsv1.SchemeGroupVersion.WithKind("StatefulSet"), "native")
	f.create(`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: native}
spec:
  replicas: 1
  serviceName: native
  selector: {matchLabels: {app: native}}
  template:
    metadata: {labels: {app: native}, annotations: {note: "a template with more in it"}}
    spec:
      containers:
      - name: web
        image: "demo:1.10.2"
        ports: [{containerPort: 8080}]
        env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
`)
	s := &appsv1.StatefulSet{}
	u := f.wait("a revision", func(u *unstructured.Unstructured) bool { return statusString(u, "updateRevision") != "" })
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, s); err != nil {
		t.Fatal(err)
	}
	data, err := openkruise.ControllerRevisionData(&s.Spec.Template, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := openkruise.ControllerRevisionName("native", openkruise.ControllerRevisionHash(data, 0)); s.Status.UpdateRevision != want {
		t.Errorf("the native StatefulSet's revision is %s, the stand-in computes %s", s.Status.UpdateRevision, want)
	}
	cr := &appsv1.ControllerRevision{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: s.Status.UpdateRevision}, cr); err != nil {
		t.Fatal(err)
	}
	if string(cr.Data.Raw) != string(data) {
		t.Errorf("revision data:\n got %s\nwant %s", cr.Data.Raw, data)
	}
}
