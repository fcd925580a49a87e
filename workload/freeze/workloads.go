package freeze

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// revisionChanged reports whether an update is a new release: a changed
// pod template, or a changed rollouts.kruise.io/rollout-id (label, or the
// annotation Kruise's webhook reads).
func revisionChanged(old, cur metav1.Object, templateChanged bool) bool {
	id := func(o metav1.Object) string {
		if v := o.GetLabels()[workload.RolloutIDLabel]; v != "" {
			return v
		}
		return o.GetAnnotations()[workload.RolloutIDLabel]
	}
	return templateChanged || id(old) != id(cur)
}

// freezeDeployment pauses a Deployment that enters a release and marks it,
// and keeps a Deployment in a release paused (and, in partition style, on
// the Recreate strategy) whatever a GitOps tool re-applies.
func (h *Handler) freezeDeployment(ctx context.Context, r *v1beta1.Rollout, cur, old *appsv1.Deployment) (bool, error) {
	if cur.Spec.Replicas != nil && *cur.Spec.Replicas == 0 {
		return false, nil
	}
	templateChanged := !workload.EqualIgnoreHash(&old.Spec.Template, &cur.Spec.Template)
	if heldBatch(r) != nil && cur.Annotations[workload.InProgressingAnnotation] == "" && old.Annotations[workload.InProgressingAnnotation] != "" {
		// A client replaced the object without Sluice's marks mid-release.
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, workload.InProgressingAnnotation, old.Annotations[workload.InProgressingAnnotation])
		keepFrozen(cur)
		return true, nil
	}
	if cur.Annotations[workload.InProgressingAnnotation] != "" {
		return keepFrozen(cur), nil
	}
	if !revisionChanged(old, cur, templateChanged) {
		return false, nil
	}
	stable, err := h.stableHash(ctx, old)
	if err != nil {
		return false, err
	}
	cur.Spec.Paused = true
	metav1.SetMetaDataAnnotation(&cur.ObjectMeta, workload.InProgressingAnnotation, inProgressing(r))
	metav1.SetMetaDataLabel(&cur.ObjectMeta, workload.StableRevisionLabel, stable)
	return true, nil
}

// keepFrozen re-applies what a release needs on a frozen Deployment. A
// rolling update re-applied by a user or GitOps tool is kept for the end of
// the release, in the saved strategy.
func keepFrozen(d *appsv1.Deployment) bool {
	changed := false
	if !d.Spec.Paused {
		d.Spec.Paused = true
		changed = true
	}
	raw, partition := d.Annotations[workload.DeploymentStrategyAnnotation]
	if !partition || d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return changed
	}
	var saved map[string]any
	if err := json.Unmarshal([]byte(raw), &saved); err != nil {
		saved = map[string]any{"rollingStyle": "Partition"}
	}
	if d.Spec.Strategy.RollingUpdate != nil {
		saved["rollingUpdate"] = d.Spec.Strategy.RollingUpdate
	}
	b, _ := json.Marshal(saved)
	d.Annotations[workload.DeploymentStrategyAnnotation] = string(b)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	return true
}

// stableHash is the pod-template-hash of the ReplicaSet that runs the
// template being replaced.
func (h *Handler) stableHash(ctx context.Context, old *appsv1.Deployment) (string, error) {
	sel, err := metav1.LabelSelectorAsSelector(old.Spec.Selector)
	if err != nil {
		return "", err
	}
	var list appsv1.ReplicaSetList
	if err := h.Client.List(ctx, &list, client.InNamespace(old.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return "", fmt.Errorf("listing ReplicaSets of %s: %w", old.Name, err)
	}
	for i := range list.Items {
		rs := &list.Items[i]
		if owner := metav1.GetControllerOf(rs); owner != nil && owner.UID == old.UID && workload.EqualIgnoreHash(&rs.Spec.Template, &old.Spec.Template) {
			return rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey], nil
		}
	}
	return workload.TemplateHash(&old.Spec.Template, old.Status.CollisionCount), nil
}

// freezeStatefulSet partitions a StatefulSet that enters a release (or
// gets yet another template during one) so that no pod moves until the
// Rollout releases a batch, and keeps a StatefulSet held to its batch
// (see holdToBatch).
func (h *Handler) freezeStatefulSet(_ context.Context, r *v1beta1.Rollout, cur, old *appsv1.StatefulSet) (bool, error) {
	if (cur.Spec.Replicas != nil && *cur.Spec.Replicas == 0) || cur.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return false, nil
	}
	if cur.Spec.UpdateStrategy.RollingUpdate == nil {
		cur.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
	}
	ru := cur.Spec.UpdateStrategy.RollingUpdate
	partition := int32(0)
	if ru.Partition != nil {
		partition = *ru.Partition
	}
	replicas := int32(1)
	if cur.Spec.Replicas != nil {
		replicas = *cur.Spec.Replicas
	}
	mark := cur.Annotations[workload.InProgressingAnnotation]
	templateChanged := !equalTemplate(old, cur)
	if revisionChanged(old, cur, templateChanged) {
		partition = workload.FrozenPartition
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, workload.InProgressingAnnotation, inProgressing(r))
	} else if held, ok := holdToBatch(r, &cur.ObjectMeta, &old.ObjectMeta, replicas, partition); ok {
		partition = held
	} else {
		return false, nil
	}
	if ru.Partition != nil && *ru.Partition == partition && cur.Annotations[workload.InProgressingAnnotation] == mark {
		return false, nil
	}
	ru.Partition = &partition
	return true, nil
}

// holdToBatch keeps a workload that a release holds to a batch there,
// whoever writes it: while the Rollout's committed status has a batch, the
// partition stays at least replicas - batch.replicas (so no more than the
// batch's pods run the new version) and the in-progressing mark stays. A
// GitOps tool re-applying a manifest with partition: 0 mid-release would
// otherwise release every pod. The controller's own writes keep to the
// batch by construction: it records the batch before it moves a pod. It
// returns the partition to write and whether the workload is held.
func holdToBatch(r *v1beta1.Rollout, cur, old *metav1.ObjectMeta, replicas, partition int32) (int32, bool) {
	b := heldBatch(r)
	if b == nil {
		return partition, false
	}
	if cur.Annotations[workload.InProgressingAnnotation] == "" && old.Annotations[workload.InProgressingAnnotation] != "" {
		metav1.SetMetaDataAnnotation(cur, workload.InProgressingAnnotation, old.Annotations[workload.InProgressingAnnotation])
	}
	return max(partition, replicas-b.Replicas), true
}

// heldBatch is the batch the Rollout holds its workload to, or nil.
func heldBatch(r *v1beta1.Rollout) *v1beta1.BatchStatus {
	if r.Status.Phase != v1beta1.RolloutPhaseProgressing || r.Status.Release == nil {
		return nil
	}
	return r.Status.Release.Batch
}

func equalTemplate(old, cur *appsv1.StatefulSet) bool {
	return workload.EqualIgnoreHash(&old.Spec.Template, &cur.Spec.Template)
}

// freezeKruise partitions an OpenKruise CloneSet or Advanced StatefulSet
// whose pod template (or rollout id) changes, and keeps one held to its
// batch (see holdToBatch).
func (h *Handler) freezeKruise(_ context.Context, r *v1beta1.Rollout, cur, old *unstructured.Unstructured) (bool, error) {
	replicas, found, _ := unstructured.NestedInt64(cur.Object, "spec", "replicas")
	if !found {
		replicas = 1
	}
	if cur.GetKind() == workload.AdvancedDaemonSetKind.Kind {
		// No replicas: one pod per node the DaemonSet wants.
		replicas = int64(workload.AdvancedDaemonSetSize(cur))
		if replicas == 0 {
			replicas = int64(workload.AdvancedDaemonSetSize(old))
		}
	}
	if replicas == 0 {
		return false, nil
	}
	curTemplate, _, _ := unstructured.NestedMap(cur.Object, "spec", "template")
	oldTemplate, _, _ := unstructured.NestedMap(old.Object, "spec", "template")
	if revisionChanged(old, cur, !equality.Semantic.DeepEqual(curTemplate, oldTemplate)) {
		if _, err := workload.FreezeKruise(cur); err != nil {
			return false, err
		}
		setAnnotation(cur, workload.InProgressingAnnotation, inProgressing(r))
		return true, nil
	}
	partition, err := workload.KruisePartition(cur, int32(replicas))
	if err != nil {
		return false, err
	}
	meta, oldMeta := &metav1.ObjectMeta{Annotations: cur.GetAnnotations()}, &metav1.ObjectMeta{Annotations: old.GetAnnotations()}
	held, ok := holdToBatch(r, meta, oldMeta, int32(replicas), partition)
	if !ok {
		return false, nil
	}
	changed := meta.Annotations[workload.InProgressingAnnotation] != cur.GetAnnotations()[workload.InProgressingAnnotation]
	cur.SetAnnotations(meta.Annotations)
	if held != partition {
		if err := workload.SetKruisePartition(cur, held); err != nil {
			return false, err
		}
		changed = true
	}
	return changed, nil
}

// freezeDaemonSet puts a native DaemonSet whose pod template (or rollout
// id) changes on the OnDelete strategy, keeping its own strategy type for
// the end of the release, as Kruise's webhook does; and keeps one in a
// release there whatever a client re-applies (its strategy type is then
// the one restored at the end).
func (h *Handler) freezeDaemonSet(_ context.Context, r *v1beta1.Rollout, cur, old *appsv1.DaemonSet) (bool, error) {
	templateChanged := !workload.EqualIgnoreHash(&old.Spec.Template, &cur.Spec.Template)
	inRelease := old.Annotations[workload.InProgressingAnnotation] != "" && heldBatch(r) != nil
	changed := false
	if inRelease {
		for _, k := range []string{workload.InProgressingAnnotation, workload.DaemonSetOriginalStrategyAnnotation} {
			if cur.Annotations[k] == "" && old.Annotations[k] != "" {
				metav1.SetMetaDataAnnotation(&cur.ObjectMeta, k, old.Annotations[k])
				changed = true
			}
		}
		if t := cur.Spec.UpdateStrategy.Type; t != appsv1.OnDeleteDaemonSetStrategyType && t != "" {
			// The client's own strategy, for the end of the release.
			metav1.SetMetaDataAnnotation(&cur.ObjectMeta, workload.DaemonSetOriginalStrategyAnnotation, string(t))
		}
	} else if !revisionChanged(old, cur, templateChanged) {
		return false, nil
	} else if cur.Annotations[workload.InProgressingAnnotation] == "" {
		metav1.SetMetaDataAnnotation(&cur.ObjectMeta, workload.InProgressingAnnotation, inProgressing(r))
		changed = true
	}
	return workload.HoldDaemonSet(cur) || changed, nil
}

func setAnnotation(u *unstructured.Unstructured, k, v string) {
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[k] = v
	u.SetAnnotations(ann)
}
