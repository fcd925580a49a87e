package openkruise

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// cloneSetReconciler plays pkg/controller/cloneset: each pass lists the
// CloneSet's pods and revisions, scales (creates and deletes pods), or, when
// it did not scale, updates (marks old pods for ReCreate), then writes the
// status computed from the pods it listed.
type cloneSetReconciler struct {
	client  client.Client
	reader  client.Reader
	history history
	clock   clock.PassiveClock
	log     logr.Logger
}

func (r *cloneSetReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(CloneSetKind)
	if err := r.reader.Get(ctx, req.NamespacedName, u); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	cs := &cloneSet{}
	if err := fromUnstructured(u, cs); err != nil {
		r.log.Error(err, "CloneSet not readable", "cloneSet", req.NamespacedName)
		return reconcile.Result{}, nil
	}
	if cs.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	selector, err := metav1.LabelSelectorAsSelector(cs.Spec.Selector)
	if err != nil || selector.Empty() {
		r.log.Error(err, "CloneSet selector invalid or empty", "cloneSet", req.NamespacedName)
		return reconcile.Result{}, nil // not transient: OpenKruise does not retry either
	}
	pods, err := ownedPods(ctx, r.reader, cs.Namespace, selector, cs.UID, true)
	if err != nil {
		return reconcile.Result{}, err
	}
	o := owner{obj: cs, kind: CloneSetKind, selector: selector, template: &cs.Spec.Template,
		currentRevision: cs.Status.CurrentRevision, vctHash: true}
	if cs.Status.CollisionCount != nil {
		o.collisionCount = *cs.Status.CollisionCount
	}
	revs, err := r.history.list(ctx, o)
	if err != nil {
		return reconcile.Result{}, err
	}
	current, update, collisionCount, err := r.history.active(ctx, o, revs)
	if err != nil {
		return reconcile.Result{}, err
	}
	status := cloneSetStatus{
		ObservedGeneration: cs.Generation,
		CurrentRevision:    current.Name,
		UpdateRevision:     update.Name,
		CollisionCount:     &collisionCount,
		LabelSelector:      selector.String(),
		Conditions:         cs.Status.Conditions,
	}
	syncErr := r.sync(ctx, cs, current, update, pods)
	r.calculateStatus(cs, &status, pods)
	if !reflect.DeepEqual(status, cs.Status) {
		if err := writeStatus(ctx, r.reader, r.client, u, &status); err != nil {
			return reconcile.Result{}, err
		}
	}
	live := map[string]bool{current.Name: true, update.Name: true}
	for _, p := range pods {
		live[revisionOf(p)] = true
	}
	limit := 10
	if cs.Spec.RevisionHistoryLimit != nil {
		limit = int(*cs.Spec.RevisionHistoryLimit)
	}
	if err := r.history.truncate(ctx, revs, live, limit); err != nil {
		r.log.Error(err, "truncating history", "cloneSet", req.NamespacedName)
	}
	if syncErr == nil && cs.Spec.MinReadySeconds > 0 && status.AvailableReplicas != status.ReadyReplicas {
		return reconcile.Result{RequeueAfter: time.Duration(cs.Spec.MinReadySeconds) * time.Second}, nil
	}
	return reconcile.Result{}, syncErr
}

// ownedPods lists the pods matching selector whose controller is the
// workload with uid; activeOnly leaves out finished and terminating ones.
func ownedPods(ctx context.Context, reader client.Reader, namespace string, selector labels.Selector, uid types.UID, activeOnly bool) ([]*corev1.Pod, error) {
	var l corev1.PodList
	if err := reader.List(ctx, &l, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, err
	}
	var out []*corev1.Pod
	for i := range l.Items {
		p := &l.Items[i]
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == uid && (isActive(p) || !activeOnly) {
			out = append(out, p)
		}
	}
	return out, nil
}

// sync is syncCloneSet: scale, and update only when nothing was scaled.
func (r *cloneSetReconciler) sync(ctx context.Context, cs *cloneSet, current, update *appsv1.ControllerRevision, pods []*corev1.Pod) error {
	n, err := resolveCloneSetNumbers(&cs.Spec)
	if err != nil {
		r.log.Error(err, "CloneSet spec invalid", "cloneSet", cs.Namespace+"/"+cs.Name)
		return nil
	}
	scaled, err := r.scale(ctx, cs, n, current, update, pods)
	if err != nil || scaled {
		return err
	}
	return r.update(ctx, cs, n, update, pods)
}

// summarize sorts pods in ActivePods order (the order OpenKruise updates
// and deletes them in) and describes them for the plans.
func (r *cloneSetReconciler) summarize(cs *cloneSet, update string, pods []*corev1.Pod) []csPod {
	sort.SliceStable(pods, func(i, j int) bool { return lessActive(pods[i], pods[j]) })
	specified := map[string]bool{}
	for _, name := range cs.Spec.ScaleStrategy.PodsToDelete {
		specified[name] = true
	}
	out := make([]csPod, len(pods))
	for i, p := range pods {
		_, marked := p.Labels[LabelSpecifiedDelete]
		out[i] = csPod{
			updated:         cloneSetPodAt(p, update),
			ready:           r.podAvailable(p, 0),
			available:       r.podAvailable(p, cs.Spec.MinReadySeconds),
			specifiedDelete: marked || specified[p.Name],
		}
	}
	return out
}

// cloneSetPodAt: a pod is at a revision when its controller-revision-hash
// is the revision's name or ends in the same hash (EqualToRevisionHash).
func cloneSetPodAt(p *corev1.Pod, revision string) bool {
	h := revisionOf(p)
	return h == revision || ShortHash(h) == ShortHash(revision)
}

// podUpdateReady is cloneset/core IsPodUpdateReady: running and available,
// and the in-place update condition, when present, true.
func (r *cloneSetReconciler) podUpdateReady(p *corev1.Pod, minReadySeconds int32) bool {
	if !isRunningAndAvailable(p, minReadySeconds, r.clock.Now()) {
		return false
	}
	c := condition(p, ConditionInPlaceUpdateReady)
	return c == nil || c.Status == corev1.ConditionTrue
}

// podAvailable is cloneset/sync IsPodAvailable: also in lifecycle Normal.
func (r *cloneSetReconciler) podAvailable(p *corev1.Pod, minReadySeconds int32) bool {
	return lifecycleIsNormal(p) && r.podUpdateReady(p, minReadySeconds)
}

// scale carries out planCloneSetScale; it reports whether it acted.
func (r *cloneSetReconciler) scale(ctx context.Context, cs *cloneSet, n cloneSetNumbers, current, update *appsv1.ControllerRevision, pods []*corev1.Pod) (bool, error) {
	plan := planCloneSetScale(n, r.summarize(cs, update.Name, pods))
	if plan.create > 0 {
		return r.createPods(ctx, cs, plan.create, plan.createAtCurrent, current, update, pods)
	}
	for _, i := range plan.delete {
		if err := r.client.Delete(ctx, pods[i], client.Preconditions{UID: &pods[i].UID}); client.IgnoreNotFound(err) != nil {
			return true, err
		}
	}
	return len(plan.delete) > 0, nil
}

// createPods is NewVersionedPods + createPods: count pods, the first
// ofCurrent of them at the current revision, named <cloneset>-<5 random
// characters> (the instance id).
func (r *cloneSetReconciler) createPods(ctx context.Context, cs *cloneSet, count, ofCurrent int, current, update *appsv1.ControllerRevision, pods []*corev1.Pod) (bool, error) {
	used := map[string]bool{}
	for _, p := range pods {
		used[p.Labels[LabelInstanceID]] = true
	}
	created := false
	for i := range count {
		rev := update
		if i < ofCurrent {
			rev = current
		}
		t, err := templateOfRevision(rev.Data.Raw)
		if err != nil {
			return created, err
		}
		id := rand.String(5)
		for used[id] {
			id = rand.String(5)
		}
		used[id] = true
		p := podFromTemplate(t, cs, metav1.TypeMeta{APIVersion: CloneSetKind.GroupVersion().String(), Kind: CloneSetKind.Kind})
		p.Name = cs.Name + "-" + id
		p.Labels[appsv1.ControllerRevisionHashLabelKey] = rev.Name
		p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = ShortHash(rev.Name)
		p.Labels[LabelInstanceID] = id
		p.Labels[LabelLifecycleState] = lifecyclePreparingNormal
		p.Annotations[lifecycleTimestampAnnotation] = r.clock.Now().Format(time.RFC3339)
		addReadinessGate(&p.Spec, ConditionInPlaceUpdateReady)
		addReadinessGate(&p.Spec, ConditionKruisePodReady)
		if err := r.client.Create(ctx, p); err != nil {
			return created, fmt.Errorf("creating pod %s: %w", p.Name, err)
		}
		created = true
	}
	return created, nil
}

// update is cloneset_update.go Update for the ReCreate strategy: first
// bring pod states up to date (and stop there if any changed); then, unless
// the strategy is OnDelete or paused, label the pods planCloneSetUpdate
// picks apps.kruise.io/specified-delete. Scale then deletes them and
// creates their replacements at the update revision. InPlaceIfPossible is
// played as ReCreate (see the package doc).
func (r *cloneSetReconciler) update(ctx context.Context, cs *cloneSet, n cloneSetNumbers, update *appsv1.ControllerRevision, pods []*corev1.Pod) error {
	if cs.Spec.UpdateStrategy.Type == "OnDelete" {
		return nil
	}
	refreshed, err := refreshPods(ctx, r.client, pods, r.clock.Now())
	if err != nil || refreshed {
		return err
	}
	if cs.Spec.UpdateStrategy.Paused {
		return nil
	}
	for _, i := range planCloneSetUpdate(n, r.summarize(cs, update.Name, pods)) {
		if _, marked := pods[i].Labels[LabelSpecifiedDelete]; marked {
			continue
		}
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, LabelSpecifiedDelete)
		if err := r.client.Patch(ctx, pods[i], client.RawPatch(types.StrategicMergePatchType, []byte(patch))); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// calculateStatus is cloneset_status.go calculateStatus. The current
// revision becomes the update revision as soon as every pod carries it and
// there are spec.replicas of them, ready or not.
func (r *cloneSetReconciler) calculateStatus(cs *cloneSet, s *cloneSetStatus, pods []*corev1.Pod) {
	for _, p := range pods {
		s.Replicas++
		ready := r.podUpdateReady(p, 0)
		available := r.podAvailable(p, cs.Spec.MinReadySeconds)
		updated := cloneSetPodAt(p, s.UpdateRevision)
		if ready {
			s.ReadyReplicas++
		}
		if available {
			s.AvailableReplicas++
		}
		if updated {
			s.UpdatedReplicas++
			if ready {
				s.UpdatedReadyReplicas++
			}
			if available {
				s.UpdatedAvailableReplicas++
			}
		}
	}
	replicas := int32(1)
	if cs.Spec.Replicas != nil {
		replicas = *cs.Spec.Replicas
	}
	if s.UpdatedReplicas == s.Replicas && s.Replicas == replicas {
		s.CurrentRevision = s.UpdateRevision
	}
	partition := 0
	if p := cs.Spec.UpdateStrategy.Partition; p != nil {
		var err error
		if partition, err = partitionReplicas(*p, int(replicas)); err != nil {
			return // OpenKruise leaves expectedUpdatedReplicas out then
		}
	}
	s.ExpectedUpdatedReplicas = replicas - int32(partition)
}

// writeStatus replaces the status of the workload u (read at the start of
// the pass) by status, retrying on conflicts with a fresh copy.
func writeStatus(ctx context.Context, reader client.Reader, c client.Client, u *unstructured.Unstructured, status any) error {
	m, err := statusMap(status)
	if err != nil {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		fresh := &unstructured.Unstructured{}
		fresh.SetGroupVersionKind(u.GroupVersionKind())
		if err := reader.Get(ctx, client.ObjectKeyFromObject(u), fresh); err != nil {
			return err
		}
		fresh.Object["status"] = m
		return c.Status().Update(ctx, fresh)
	})
}
