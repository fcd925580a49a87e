package openkruise

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// vctHashAnnotation is written on every CloneSet revision, empty without
// volumeClaimTemplates (pkg/util/volumeclaimtemplate PatchVCTemplateHash).
const vctHashAnnotation = "kruise.io/cloneset-volumeclaimtemplate-hash"

// history keeps a workload's ControllerRevisions as kubernetes
// pkg/controller/history does for both OpenKruise controllers.
type history struct {
	client client.Client
	// reader reads the API server directly: decisions never rest on a
	// stale cache (the real controllers use expectations for that).
	reader client.Reader
}

// owner is the workload whose revisions are kept.
type owner struct {
	obj      metav1.Object
	kind     schema.GroupVersionKind
	selector labels.Selector
	template *corev1.PodTemplateSpec
	// collisionCount is status.collisionCount.
	collisionCount int32
	// currentRevision is status.currentRevision.
	currentRevision string
	// vctHash says whether revisions carry the volume-claim-template hash
	// annotation (CloneSet only).
	vctHash bool
}

// list returns the owner's revisions, oldest first
// (history.ListControllerRevisions, SortControllerRevisions).
func (h *history) list(ctx context.Context, o owner) ([]*appsv1.ControllerRevision, error) {
	var l appsv1.ControllerRevisionList
	if err := h.reader.List(ctx, &l, client.InNamespace(o.obj.GetNamespace()), client.MatchingLabelsSelector{Selector: o.selector}); err != nil {
		return nil, err
	}
	var out []*appsv1.ControllerRevision
	for i := range l.Items {
		if ref := metav1.GetControllerOf(&l.Items[i]); ref != nil && ref.UID == o.obj.GetUID() {
			out = append(out, &l.Items[i])
		}
	}
	sortRevisions(out)
	return out, nil
}

// sortRevisions orders by revision number, then creation time, then name
// (history byRevision).
func sortRevisions(revs []*appsv1.ControllerRevision) {
	sort.SliceStable(revs, func(i, j int) bool {
		a, b := revs[i], revs[j]
		if a.Revision != b.Revision {
			return a.Revision < b.Revision
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

// active returns the current and update revisions and the collision
// count, creating the update revision or bumping an equal old one
// (cloneset_controller.go getActiveRevisions, stateful_set_control.go
// getStatefulSetRevisions):
//   - the update revision is the template's; if the newest revision holds
//     the same data it is that one; if an older one does (a rollback), its
//     number is raised to the next; otherwise a new one is created, its
//     name changed by the collision count while another revision holds
//     the name with other data;
//   - the current revision is the one named by status.currentRevision, or
//     the update revision when there is none.
func (h *history) active(ctx context.Context, o owner, revs []*appsv1.ControllerRevision) (current, update *appsv1.ControllerRevision, collisionCount int32, err error) {
	collisionCount = o.collisionCount
	data, err := ControllerRevisionData(o.template, true)
	if err != nil {
		return nil, nil, collisionCount, err
	}
	next := int64(1)
	if len(revs) > 0 {
		next = revs[len(revs)-1].Revision + 1
	}
	var equal *appsv1.ControllerRevision
	for _, r := range revs {
		if bytes.Equal(r.Data.Raw, data) {
			equal = r
		}
	}
	switch {
	case equal != nil && equal == revs[len(revs)-1]:
		update = equal
	case equal != nil:
		update = equal.DeepCopy()
		update.Revision = next
		if err := h.client.Update(ctx, update); err != nil {
			return nil, nil, collisionCount, err
		}
	default:
		if update, err = h.create(ctx, o, data, next, &collisionCount); err != nil {
			return nil, nil, collisionCount, err
		}
	}
	for _, r := range revs {
		if r.Name == o.currentRevision {
			current = r
		}
	}
	if current == nil {
		current = update
	}
	return current, update, collisionCount, nil
}

// create is history.NewControllerRevision + CreateControllerRevision: the
// template's labels plus controller-revision-hash, the owner's
// annotations, the owner as controller.
func (h *history) create(ctx context.Context, o owner, data []byte, number int64, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	hash := ControllerRevisionHash(data, *collisionCount)
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       o.obj.GetNamespace(),
			Labels:          map[string]string{appsv1.ControllerRevisionHashLabelKey: hash},
			Annotations:     map[string]string{},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(o.obj, o.kind)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: number,
	}
	for k, v := range o.template.Labels {
		cr.Labels[k] = v
	}
	cr.Labels[appsv1.ControllerRevisionHashLabelKey] = hash
	for k, v := range o.obj.GetAnnotations() {
		cr.Annotations[k] = v
	}
	if o.vctHash {
		cr.Annotations[vctHashAnnotation] = ""
	}
	for range 100 {
		cr.Name = ControllerRevisionName(o.obj.GetName(), ControllerRevisionHash(data, *collisionCount))
		err := h.client.Create(ctx, cr)
		if !apierrors.IsAlreadyExists(err) {
			return cr, err
		}
		existing := &appsv1.ControllerRevision{}
		if err := h.reader.Get(ctx, client.ObjectKeyFromObject(cr), existing); err != nil {
			return nil, err
		}
		if bytes.Equal(existing.Data.Raw, data) {
			return existing, nil
		}
		*collisionCount++
	}
	return nil, fmt.Errorf("no free ControllerRevision name for %s after 100 collisions", o.obj.GetName())
}

// truncate deletes the oldest revisions that are neither current, update
// nor worn by a pod, beyond limit (revisionHistoryLimit, default 10).
func (h *history) truncate(ctx context.Context, revs []*appsv1.ControllerRevision, live map[string]bool, limit int) error {
	var dead []*appsv1.ControllerRevision
	for _, r := range revs {
		if !live[r.Name] {
			dead = append(dead, r)
		}
	}
	for _, r := range dead[:max(len(dead)-limit, 0)] {
		if err := h.client.Delete(ctx, r); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}
