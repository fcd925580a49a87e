package app

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// cacheOptions keeps in the manager's cache what Sluice reads, and no more,
// so that its memory grows with the releases it manages, not with the
// cluster:
//   - workloads only when a Rollout references them (the reconciler puts
//     the workload-type label on them; canary Deployments carry it too);
//   - pods without their spec (Sluice reads their labels and readiness),
//     ReplicaSets without their pod template (the new one is found by its
//     pod-template-hash), no object's managedFields;
//   - Services, Ingresses and routes are not cached at all: the traffic
//     calls read them live (a few reads per step).
//
// kruiseKinds are the OpenKruise kinds the API server serves; shard, when
// not nil, selects this manager's Rollouts (--watch-label-selector): the
// cache holds no other, so the other shards' Rollouts are never reconciled
// here, and a Rollout relabelled into another shard leaves this cache (a
// delete event) and enters that one's.
func cacheOptions(kruiseKinds []schema.GroupVersionKind, shard labels.Selector) cache.Options {
	managed := labels.NewSelector()
	req, err := labels.NewRequirement(workload.WorkloadTypeLabel, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant key always makes a requirement
	}
	managed = managed.Add(*req)
	byObject := map[client.Object]cache.ByObject{
		&appsv1.Deployment{}:  {Label: managed},
		&appsv1.StatefulSet{}: {Label: managed},
		&appsv1.DaemonSet{}:   {Label: managed},
		&corev1.Pod{}:         {Transform: stripPod},
		&appsv1.ReplicaSet{}:  {Transform: stripReplicaSet},
		// A native DaemonSet's revisions, by their number and hash label.
		&appsv1.ControllerRevision{}: {Transform: stripControllerRevision},
	}
	if shard != nil {
		byObject[&v1beta1.Rollout{}] = cache.ByObject{Label: shard}
	}
	for _, gvk := range kruiseKinds {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		byObject[u] = cache.ByObject{Label: managed}
	}
	return cache.Options{DefaultTransform: cache.TransformStripManagedFields(), ByObject: byObject}
}

// stripPod keeps what Sluice reads of a pod: its metadata (labels, owner,
// deletion) and status (phase, readiness, why a container waits).
func stripPod(o any) (any, error) {
	if p, ok := o.(*corev1.Pod); ok {
		p.ManagedFields = nil
		p.Spec = corev1.PodSpec{}
	}
	return o, nil
}

// stripReplicaSet drops a ReplicaSet's pod template but its labels: Sluice
// reads its size, status, owner and pod-template-hash.
func stripReplicaSet(o any) (any, error) {
	if rs, ok := o.(*appsv1.ReplicaSet); ok {
		rs.ManagedFields = nil
		rs.Spec.Template.Spec = corev1.PodSpec{}
	}
	return o, nil
}

// stripControllerRevision drops a revision's data (a whole pod template):
// Sluice reads a DaemonSet's revisions by number, owner and hash label.
func stripControllerRevision(o any) (any, error) {
	if r, ok := o.(*appsv1.ControllerRevision); ok {
		r.ManagedFields = nil
		r.Data = runtime.RawExtension{}
	}
	return o, nil
}
