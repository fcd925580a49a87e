package workload

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FrozenPartition is the partition that keeps every pod of a StatefulSet
// on its current revision (Kruise uses the same value).
const FrozenPartition = math.MaxInt16

// StatefulSet releases an apps/v1 StatefulSet with its RollingUpdate
// partition: pods with an ordinal at or above the partition get the new
// revision, so a batch of n sets partition = replicas - n.
type StatefulSet struct {
	Client client.Client
	// Live reads pods without the cache, for the decisions that must not
	// act on a stale view (rollBackOne); nil reads through Client.
	Live        client.Reader
	Key         client.ObjectKey
	RolloutName string
	// KeepPaused leaves the partition when the StatefulSet is given back
	// (its Rollout deleted under KeepWorkloadPausedOnRolloutDeletion).
	KeepPaused bool
}

// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;update;patch

// Observe reads the StatefulSet and counts its ready updated pods.
func (a *StatefulSet) Observe(ctx context.Context) (*Info, error) {
	s := &appsv1.StatefulSet{}
	if err := a.Client.Get(ctx, a.Key, s); apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	info := &Info{
		Replicas:       replicasOf(s.Spec.Replicas),
		Frozen:         s.Annotations[InProgressingAnnotation] != "",
		StableRevision: s.Status.CurrentRevision,
		UpdateRevision: s.Status.UpdateRevision,
		PodRevision:    s.Status.UpdateRevision,
		RolloutID:      s.Labels[RolloutIDLabel],
		Settled:        s.Status.ObservedGeneration >= s.Generation,
		RevisionLabel:  appsv1.ControllerRevisionHashLabelKey,
		Controlled:     s.Annotations[ControlInfoAnnotation] != "",
		Labelled:       s.Labels[WorkloadTypeLabel] != "",
	}
	pods, err := a.pods(ctx, s)
	if err != nil {
		return nil, err
	}
	for i := range pods {
		p := &pods[i]
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] == s.Status.UpdateRevision {
			info.Updated++
			if podReady(p) {
				info.UpdatedReady++
			} else {
				info.Unready = appendUnready(info.Unready, p)
			}
		} else {
			info.Others++
		}
	}
	info.Released = !info.Frozen && info.Settled && partitionOf(s) == 0 &&
		s.Status.UpdatedReplicas == info.Replicas && s.Status.ReadyReplicas == info.Replicas &&
		s.Status.CurrentRevision == s.Status.UpdateRevision
	return info, nil
}

func (a *StatefulSet) pods(ctx context.Context, s *appsv1.StatefulSet) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
	if err != nil {
		return nil, err
	}
	var list corev1.PodList
	if err := a.Client.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	return ownedPods(list.Items, s.UID), nil
}

func (a *StatefulSet) livePods(ctx context.Context, s *appsv1.StatefulSet) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
	if err != nil {
		return nil, err
	}
	var list corev1.PodList
	if err := live(a.Live, a.Client).List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	return ownedPods(list.Items, s.UID), nil
}

// ownedPods are the pods controlled by the owner, terminating ones aside.
func ownedPods(pods []corev1.Pod, owner types.UID) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if o := metav1.GetControllerOf(&p); o != nil && o.UID == owner && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// Prepare marks the StatefulSet as controlled and makes sure no pod moves
// before the first batch (the freeze webhook normally did this already).
func (a *StatefulSet) Prepare(ctx context.Context) error {
	return a.update(ctx, func(s *appsv1.StatefulSet) (bool, error) {
		changed := setPartition(s, max(partitionOf(s), FrozenPartition))
		if s.Annotations[ControlInfoAnnotation] == "" {
			metav1.SetMetaDataAnnotation(&s.ObjectMeta, ControlInfoAnnotation, controlInfo(a.RolloutName))
			changed = true
		}
		return changed, nil
	})
}

// Release lowers the partition so that b.Updated pods get the new
// revision (the partition is never raised unless b.Shrink). A raised
// partition leaves the pods below it on the new revision (the StatefulSet
// controller does not roll them back), so they are deleted, one at a
// time and only while every other pod is ready, to be recreated at the
// current revision.
func (a *StatefulSet) Release(ctx context.Context, b Batch) error {
	var rev string
	var partition int32
	err := a.update(ctx, func(s *appsv1.StatefulSet) (bool, error) {
		if s.Status.ObservedGeneration < s.Generation || (b.Revision != "" && b.Revision != s.Status.UpdateRevision) {
			return false, fmt.Errorf("%w: batch for %s, StatefulSet %s at %s", ErrRevisionChanged, b.Revision, s.Name, s.Status.UpdateRevision)
		}
		rev = s.Status.UpdateRevision
		replicas := replicasOf(s.Spec.Replicas)
		partition = replicas - min(b.Updated, replicas)
		if !b.Shrink {
			// Read live: a stale view that missed a pod on the update
			// revision below the partition would release one more.
			pods, err := a.livePods(ctx, s)
			if err != nil {
				return false, err
			}
			partition = min(ordinalPartition(replicas, b.Updated, updatedBelow(pods, s.Name, appsv1.ControllerRevisionHashLabelKey, rev)), partitionOf(s))
		}
		return setPartition(s, partition), nil
	})
	if err != nil || rev == "" {
		return err
	}
	if b.Shrink {
		if err := a.rollBackBelow(ctx, rev, partition); err != nil {
			return err
		}
	}
	return labelPods(ctx, a.Client, a.Key.Namespace, map[string]string{appsv1.ControllerRevisionHashLabelKey: rev}, b)
}

// ordinalPartition is the highest partition at which want pods run the
// update revision, for a workload that updates the ordinals at or above
// its partition and leaves the others as they are: below(p) pods under p
// already run it (the pods of a rollback in batches, still on the version
// re-applied), replicas - p are updated. Worked example: 4 pods, ordinals
// 0 and 1 already on it, want 3: partition 3 (ordinal 3 updated, 2 kept);
// partition 1 would update all 4.
func ordinalPartition(replicas, want int32, below func(p int32) int32) int32 {
	for p := replicas; p > 0; p-- {
		if below(p)+replicas-p >= want {
			return p
		}
	}
	return 0
}

// updatedBelow counts the pods of revision rev (by label) with an ordinal
// below p.
func updatedBelow(pods []corev1.Pod, set, label, rev string) func(p int32) int32 {
	return func(p int32) int32 {
		n := int32(0)
		for i := range pods {
			if ord, ok := ordinal(set, pods[i].Name); ok && ord < p && pods[i].Labels[label] == rev {
				n++
			}
		}
		return n
	}
}

// rollBackBelow deletes a pod of revision rev whose ordinal is below the
// partition (see rollBackOne).
func (a *StatefulSet) rollBackBelow(ctx context.Context, rev string, partition int32) error {
	s := &appsv1.StatefulSet{}
	if err := a.Client.Get(ctx, a.Key, s); err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
	if err != nil {
		return err
	}
	return rollBackOne(ctx, a.Client, live(a.Live, a.Client), s.Namespace, sel, s.UID, replicasOf(s.Spec.Replicas), func(p *corev1.Pod) bool {
		ord, ok := ordinal(s.Name, p.Name)
		return ok && ord < partition && p.Labels[appsv1.ControllerRevisionHashLabelKey] == rev
	})
}

// rollBackOne deletes one pod that runs ahead of a batch that shrank, once
// every pod of the workload is there and ready and none is terminating
// (one at a time), read live: a stale cache that still showed a pod
// deleted a moment ago would take a second one. Raising a partition does
// not take a pod back to the current revision (StatefulSets, Advanced
// StatefulSets, and CloneSets without OpenKruise's CloneSetPartitionRollback
// gate), but the workload's controller recreates a deleted one at the
// current revision, as the partition asks.
func rollBackOne(ctx context.Context, w client.Writer, r client.Reader, namespace string, sel labels.Selector, owner types.UID, replicas int32, ahead func(*corev1.Pod) bool) error {
	var list corev1.PodList
	if err := r.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return err
	}
	var victim *corev1.Pod
	var n int32
	for i := range list.Items {
		p := &list.Items[i]
		if o := metav1.GetControllerOf(p); o == nil || o.UID != owner {
			continue
		}
		if p.DeletionTimestamp != nil || !podReady(p) {
			return nil
		}
		n++
		if ahead(p) {
			victim = p
		}
	}
	if victim == nil || n < replicas {
		return nil
	}
	return client.IgnoreNotFound(w.Delete(ctx, victim, client.Preconditions{UID: &victim.UID, ResourceVersion: &victim.ResourceVersion}))
}

func live(r client.Reader, c client.Client) client.Reader {
	if r != nil {
		return r
	}
	return c
}

// ordinal reads the ordinal of a StatefulSet's pod from its name.
func ordinal(set, pod string) (int32, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(pod, set+"-"))
	if err != nil || !strings.HasPrefix(pod, set+"-") {
		return 0, false
	}
	return int32(n), true
}

// Finalise removes the partition (kept with KeepPaused) and Sluice's
// marks; the StatefulSet controller then rolls the remaining pods itself.
func (a *StatefulSet) Finalise(ctx context.Context) error {
	return client.IgnoreNotFound(a.update(ctx, func(s *appsv1.StatefulSet) (bool, error) {
		changed := !a.KeepPaused && setPartition(s, 0)
		for _, k := range []string{InProgressingAnnotation, ControlInfoAnnotation} {
			if _, ok := s.Annotations[k]; ok {
				delete(s.Annotations, k)
				changed = true
			}
		}
		return changed, nil
	}))
}

// update applies mutate to the StatefulSet as read and writes it if it
// changed; the write fails with a conflict if the read was stale.
func (a *StatefulSet) update(ctx context.Context, mutate func(*appsv1.StatefulSet) (bool, error)) error {
	s := &appsv1.StatefulSet{}
	if err := a.Client.Get(ctx, a.Key, s); err != nil {
		return err
	}
	if changed, err := mutate(s); err != nil || !changed {
		return err
	}
	return a.Client.Update(ctx, s)
}

func partitionOf(s *appsv1.StatefulSet) int32 {
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		return *ru.Partition
	}
	return 0
}

// setPartition sets the RollingUpdate partition; it reports a change.
// A StatefulSet with the OnDelete strategy is left alone.
func setPartition(s *appsv1.StatefulSet, p int32) bool {
	if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType || partitionOf(s) == p {
		return false
	}
	if s.Spec.UpdateStrategy.RollingUpdate == nil {
		s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
	}
	s.Spec.UpdateStrategy.RollingUpdate.Partition = &p
	return true
}

// maxUnreadyNamed bounds the pods a message names.
const maxUnreadyNamed = 5

// appendUnready adds "name (reason)" for a pod that is not ready: the
// waiting reason of its first unready container (CrashLoopBackOff,
// ImagePullBackOff...), else its phase.
func appendUnready(out []string, p *corev1.Pod) []string {
	if len(out) >= maxUnreadyNamed {
		return out
	}
	reason := string(p.Status.Phase)
	for _, c := range p.Status.ContainerStatuses {
		if !c.Ready && c.State.Waiting != nil && c.State.Waiting.Reason != "" {
			reason = c.State.Waiting.Reason
			break
		}
	}
	return append(out, p.Name+" ("+reason+")")
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// HandOver does nothing: the workload reports its stable revision itself
// (or, for a canary Deployment, the released pods are not its own).
func (a *StatefulSet) HandOver(context.Context, string) error { return nil }
