package workload

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// OpenKruise's workloads. Its Go modules are not available, so they are
// read and written as unstructured objects, touching only the fields below.
var (
	CloneSetKind            = schema.GroupVersionKind{Group: "apps.kruise.io", Version: "v1alpha1", Kind: "CloneSet"}
	AdvancedStatefulSetKind = schema.GroupVersionKind{Group: "apps.kruise.io", Version: "v1beta1", Kind: "StatefulSet"}
)

// KruiseKinds are the OpenKruise kinds Sluice releases.
var KruiseKinds = []schema.GroupVersionKind{CloneSetKind, AdvancedStatefulSetKind, AdvancedDaemonSetKind}

// +kubebuilder:rbac:groups=apps.kruise.io,resources=clonesets;statefulsets,verbs=get;list;watch;update;patch

// partitionShape says where a kind keeps its partition and how its pods
// carry their revision.
type partitionShape struct {
	path []string
	// frozen is the partition that keeps every pod where it is.
	frozen intstr.IntOrString
	// revisionLabel is the pod label holding the revision; podRevision
	// turns status.updateRevision into that label's value.
	revisionLabel string
	podRevision   func(updateRevision string) string
}

func shapeOf(gvk schema.GroupVersionKind) (partitionShape, bool) {
	switch gvk.GroupKind() {
	case CloneSetKind.GroupKind():
		// CloneSet pods carry pod-template-hash=<hash>, the hash part of
		// the revision name <cloneset>-<hash> (controller-revision-hash
		// holds the full name). Kruise Rollout trims both the stable and
		// the canary revision this way, so that Services select by them.
		return partitionShape{
			path: []string{"spec", "updateStrategy", "partition"}, frozen: intstr.FromString("100%"),
			revisionLabel: appsv1.DefaultDeploymentUniqueLabelKey,
			podRevision:   func(r string) string { return r[strings.LastIndex(r, "-")+1:] },
		}, true
	case AdvancedStatefulSetKind.GroupKind(), AdvancedDaemonSetKind.GroupKind():
		// An Advanced DaemonSet's partition counts nodes; the freeze
		// webhook writes it here (its adapter is AdvancedDaemonSet).
		return partitionShape{
			path: []string{"spec", "updateStrategy", "rollingUpdate", "partition"}, frozen: intstr.FromInt32(FrozenPartition),
			revisionLabel: appsv1.ControllerRevisionHashLabelKey,
			podRevision:   func(r string) string { return r },
		}, true
	}
	return partitionShape{}, false
}

// FreezeKruise partitions an OpenKruise workload so that no pod moves
// (the freeze webhook calls it); it reports whether it changed anything.
func FreezeKruise(u *unstructured.Unstructured) (bool, error) {
	shape, ok := shapeOf(u.GroupVersionKind())
	if !ok {
		return false, fmt.Errorf("%s is not an OpenKruise kind Sluice releases", u.GroupVersionKind())
	}
	return setPartitionField(u, shape.path, shape.frozen)
}

// KruisePartition reads an OpenKruise workload's partition as a number of
// pods kept on the current revision ("N%" of replicas rounded up; 0 when
// unset).
func KruisePartition(u *unstructured.Unstructured, replicas int32) (int32, error) {
	shape, ok := shapeOf(u.GroupVersionKind())
	if !ok {
		return 0, fmt.Errorf("%s is not an OpenKruise kind Sluice releases", u.GroupVersionKind())
	}
	return partitionOf32(u, shape.path, replicas)
}

// SetKruisePartition sets an OpenKruise workload's partition to p pods.
func SetKruisePartition(u *unstructured.Unstructured, p int32) error {
	shape, ok := shapeOf(u.GroupVersionKind())
	if !ok {
		return fmt.Errorf("%s is not an OpenKruise kind Sluice releases", u.GroupVersionKind())
	}
	_, err := setPartitionField(u, shape.path, intstr.FromInt32(p))
	return err
}

// Partitioned releases an OpenKruise CloneSet or Advanced StatefulSet with
// its update-strategy partition (the number of pods kept on the old
// revision): a batch of n sets partition = replicas - n.
type Partitioned struct {
	Client client.Client
	// Live reads pods without the cache (see StatefulSet.Live).
	Live        client.Reader
	Key         client.ObjectKey
	GVK         schema.GroupVersionKind
	RolloutName string
	// KeepPaused leaves the partition when the workload is given back (its
	// Rollout deleted under KeepWorkloadPausedOnRolloutDeletion).
	KeepPaused bool
}

func (a *Partitioned) get(ctx context.Context) (*unstructured.Unstructured, partitionShape, error) {
	shape, ok := shapeOf(a.GVK)
	if !ok {
		return nil, shape, fmt.Errorf("%s is not an OpenKruise kind Sluice releases", a.GVK)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(a.GVK)
	return u, shape, a.Client.Get(ctx, a.Key, u)
}

func nestedInt32(u *unstructured.Unstructured, fields ...string) int32 {
	v, _, _ := unstructured.NestedInt64(u.Object, fields...)
	return int32(v)
}

func nestedString(u *unstructured.Unstructured, fields ...string) string {
	v, _, _ := unstructured.NestedString(u.Object, fields...)
	return v
}

// Observe reads the workload's status.
func (a *Partitioned) Observe(ctx context.Context) (*Info, error) {
	u, shape, err := a.get(ctx)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	replicas := int32(1)
	if v, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); found {
		replicas = int32(v)
	}
	update, current := nestedString(u, "status", "updateRevision"), nestedString(u, "status", "currentRevision")
	updated := nestedInt32(u, "status", "updatedReplicas")
	info := &Info{
		Replicas:       replicas,
		Frozen:         u.GetAnnotations()[InProgressingAnnotation] != "",
		StableRevision: shape.podRevision(current),
		UpdateRevision: shape.podRevision(update),
		PodRevision:    shape.podRevision(update),
		Controlled:     u.GetAnnotations()[ControlInfoAnnotation] != "",
		Labelled:       u.GetLabels()[WorkloadTypeLabel] != "",
		RolloutID:      u.GetLabels()[RolloutIDLabel],
		Updated:        updated,
		UpdatedReady:   nestedInt32(u, "status", "updatedReadyReplicas"),
		Others:         max(0, nestedInt32(u, "status", "replicas")-updated),
		Settled:        nestedInt32(u, "status", "observedGeneration") >= int32(u.GetGeneration()),
		RevisionLabel:  shape.revisionLabel,
	}
	partition, err := partitionOf32(u, shape.path, replicas)
	if err != nil {
		return nil, err
	}
	info.Released = !info.Frozen && info.Settled && partition == 0 && update != "" &&
		info.Updated == replicas && info.UpdatedReady == replicas && current == update
	return info, nil
}

// Prepare marks the workload as controlled and frozen.
func (a *Partitioned) Prepare(ctx context.Context) error {
	return a.update(ctx, func(u *unstructured.Unstructured, shape partitionShape) (bool, error) {
		p, err := partitionOf32(u, shape.path, FrozenPartition)
		if err != nil {
			return false, err
		}
		changed := false
		if p == 0 { // the freeze webhook did not see the update
			if changed, err = setPartitionField(u, shape.path, shape.frozen); err != nil {
				return false, err
			}
		}
		if u.GetAnnotations()[ControlInfoAnnotation] == "" {
			setAnnotation(u, ControlInfoAnnotation, controlInfo(a.RolloutName))
			changed = true
		}
		return changed, nil
	})
}

// Release lowers the partition so that b.Updated pods get the new
// revision; it never raises it unless b.Shrink.
func (a *Partitioned) Release(ctx context.Context, b Batch) error {
	var revision, label string
	var partition, allowed int32
	err := a.update(ctx, func(u *unstructured.Unstructured, shape partitionShape) (bool, error) {
		revision, label = shape.podRevision(nestedString(u, "status", "updateRevision")), shape.revisionLabel
		if nestedInt32(u, "status", "observedGeneration") < int32(u.GetGeneration()) || (b.Revision != "" && b.Revision != revision) {
			return false, fmt.Errorf("%w: batch for %s, %s %s at %s", ErrRevisionChanged, b.Revision, u.GetKind(), u.GetName(), revision)
		}
		replicas := int32(1)
		if v, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); found {
			replicas = int32(v)
		}
		partition = replicas - min(b.Updated, replicas)
		if !b.Shrink {
			current, err := partitionOf32(u, shape.path, replicas)
			if err != nil {
				return false, err
			}
			if a.GVK.GroupKind() == AdvancedStatefulSetKind.GroupKind() {
				// Ordinals, as for a StatefulSet (ordinalPartition).
				pods, err := a.pods(ctx, u)
				if err != nil {
					return false, err
				}
				partition = ordinalPartition(replicas, b.Updated, updatedBelow(pods, u.GetName(), label, revision))
			}
			partition = min(partition, current)
		}
		allowed = replicas - partition
		return setPartitionField(u, shape.path, intstr.FromInt32(partition))
	})
	if err != nil || revision == "" {
		return err
	}
	if b.Shrink {
		if err := a.rollBack(ctx, label, revision, partition, allowed); err != nil {
			return err
		}
	}
	return labelPods(ctx, a.Client, a.Key.Namespace, map[string]string{label: revision}, b)
}

// rollBack deletes one new-version pod beyond a batch that shrank (see
// rollBackOne): for a CloneSet any of them while more than allowed run;
// for an Advanced StatefulSet one whose ordinal is below the partition.
func (a *Partitioned) rollBack(ctx context.Context, label, revision string, partition, allowed int32) error {
	u, _, err := a.get(ctx)
	if err != nil {
		return err
	}
	matchLabels, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
	sel := labels.SelectorFromSet(matchLabels)
	replicas := int32(1)
	if v, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); found {
		replicas = int32(v)
	}
	r := live(a.Live, a.Client)
	if a.GVK.GroupKind() == AdvancedStatefulSetKind.GroupKind() {
		return rollBackOne(ctx, a.Client, r, a.Key.Namespace, sel, u.GetUID(), replicas, func(p *corev1.Pod) bool {
			ord, ok := ordinal(u.GetName(), p.Name)
			return ok && ord < partition && p.Labels[label] == revision
		})
	}
	if ahead := nestedInt32(u, "status", "updatedReplicas"); ahead <= allowed {
		return nil
	}
	return rollBackOne(ctx, a.Client, r, a.Key.Namespace, sel, u.GetUID(), replicas, func(p *corev1.Pod) bool { return p.Labels[label] == revision })
}

// Finalise removes the partition (kept with KeepPaused) and Sluice's
// marks; the workload's own controller then rolls the remaining pods.
func (a *Partitioned) Finalise(ctx context.Context) error {
	return client.IgnoreNotFound(a.update(ctx, func(u *unstructured.Unstructured, shape partitionShape) (bool, error) {
		changed := false
		if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, shape.path...); found && !a.KeepPaused {
			unstructured.RemoveNestedField(u.Object, shape.path...)
			changed = true
		}
		ann := u.GetAnnotations()
		for _, k := range []string{InProgressingAnnotation, ControlInfoAnnotation} {
			if _, ok := ann[k]; ok {
				delete(ann, k)
				changed = true
			}
		}
		u.SetAnnotations(ann)
		return changed, nil
	}))
}

// pods are the workload's pods (terminating ones aside), read live.
func (a *Partitioned) pods(ctx context.Context, u *unstructured.Unstructured) ([]corev1.Pod, error) {
	matchLabels, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
	var list corev1.PodList
	if err := live(a.Live, a.Client).List(ctx, &list, client.InNamespace(u.GetNamespace()), client.MatchingLabels(matchLabels)); err != nil {
		return nil, err
	}
	return ownedPods(list.Items, u.GetUID()), nil
}

func (a *Partitioned) update(ctx context.Context, mutate func(*unstructured.Unstructured, partitionShape) (bool, error)) error {
	u, shape, err := a.get(ctx)
	if err != nil {
		return err
	}
	changed, err := mutate(u, shape)
	if err != nil || !changed {
		return err
	}
	return a.Client.Update(ctx, u)
}

// partitionOf32 reads a partition that may be a number or "N%" of replicas.
func partitionOf32(u *unstructured.Unstructured, path []string, replicas int32) (int32, error) {
	v, found, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
	if !found || v == nil {
		return 0, nil
	}
	var p intstr.IntOrString
	switch x := v.(type) {
	case int64:
		p = intstr.FromInt32(int32(x))
	case float64:
		p = intstr.FromInt32(int32(x))
	case string:
		p = intstr.FromString(x)
	default:
		return 0, fmt.Errorf("%s: partition %v is neither a number nor a percentage", strings.Join(path, "."), v)
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(&p, int(replicas), true)
	return int32(n), err
}

// setPartitionField writes p at path; it reports a change.
func setPartitionField(u *unstructured.Unstructured, path []string, p intstr.IntOrString) (bool, error) {
	var v any = int64(p.IntVal)
	if p.Type == intstr.String {
		v = p.StrVal
	}
	if cur, found, _ := unstructured.NestedFieldNoCopy(u.Object, path...); found && fmt.Sprint(cur) == fmt.Sprint(v) {
		return false, nil
	}
	return true, unstructured.SetNestedField(u.Object, v, path...)
}

func setAnnotation(u *unstructured.Unstructured, k, v string) {
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[k] = v
	u.SetAnnotations(ann)
}

// HandOver does nothing: the workload reports its stable revision itself
// (or, for a canary Deployment, the released pods are not its own).
func (a *Partitioned) HandOver(context.Context, string) error { return nil }
