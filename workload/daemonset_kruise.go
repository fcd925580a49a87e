package workload

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AdvancedDaemonSetKind is OpenKruise's Advanced DaemonSet.
var AdvancedDaemonSetKind = schema.GroupVersionKind{Group: "apps.kruise.io", Version: "v1alpha1", Kind: "DaemonSet"}

// advancedDaemonSetPartition is where an Advanced DaemonSet keeps its
// partition: the number of nodes (counted over
// status.desiredNumberScheduled) whose pods stay on their revision.
var advancedDaemonSetPartition = []string{"spec", "updateStrategy", "rollingUpdate", "partition"}

// +kubebuilder:rbac:groups=apps.kruise.io,resources=daemonsets,verbs=get;list;watch;update;patch

// AdvancedDaemonSet releases an OpenKruise Advanced DaemonSet with its
// rolling-update partition, as Kruise Rollout does: a batch of n sets
// partition = desiredNumberScheduled - n. It has no replicas and no
// updatedReadyReplicas: its size is status.desiredNumberScheduled and the
// ready new pods are counted from the pods, whose controller-revision-hash
// is status.daemonSetHash.
type AdvancedDaemonSet struct {
	Client      client.Client
	Key         client.ObjectKey
	RolloutName string
	// KeepPaused leaves the partition when the workload is given back (its
	// Rollout deleted under KeepWorkloadPausedOnRolloutDeletion).
	KeepPaused bool
}

func (a *AdvancedDaemonSet) get(ctx context.Context) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(AdvancedDaemonSetKind)
	return u, a.Client.Get(ctx, a.Key, u)
}

// AdvancedDaemonSetSize is an Advanced DaemonSet's number of pods wanted:
// status.desiredNumberScheduled.
func AdvancedDaemonSetSize(u *unstructured.Unstructured) int32 {
	return nestedInt32(u, "status", "desiredNumberScheduled")
}

// Observe reads the status and counts the pods by revision.
func (a *AdvancedDaemonSet) Observe(ctx context.Context) (*Info, error) {
	u, err := a.get(ctx)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	update := nestedString(u, "status", "daemonSetHash")
	replicas := AdvancedDaemonSetSize(u)
	info := &Info{
		Replicas:       replicas,
		Frozen:         u.GetAnnotations()[InProgressingAnnotation] != "",
		UpdateRevision: update,
		PodRevision:    update,
		RolloutID:      u.GetLabels()[RolloutIDLabel],
		Settled:        nestedInt32(u, "status", "observedGeneration") >= int32(u.GetGeneration()) && update != "",
		RevisionLabel:  appsv1.ControllerRevisionHashLabelKey,
		Controlled:     u.GetAnnotations()[ControlInfoAnnotation] != "",
		Labelled:       u.GetLabels()[WorkloadTypeLabel] != "",
		KeepsNewPods:   true,
	}
	pods, err := a.pods(ctx, u)
	if err != nil {
		return nil, err
	}
	countPods(info, pods, update)
	// No currentRevision in its status: the old pods tell it.
	info.StableRevision = oldRevisionOf(pods, update, update)
	partition, err := partitionOf32(u, advancedDaemonSetPartition, replicas)
	if err != nil {
		return nil, err
	}
	info.Released = !info.Frozen && info.Settled && partition == 0 &&
		nestedInt32(u, "status", "updatedNumberScheduled") == replicas && nestedInt32(u, "status", "numberAvailable") == replicas &&
		info.UpdatedReady == replicas && info.Others == 0
	return info, nil
}

func (a *AdvancedDaemonSet) pods(ctx context.Context, u *unstructured.Unstructured) ([]corev1.Pod, error) {
	raw, _, _ := unstructured.NestedMap(u.Object, "spec", "selector")
	var ls metav1.LabelSelector
	if err := fromMap(raw, &ls); err != nil {
		return nil, fmt.Errorf("%s %s: spec.selector: %w", u.GetKind(), u.GetName(), err)
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		return nil, fmt.Errorf("%s %s: spec.selector: %w", u.GetKind(), u.GetName(), err)
	}
	var list corev1.PodList
	if err := a.Client.List(ctx, &list, client.InNamespace(u.GetNamespace()), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	return ownedPods(list.Items, u.GetUID()), nil
}

// Prepare freezes the partition (when the freeze webhook did not) and
// marks the workload as controlled.
func (a *AdvancedDaemonSet) Prepare(ctx context.Context) error {
	return a.update(ctx, func(u *unstructured.Unstructured) (bool, error) {
		changed := false
		if p, err := partitionOf32(u, advancedDaemonSetPartition, AdvancedDaemonSetSize(u)); err != nil {
			return false, err
		} else if p == 0 {
			if changed, err = setPartitionField(u, advancedDaemonSetPartition, intstr.FromInt32(FrozenPartition)); err != nil {
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

// Release lowers the partition so that b.Updated nodes run the update
// revision (never raising it unless b.Shrink). As for a native DaemonSet,
// a raised partition takes no pod back: the DaemonSet controller recreates
// a deleted pod from the current template.
func (a *AdvancedDaemonSet) Release(ctx context.Context, b Batch) error {
	var revision string
	err := a.update(ctx, func(u *unstructured.Unstructured) (bool, error) {
		revision = nestedString(u, "status", "daemonSetHash")
		if nestedInt32(u, "status", "observedGeneration") < int32(u.GetGeneration()) || revision == "" || (b.Revision != "" && b.Revision != revision) {
			return false, fmt.Errorf("%w: batch for %s, %s %s at %s", ErrRevisionChanged, b.Revision, u.GetKind(), u.GetName(), revision)
		}
		replicas := AdvancedDaemonSetSize(u)
		partition := replicas - min(b.Updated, replicas)
		if !b.Shrink {
			current, err := partitionOf32(u, advancedDaemonSetPartition, replicas)
			if err != nil {
				return false, err
			}
			partition = min(partition, current)
		}
		return setPartitionField(u, advancedDaemonSetPartition, intstr.FromInt32(partition))
	})
	if err != nil || revision == "" {
		return err
	}
	return labelPods(ctx, a.Client, a.Key.Namespace, map[string]string{appsv1.ControllerRevisionHashLabelKey: revision}, b)
}

// Finalise removes the partition (kept with KeepPaused) and Sluice's
// marks.
func (a *AdvancedDaemonSet) Finalise(ctx context.Context) error {
	return client.IgnoreNotFound(a.update(ctx, func(u *unstructured.Unstructured) (bool, error) {
		changed := false
		if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, advancedDaemonSetPartition...); found && !a.KeepPaused {
			unstructured.RemoveNestedField(u.Object, advancedDaemonSetPartition...)
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

func (a *AdvancedDaemonSet) update(ctx context.Context, mutate func(*unstructured.Unstructured) (bool, error)) error {
	u, err := a.get(ctx)
	if err != nil {
		return err
	}
	changed, err := mutate(u)
	if err != nil || !changed {
		return err
	}
	return a.Client.Update(ctx, u)
}

// HandOver does nothing: the stable revision is read from the pods.
func (a *AdvancedDaemonSet) HandOver(context.Context, string) error { return nil }

func fromMap(m map[string]any, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(m, into)
}
