package openkruise

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"reflect"
	"sort"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/dump"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// daemonSetReconciler plays pkg/controller/daemonset for Advanced
// DaemonSets: one pod per node, a ControllerRevision per template, and
// the Standard rolling update bounded by maxUnavailable and the partition.
type daemonSetReconciler struct {
	client client.Client
	reader client.Reader
	clock  clock.PassiveClock
	log    logr.Logger
}

func (r *daemonSetReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(AdvancedDaemonSetKind)
	if err := r.reader.Get(ctx, req.NamespacedName, u); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	ds := &advancedDaemonSet{}
	if err := fromUnstructured(u, ds); err != nil {
		r.log.Error(err, "DaemonSet not readable", "daemonSet", req.NamespacedName)
		return reconcile.Result{}, nil
	}
	if ds.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || selector.Empty() {
		r.log.Error(err, "DaemonSet selector invalid or empty", "daemonSet", req.NamespacedName)
		return reconcile.Result{}, nil
	}
	var nodes corev1.NodeList
	if err := r.reader.List(ctx, &nodes); err != nil {
		return reconcile.Result{}, err
	}
	hash, err := r.constructHistory(ctx, ds, selector)
	if err != nil {
		return reconcile.Result{}, err
	}
	byNode, err := r.podsByNode(ctx, ds, selector)
	if err != nil {
		return reconcile.Result{}, err
	}
	var all []*corev1.Pod
	for _, pods := range byNode {
		all = append(all, pods...)
	}
	if _, err := refreshPods(ctx, r.client, all, r.clock.Now()); err != nil {
		return reconcile.Result{}, err
	}
	actErr := r.manage(ctx, ds, nodes.Items, byNode, hash)
	if actErr == nil && ds.Spec.UpdateStrategy.Type != "OnDelete" && !rollingPaused(ds) {
		actErr = r.rollingUpdate(ctx, ds, nodes.Items, byNode, hash)
	}
	status := r.calculateStatus(ds, nodes.Items, byNode, hash)
	if !reflect.DeepEqual(status, ds.Status) {
		if err := writeStatus(ctx, r.reader, r.client, u, &status); err != nil {
			return reconcile.Result{}, err
		}
	}
	if actErr == nil && ds.Spec.MinReadySeconds > 0 && status.NumberReady != status.NumberAvailable {
		return reconcile.Result{RequeueAfter: time.Duration(ds.Spec.MinReadySeconds) * time.Second}, nil
	}
	return reconcile.Result{}, actErr
}

func rollingPaused(ds *advancedDaemonSet) bool {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	return ru != nil && ru.Paused != nil && *ru.Paused
}

// daemonSetHash is kubernetes pkg/controller ComputeHash of the template
// with the collision count, as daemonset_history.go names revisions
// (<name>-<hash>) and labels pods (controller-revision-hash=<hash>).
func daemonSetHash(t *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(*t))
	if collisionCount != nil {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, uint32(*collisionCount))
		h.Write(b)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// constructHistory keeps the revisions as daemonset_history.go does: the
// one of the current template gets the next revision number (an old one
// is reused and renumbered), and dead ones beyond revisionHistoryLimit go,
// oldest first. It returns the current hash.
func (r *daemonSetReconciler) constructHistory(ctx context.Context, ds *advancedDaemonSet, selector labels.Selector) (string, error) {
	hash := daemonSetHash(&ds.Spec.Template, ds.Status.CollisionCount)
	var l appsv1.ControllerRevisionList
	if err := r.reader.List(ctx, &l, client.InNamespace(ds.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return "", err
	}
	var own []*appsv1.ControllerRevision
	var cur *appsv1.ControllerRevision
	var maxRevision int64
	for i := range l.Items {
		rev := &l.Items[i]
		if ref := metav1.GetControllerOf(rev); ref == nil || ref.UID != ds.UID {
			continue
		}
		own = append(own, rev)
		maxRevision = max(maxRevision, rev.Revision)
		if rev.Name == ControllerRevisionName(ds.Name, hash) {
			cur = rev
		}
	}
	switch {
	case cur == nil:
		data, err := ControllerRevisionData(&ds.Spec.Template, true)
		if err != nil {
			return "", err
		}
		rev := &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{
				Name: ControllerRevisionName(ds.Name, hash), Namespace: ds.Namespace,
				Labels:          map[string]string{appsv1.DefaultDaemonSetUniqueLabelKey: hash},
				Annotations:     ds.Annotations,
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, AdvancedDaemonSetKind)},
			},
			Data:     runtimeRaw(data),
			Revision: maxRevision + 1,
		}
		for k, v := range ds.Spec.Template.Labels {
			rev.Labels[k] = v
		}
		if err := r.client.Create(ctx, rev); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("creating revision %s: %w", rev.Name, err)
		}
		own = append(own, rev)
	case cur.Revision < maxRevision:
		cur.Revision = maxRevision + 1
		if err := r.client.Update(ctx, cur); err != nil {
			return "", err
		}
	}
	return hash, r.cleanupHistory(ctx, ds, own, hash)
}

// cleanupHistory deletes the oldest revisions no pod runs beyond
// revisionHistoryLimit (default 10).
func (r *daemonSetReconciler) cleanupHistory(ctx context.Context, ds *advancedDaemonSet, revs []*appsv1.ControllerRevision, hash string) error {
	limit := 10
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = int(*ds.Spec.RevisionHistoryLimit)
	}
	var pods corev1.PodList
	if err := r.reader.List(ctx, &pods, client.InNamespace(ds.Namespace)); err != nil {
		return err
	}
	live := map[string]bool{hash: true}
	for _, p := range pods.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == ds.UID {
			live[p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] = true
		}
	}
	var dead []*appsv1.ControllerRevision
	for _, rev := range revs {
		if !live[rev.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] {
			dead = append(dead, rev)
		}
	}
	sort.Slice(dead, func(i, j int) bool { return dead[i].Revision < dead[j].Revision })
	for i := 0; i < len(dead)-limit; i++ {
		if err := r.client.Delete(ctx, dead[i]); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// podsByNode groups the DaemonSet's pods by the node they run on (or are
// bound to by their node affinity while pending), finished ones aside.
func (r *daemonSetReconciler) podsByNode(ctx context.Context, ds *advancedDaemonSet, selector labels.Selector) (map[string][]*corev1.Pod, error) {
	var l corev1.PodList
	if err := r.reader.List(ctx, &l, client.InNamespace(ds.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, err
	}
	out := map[string][]*corev1.Pod{}
	for i := range l.Items {
		p := &l.Items[i]
		if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != ds.UID {
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if node := targetNode(p); node != "" {
			out[node] = append(out[node], p)
		}
	}
	return out, nil
}

// targetNode is the node a daemon pod runs on, or is pinned to by the
// metadata.name node affinity the controller gives it.
func targetNode(p *corev1.Pod) string {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName
	}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, f := range t.MatchFields {
				if f.Key == metav1.ObjectNameField && len(f.Values) == 1 {
					return f.Values[0]
				}
			}
		}
	}
	return ""
}

// shouldRun: the node matches the template's nodeSelector (node affinity
// and taints are not played: simulated nodes carry none).
func shouldRun(ds *advancedDaemonSet, n *corev1.Node) bool {
	return labels.SelectorFromSet(ds.Spec.Template.Spec.NodeSelector).Matches(labels.Set(n.Labels))
}

// manage creates a pod on every node that should run one and has none, and
// deletes the pods of nodes that should not, and the surplus of a node
// (keeping its oldest pod).
func (r *daemonSetReconciler) manage(ctx context.Context, ds *advancedDaemonSet, nodes []corev1.Node, byNode map[string][]*corev1.Pod, hash string) error {
	want := map[string]bool{}
	for i := range nodes {
		if shouldRun(ds, &nodes[i]) {
			want[nodes[i].Name] = true
		}
	}
	for node, pods := range byNode {
		var active []*corev1.Pod
		for _, p := range pods {
			if p.DeletionTimestamp == nil {
				active = append(active, p)
			}
		}
		sort.Slice(active, func(i, j int) bool { return active[i].CreationTimestamp.Before(&active[j].CreationTimestamp) })
		keep := 1
		if !want[node] {
			keep = 0
		}
		for i := keep; i < len(active); i++ {
			if err := r.client.Delete(ctx, active[i]); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
	}
	for node := range want {
		if hasActivePod(byNode[node]) {
			continue
		}
		if err := r.createPod(ctx, ds, node, hash); err != nil {
			return err
		}
	}
	return nil
}

func hasActivePod(pods []*corev1.Pod) bool {
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			return true
		}
	}
	return false
}

// createPod is syncNodes' pod: the template with
// controller-revision-hash=<hash>, the default daemon tolerations, a node
// affinity pinning it to the node by name (the scheduler binds it), the
// KruisePodReady readiness gate the pod webhook injects, and the DaemonSet
// as controller.
func (r *daemonSetReconciler) createPod(ctx context.Context, ds *advancedDaemonSet, node, hash string) error {
	p := podFromTemplate(&ds.Spec.Template, ds, metav1.TypeMeta{APIVersion: AdvancedDaemonSetKind.GroupVersion().String(), Kind: AdvancedDaemonSetKind.Kind})
	p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] = hash
	addDaemonTolerations(&p.Spec)
	p.Spec.Affinity = pinToNode(p.Spec.Affinity, node)
	addReadinessGate(&p.Spec, ConditionKruisePodReady)
	if err := r.client.Create(ctx, p); err != nil {
		return fmt.Errorf("creating a pod on node %s: %w", node, err)
	}
	return nil
}

// addDaemonTolerations is AddOrUpdateDaemonPodTolerations: daemon pods stay
// on nodes that are not ready, unreachable, under pressure or
// unschedulable.
func addDaemonTolerations(spec *corev1.PodSpec) {
	add := func(key string, effect corev1.TaintEffect) {
		for _, t := range spec.Tolerations {
			if t.Key == key && t.Effect == effect {
				return
			}
		}
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect})
	}
	add(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute)
	add(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute)
	add(corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodePIDPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)
	if spec.HostNetwork {
		add(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)
	}
}

// pinToNode is ReplaceDaemonSetPodNodeNameNodeAffinity: the required node
// affinity becomes metadata.name In [node].
func pinToNode(a *corev1.Affinity, node string) *corev1.Affinity {
	if a == nil {
		a = &corev1.Affinity{}
	}
	if a.NodeAffinity == nil {
		a.NodeAffinity = &corev1.NodeAffinity{}
	}
	a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{
			Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
		}}}},
	}
	return a
}

// rollingUpdate is the Standard update without surge
// (daemonset_update.go rollingUpdate, filterDaemonPodsNodeToUpdate): the
// nodes are taken in reverse name order, those already updated (or being
// updated) first, and only the first desired - partition of them may
// update; among those, old pods that are not available are replaced at
// once, and available ones while fewer than maxUnavailable (default 1, a
// percentage rounded up) are down. Worked example: 6 nodes, partition 4,
// none updated: nodes 5 and 4 (by name) may update, one at a time.
func (r *daemonSetReconciler) rollingUpdate(ctx context.Context, ds *advancedDaemonSet, nodes []corev1.Node, byNode map[string][]*corev1.Pod, hash string) error {
	desired := 0
	for i := range nodes {
		if shouldRun(ds, &nodes[i]) {
			desired++
		}
	}
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	maxUnavailable := 1
	partition := 0
	if ru != nil {
		if ru.MaxUnavailable != nil {
			n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, desired, true)
			if err != nil {
				return fmt.Errorf("spec.updateStrategy.rollingUpdate.maxUnavailable: %w", err)
			}
			maxUnavailable = n
		}
		if ru.Partition != nil {
			n, err := intstr.GetScaledValueFromIntOrPercent(ru.Partition, desired, false)
			if err != nil {
				return fmt.Errorf("spec.updateStrategy.rollingUpdate.partition: %w", err)
			}
			partition = n
		}
	}
	if maxUnavailable == 0 {
		maxUnavailable = 1
	}
	names := make([]string, 0, len(byNode))
	for node := range byNode {
		names = append(names, node)
	}
	sort.Strings(names)
	var updated, updating, rest []string
	for i := len(names) - 1; i >= 0; i-- {
		newPod, oldPod, ok := splitNodePods(byNode[names[i]], hash)
		switch {
		case !ok || newPod != nil:
			updated = append(updated, names[i])
		case oldPod == nil || oldPod.DeletionTimestamp != nil:
			updating = append(updating, names[i])
		default:
			rest = append(rest, names[i])
		}
	}
	candidates := append(append(updated, updating...), rest...)
	if n := len(names) - partition; n <= 0 {
		return nil
	} else if n < len(candidates) {
		candidates = candidates[:n]
	}
	now := r.clock.Now()
	unavailable := 0
	var replace, ready []*corev1.Pod
	for _, node := range candidates {
		newPod, oldPod, ok := splitNodePods(byNode[node], hash)
		switch {
		case !ok, oldPod == nil || oldPod.DeletionTimestamp != nil:
			if newPod == nil || !isRunningAndAvailable(newPod, ds.Spec.MinReadySeconds, now) {
				unavailable++
			}
		case newPod != nil:
			if !isRunningAndAvailable(newPod, ds.Spec.MinReadySeconds, now) {
				unavailable++
			}
		case !isRunningAndAvailable(oldPod, ds.Spec.MinReadySeconds, now):
			replace = append(replace, oldPod)
		default:
			ready = append(ready, oldPod)
		}
	}
	if room := maxUnavailable - unavailable; room > 0 {
		replace = append(replace, ready[:min(room, len(ready))]...)
	}
	for _, p := range replace {
		if err := r.client.Delete(ctx, p, client.Preconditions{UID: &p.UID}); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// splitNodePods is findUpdatedPodsOnNode: a node's pod of the current hash
// and its other pod; ok is false when it has more than one of either.
func splitNodePods(pods []*corev1.Pod, hash string) (newPod, oldPod *corev1.Pod, ok bool) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash {
			if newPod != nil {
				return nil, nil, false
			}
			newPod = p
		} else {
			if oldPod != nil {
				return nil, nil, false
			}
			oldPod = p
		}
	}
	return newPod, oldPod, true
}

// calculateStatus is updateDaemonSetStatus: per node that should run a pod,
// its oldest pod counts as scheduled, ready, available and updated; pods
// on other nodes are misscheduled.
func (r *daemonSetReconciler) calculateStatus(ds *advancedDaemonSet, nodes []corev1.Node, byNode map[string][]*corev1.Pod, hash string) daemonSetStatus {
	s := daemonSetStatus{ObservedGeneration: ds.Generation, DaemonSetHash: hash, CollisionCount: ds.Status.CollisionCount, Conditions: ds.Status.Conditions}
	now := r.clock.Now()
	for i := range nodes {
		pods := byNode[nodes[i].Name]
		if !shouldRun(ds, &nodes[i]) {
			if len(pods) > 0 {
				s.NumberMisscheduled++
			}
			continue
		}
		s.DesiredNumberScheduled++
		if len(pods) == 0 {
			continue
		}
		s.CurrentNumberScheduled++
		sort.Slice(pods, func(i, j int) bool { return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp) })
		p := pods[0]
		if p.Status.Phase == corev1.PodRunning && isReady(p) {
			s.NumberReady++
			if isRunningAndAvailable(p, ds.Spec.MinReadySeconds, now) {
				s.NumberAvailable++
			}
		}
		if p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash {
			s.UpdatedNumberScheduled++
		}
	}
	s.NumberUnavailable = s.DesiredNumberScheduled - s.NumberAvailable
	return s
}
