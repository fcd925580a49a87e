package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Annotations Kruise Rollout keeps on a native DaemonSet in a release
// (openkruise/rollouts pkg/util/constant.go); Sluice writes the same
// values so that tools reading them see the same release.
const (
	// DaemonSetOriginalStrategyAnnotation keeps the DaemonSet's own
	// updateStrategy.type ("RollingUpdate" or "OnDelete") while the release
	// holds it on OnDelete; it is restored at the end.
	DaemonSetOriginalStrategyAnnotation = "rollouts.kruise.io/daemonset-original-update-strategy"
	// DaemonSetRevisionAnnotation: {"canary-revision":"<hash>","stable-revision":"<hash>"}.
	DaemonSetRevisionAnnotation = "rollouts.kruise.io/daemonset-revision"
	// DaemonSetAdvancedControlAnnotation: {"partition":"<pods kept old>","batch-revision":"<hash>"}.
	DaemonSetAdvancedControlAnnotation = "rollouts.kruise.io/daemonset-advanced-control"
	// PodDeletionCostAnnotation ranks the old pods a batch replaces: the
	// lowest cost goes first, as for a ReplicaSet scaling down.
	PodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"
)

// DaemonSet releases an apps/v1 DaemonSet the way Kruise Rollout does: the
// release holds it on the OnDelete strategy (the DaemonSet controller then
// replaces a pod only when it is deleted, with one of the current
// template), and a batch of n deletes old pods until n run the new
// template, within the DaemonSet's maxUnavailable. A DaemonSet has no
// replicas: its size is status.desiredNumberScheduled, one pod per node.
type DaemonSet struct {
	Client client.Client
	// Live reads pods without the cache before deleting any: a stale view
	// that still showed a pod deleted a moment ago would take a second one.
	Live        client.Reader
	Key         client.ObjectKey
	RolloutName string
	// KeepPaused leaves the DaemonSet on OnDelete when it is given back
	// (its Rollout deleted under KeepWorkloadPausedOnRolloutDeletion).
	KeepPaused bool
}

// +kubebuilder:rbac:groups=apps,resources=daemonsets,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=delete

// daemonState is a DaemonSet with its revisions and pods, read together.
type daemonState struct {
	ds *appsv1.DaemonSet
	// update is the hash of the current template's revision, stable the
	// one the old pods run (the previous revision when none does).
	update, stable string
	pods           []corev1.Pod
}

func (a *DaemonSet) load(ctx context.Context, r client.Reader) (*daemonState, error) {
	ds := &appsv1.DaemonSet{}
	if err := a.Client.Get(ctx, a.Key, ds); err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("DaemonSet %s: spec.selector: %w", ds.Name, err)
	}
	var revs appsv1.ControllerRevisionList
	if err := a.Client.List(ctx, &revs, client.InNamespace(ds.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	update, previous := newestRevisions(revs.Items, ds.UID)
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(ds.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	s := &daemonState{ds: ds, update: update, pods: ownedPods(pods.Items, ds.UID)}
	s.stable = oldRevisionOf(s.pods, update, previous)
	return s, nil
}

// newestRevisions are the hashes of the owner's newest ControllerRevision
// (the DaemonSet controller raises the number of the one matching the
// template, old or new) and of the one before it.
func newestRevisions(revs []appsv1.ControllerRevision, owner types.UID) (newest, previous string) {
	var own []*appsv1.ControllerRevision
	for i := range revs {
		if o := metav1.GetControllerOf(&revs[i]); o != nil && o.UID == owner {
			own = append(own, &revs[i])
		}
	}
	sort.Slice(own, func(i, j int) bool { return own[i].Revision > own[j].Revision })
	hash := func(r *appsv1.ControllerRevision) string {
		if h := r.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]; h != "" {
			return h
		}
		return r.Name
	}
	if len(own) > 0 {
		newest = hash(own[0])
		previous = newest
	}
	if len(own) > 1 {
		previous = hash(own[1])
	}
	return newest, previous
}

// oldRevisionOf is the revision most old pods run (ties: the smallest
// hash), else fallback.
func oldRevisionOf(pods []corev1.Pod, update, fallback string) string {
	count := map[string]int{}
	for _, p := range pods {
		if r := p.Labels[appsv1.ControllerRevisionHashLabelKey]; r != update && r != "" {
			count[r]++
		}
	}
	best := fallback
	for r, n := range count {
		if n > count[best] || (n == count[best] && r < best) {
			best = r
		}
	}
	return best
}

// Observe reads the DaemonSet and counts its pods by revision.
func (a *DaemonSet) Observe(ctx context.Context) (*Info, error) {
	s, err := a.load(ctx, a.Client)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ds := s.ds
	info := &Info{
		Replicas:       ds.Status.DesiredNumberScheduled,
		Frozen:         ds.Annotations[InProgressingAnnotation] != "",
		StableRevision: s.stable,
		UpdateRevision: s.update,
		PodRevision:    s.update,
		RolloutID:      ds.Labels[RolloutIDLabel],
		Settled:        ds.Status.ObservedGeneration >= ds.Generation && s.update != "",
		RevisionLabel:  appsv1.ControllerRevisionHashLabelKey,
		Controlled:     ds.Annotations[ControlInfoAnnotation] != "",
		Labelled:       ds.Labels[WorkloadTypeLabel] != "",
		KeepsNewPods:   true,
	}
	countPods(info, s.pods, s.update)
	info.Released = !info.Frozen && info.Settled && ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType &&
		ds.Status.UpdatedNumberScheduled == info.Replicas && ds.Status.NumberAvailable == info.Replicas &&
		info.UpdatedReady == info.Replicas && info.Others == 0
	return info, nil
}

// countPods fills Updated, UpdatedReady, Others and Unready from the pods
// (terminating ones left out) by their controller-revision-hash.
func countPods(info *Info, pods []corev1.Pod, update string) {
	for i := range pods {
		p := &pods[i]
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] != update {
			info.Others++
			continue
		}
		info.Updated++
		if podReady(p) {
			info.UpdatedReady++
		} else {
			info.Unready = appendUnready(info.Unready, p)
		}
	}
}

// Prepare holds the DaemonSet on OnDelete (keeping its own strategy type
// for the end) and marks it as controlled; the freeze webhook normally did
// the first part already.
func (a *DaemonSet) Prepare(ctx context.Context) error {
	return a.update(ctx, func(ds *appsv1.DaemonSet) bool {
		changed := holdOnDelete(ds)
		if ds.Annotations[ControlInfoAnnotation] == "" {
			metav1.SetMetaDataAnnotation(&ds.ObjectMeta, ControlInfoAnnotation, controlInfo(a.RolloutName))
			changed = true
		}
		return changed
	})
}

// HoldDaemonSet puts a native DaemonSet on OnDelete, keeping its own
// strategy type in DaemonSetOriginalStrategyAnnotation (once: a second call
// mid-release keeps the first one); it reports a change. The freeze webhook
// calls it.
func HoldDaemonSet(ds *appsv1.DaemonSet) bool { return holdOnDelete(ds) }

func holdOnDelete(ds *appsv1.DaemonSet) bool {
	changed := false
	if _, ok := ds.Annotations[DaemonSetOriginalStrategyAnnotation]; !ok {
		original := ds.Spec.UpdateStrategy.Type
		if original == "" {
			original = appsv1.RollingUpdateDaemonSetStrategyType
		}
		metav1.SetMetaDataAnnotation(&ds.ObjectMeta, DaemonSetOriginalStrategyAnnotation, string(original))
		changed = true
	}
	if ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		ds.Spec.UpdateStrategy.Type = appsv1.OnDeleteDaemonSetStrategyType
		changed = true
	}
	return changed
}

// Release records the batch in Kruise's annotations, then deletes old pods
// until b.Updated run the update revision. A DaemonSet cannot take a pod
// back: the controller recreates a deleted pod from the current template,
// so a batch that shrinks (b.Shrink) deletes nothing more and the new pods
// stay until the old template is applied again.
func (a *DaemonSet) Release(ctx context.Context, b Batch) error {
	s, err := a.load(ctx, live(a.Live, a.Client))
	if err != nil {
		return err
	}
	ds := s.ds
	if ds.Status.ObservedGeneration < ds.Generation || s.update == "" || (b.Revision != "" && b.Revision != s.update) {
		return fmt.Errorf("%w: batch for %s, DaemonSet %s at %s", ErrRevisionChanged, b.Revision, ds.Name, s.update)
	}
	replicas := ds.Status.DesiredNumberScheduled
	partition := replicas - min(b.Updated, replicas)
	if err := a.annotate(ctx, s, partition); err != nil {
		return err
	}
	victims := podsToReplace(s.pods, s.update, b.Updated, replicas, maxUnavailableOf(ds))
	for _, p := range victims {
		uid, rv := p.UID, p.ResourceVersion
		if err := a.Client.Delete(ctx, p, client.Preconditions{UID: &uid, ResourceVersion: &rv}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting pod %s for batch %d: %w", p.Name, b.Index, err)
		}
	}
	return labelPods(ctx, a.Client, a.Key.Namespace, map[string]string{appsv1.ControllerRevisionHashLabelKey: s.update}, b)
}

// annotate writes Kruise's revision and batch annotations when they differ.
func (a *DaemonSet) annotate(ctx context.Context, s *daemonState, partition int32) error {
	revision, _ := json.Marshal(map[string]string{"canary-revision": s.update, "stable-revision": s.stable})
	control, _ := json.Marshal(map[string]string{"partition": strconv.Itoa(int(partition)), "batch-revision": s.update})
	if s.ds.Annotations[DaemonSetRevisionAnnotation] == string(revision) && s.ds.Annotations[DaemonSetAdvancedControlAnnotation] == string(control) {
		return nil
	}
	patch := client.MergeFrom(s.ds.DeepCopy())
	metav1.SetMetaDataAnnotation(&s.ds.ObjectMeta, DaemonSetRevisionAnnotation, string(revision))
	metav1.SetMetaDataAnnotation(&s.ds.ObjectMeta, DaemonSetAdvancedControlAnnotation, string(control))
	return a.Client.Patch(ctx, s.ds, patch)
}

// maxUnavailableOf is the DaemonSet's rollingUpdate.maxUnavailable in pods
// (a percentage of the desired pods rounded up, as the DaemonSet
// controller does; at least 1).
func maxUnavailableOf(ds *appsv1.DaemonSet) int32 {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil {
		return 1
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, int(ds.Status.DesiredNumberScheduled), true)
	if err != nil || n < 1 {
		return 1
	}
	return int32(n)
}

// podsToReplace picks the old pods to delete now so that want of the
// desired pods run update. A node without a pod (its old one deleted, the
// replacement not created yet) will get one of update: it counts as
// updated and down. Pods that are not ready go first (deleting them costs
// no availability), then ready ones while fewer than maxUnavailable pods
// are down, lowest pod-deletion-cost first, then the newest. Worked
// example: 6 pods, want 3, 1 new and ready, maxUnavailable 1: one old pod
// is deleted now, the next once its replacement is ready.
func podsToReplace(pods []corev1.Pod, update string, want, desired, maxUnavailable int32) []*corev1.Pod {
	missing := max(0, desired-int32(len(pods)))
	updated, down := missing, missing
	var old []*corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] == update {
			updated++
			if !podReady(p) {
				down++
			}
			continue
		}
		old = append(old, p)
	}
	need := want - updated
	if need <= 0 {
		return nil
	}
	sortForDeletion(old)
	var out []*corev1.Pod
	for _, p := range old {
		if int32(len(out)) >= need {
			break
		}
		if podReady(p) {
			if down >= maxUnavailable {
				break
			}
			down++
		}
		out = append(out, p)
	}
	return out
}

// sortForDeletion orders pods as Kruise Rollout's native DaemonSet
// controller does: pending, then not ready, then lowest deletion cost,
// then newest.
func sortForDeletion(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if pa, pb := a.Status.Phase == corev1.PodPending, b.Status.Phase == corev1.PodPending; pa != pb {
			return pa
		}
		if ra, rb := podReady(a), podReady(b); ra != rb {
			return !ra
		}
		if ca, cb := deletionCost(a), deletionCost(b); ca != cb {
			return ca < cb
		}
		return a.CreationTimestamp.After(b.CreationTimestamp.Time)
	})
}

func deletionCost(p *corev1.Pod) int32 {
	n, err := strconv.ParseInt(p.Annotations[PodDeletionCostAnnotation], 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// Finalise restores the DaemonSet's own strategy type (its controller then
// rolls the remaining pods itself) and removes the release's marks. With
// KeepPaused it stays on OnDelete.
func (a *DaemonSet) Finalise(ctx context.Context) error {
	return client.IgnoreNotFound(a.update(ctx, func(ds *appsv1.DaemonSet) bool {
		changed := false
		if original, ok := ds.Annotations[DaemonSetOriginalStrategyAnnotation]; ok && !a.keepHeld(ds) {
			t := appsv1.DaemonSetUpdateStrategyType(original)
			if t == "" {
				t = appsv1.RollingUpdateDaemonSetStrategyType
			}
			if ds.Spec.UpdateStrategy.Type != t {
				ds.Spec.UpdateStrategy.Type = t
				changed = true
			}
		}
		keys := []string{InProgressingAnnotation, ControlInfoAnnotation, DaemonSetRevisionAnnotation, DaemonSetAdvancedControlAnnotation}
		if !a.keepHeld(ds) {
			keys = append(keys, DaemonSetOriginalStrategyAnnotation)
		}
		for _, k := range keys {
			if _, ok := ds.Annotations[k]; ok {
				delete(ds.Annotations, k)
				changed = true
			}
		}
		return changed
	}))
}

// keepHeld: KeepPaused, the DaemonSet stays on OnDelete with its own
// strategy kept in the annotation, for the team to roll back or resume.
func (a *DaemonSet) keepHeld(*appsv1.DaemonSet) bool { return a.KeepPaused }

func (a *DaemonSet) update(ctx context.Context, mutate func(*appsv1.DaemonSet) bool) error {
	ds := &appsv1.DaemonSet{}
	if err := a.Client.Get(ctx, a.Key, ds); err != nil {
		return err
	}
	if !mutate(ds) {
		return nil
	}
	return a.Client.Update(ctx, ds)
}

// HandOver does nothing: the stable revision is read from the pods.
func (a *DaemonSet) HandOver(context.Context, string) error { return nil }
