//go:build e2e

package openkruise_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/devenv/openkruise"
)

const daemonSetV1 = `apiVersion: apps.kruise.io/v1alpha1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: "demo:1.10.2"}]}
`

// daemonSettled: the stand-in has seen the latest spec, every node runs a
// ready pod, updated ones as given.
func daemonSettled(nodes, updated int64) func(u *unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool {
		return statusInt(u, "observedGeneration") == u.GetGeneration() && statusInt(u, "desiredNumberScheduled") == nodes &&
			statusInt(u, "currentNumberScheduled") == nodes && statusInt(u, "numberReady") == nodes &&
			statusInt(u, "numberAvailable") == nodes && statusInt(u, "updatedNumberScheduled") == updated
	}
}

// An Advanced DaemonSet as OpenKruise v1.9 runs it: its webhook's defaults
// (no partition, no template defaults), one pod per node pinned by node
// affinity and labelled controller-revision-hash = status.daemonSetHash,
// the ControllerRevision <name>-<hash>, the status counts; the partition
// keeps that many nodes on their revision, updating the others in reverse
// node-name order.
func TestAdvancedDaemonSet(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openkruise.AdvancedDaemonSetKind, "agent")
	f.create(daemonSetV1)
	u := f.wait("a ready pod per node", daemonSettled(3, 3))

	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	for path, want := range map[string]any{
		"burstReplicas": int64(250), "revisionHistoryLimit": int64(10), "updateStrategy.type": "RollingUpdate",
		"updateStrategy.rollingUpdate.rollingUpdateType": "Standard", "updateStrategy.rollingUpdate.maxUnavailable": int64(1),
		"updateStrategy.rollingUpdate.maxSurge": int64(0),
	} {
		if got := field(spec, path); got != want {
			t.Errorf("spec.%s = %v (%T), want %v", path, got, got, want)
		}
	}
	if got := field(spec, "updateStrategy.rollingUpdate.partition"); got != nil {
		t.Errorf("partition defaulted to %v; OpenKruise leaves it unset", got)
	}
	if got := field(spec, "template.spec.containers.0.imagePullPolicy"); got != nil {
		t.Errorf("template defaulted (imagePullPolicy %v); OpenKruise's DaemonSet webhook does not", got)
	}

	hash := statusString(u, "daemonSetHash")
	rev := &appsv1.ControllerRevision{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "agent-" + hash}, rev); err != nil {
		t.Fatalf("revision agent-%s: %v", hash, err)
	}
	if rev.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] != hash || rev.Labels["app"] != "agent" || metav1.GetControllerOf(rev) == nil {
		t.Errorf("revision labels %v owner %v", rev.Labels, metav1.GetControllerOf(rev))
	}
	nodes := map[string]bool{}
	for _, p := range f.pods() {
		nodes[p.Spec.NodeName] = true
		if p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] != hash || p.Labels["app"] != "agent" {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
		terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if len(terms) != 1 || len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Values[0] != p.Spec.NodeName {
			t.Errorf("pod %s is not pinned to its node %s: %+v", p.Name, p.Spec.NodeName, terms)
		}
		tolerated := false
		for _, tol := range p.Spec.Tolerations {
			tolerated = tolerated || (tol.Key == corev1.TaintNodeUnschedulable && tol.Effect == corev1.TaintEffectNoSchedule)
		}
		if !tolerated || len(p.Spec.ReadinessGates) != 1 || p.Spec.ReadinessGates[0].ConditionType != openkruise.ConditionKruisePodReady {
			t.Errorf("pod %s tolerations %v readiness gates %v", p.Name, p.Spec.Tolerations, p.Spec.ReadinessGates)
		}
	}
	if len(nodes) != 3 {
		t.Errorf("pods on nodes %v, want one on each of 3", nodes)
	}

	// Partition 2 of 3 nodes: one node updates, the last by name.
	f.patch(`{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}},"template":{"spec":{"containers":[{"name":"agent","image":"demo:1.10.3"}]}}}}`)
	u = f.wait("one node updated", daemonSettled(3, 1))
	v2 := statusString(u, "daemonSetHash")
	for _, p := range f.pods() {
		if updated := p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == v2; updated != (p.Spec.NodeName == "kwok-node-2") {
			t.Errorf("pod %s on %s updated=%v; the partition updates kwok-node-2 only", p.Name, p.Spec.NodeName, updated)
		}
	}
	// The partition removed: every node updates.
	f.patch(`{"spec":{"updateStrategy":{"rollingUpdate":{"partition":null}}}}`)
	f.wait("every node updated", daemonSettled(3, 3))

	// Back to the first template: its revision is reused, renumbered newest.
	f.patch(`{"spec":{"template":{"spec":{"containers":[{"name":"agent","image":"demo:1.10.2"}]}}}}`)
	u = f.wait("back to the first template", daemonSettled(3, 3))
	if got := statusString(u, "daemonSetHash"); got != hash {
		t.Errorf("daemonSetHash %s after going back, want %s", got, hash)
	}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "agent-" + hash}, rev); err != nil || rev.Revision != 3 {
		t.Errorf("revision agent-%s: number %d (%v), want 3", hash, rev.Revision, err)
	}
}
