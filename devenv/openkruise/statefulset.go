package openkruise

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// statefulSetReconciler plays pkg/controller/statefulset for Advanced
// StatefulSets: pods <name>-<ordinal> labelled like a native StatefulSet's,
// created and deleted in ordinal order, updated from the top ordinal down
// to the partition.
type statefulSetReconciler struct {
	client  client.Client
	reader  client.Reader
	history history
	clock   clock.PassiveClock
	log     logr.Logger
}

func (r *statefulSetReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(AdvancedStatefulSetKind)
	if err := r.reader.Get(ctx, req.NamespacedName, u); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	set := &advancedStatefulSet{}
	if err := fromUnstructured(u, set); err != nil {
		r.log.Error(err, "StatefulSet not readable", "statefulSet", req.NamespacedName)
		return reconcile.Result{}, nil
	}
	if set.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || selector.Empty() {
		r.log.Error(err, "StatefulSet selector invalid or empty", "statefulSet", req.NamespacedName)
		return reconcile.Result{}, nil
	}
	// Terminating pods count too: a pod's name is reused only once it is gone.
	pods, err := ownedPods(ctx, r.reader, set.Namespace, selector, set.UID, false)
	if err != nil {
		return reconcile.Result{}, err
	}
	o := owner{obj: set, kind: AdvancedStatefulSetKind, selector: selector, template: &set.Spec.Template,
		currentRevision: set.Status.CurrentRevision}
	if set.Status.CollisionCount != nil {
		o.collisionCount = *set.Status.CollisionCount
	}
	revs, err := r.history.list(ctx, o)
	if err != nil {
		return reconcile.Result{}, err
	}
	current, update, collisionCount, err := r.history.active(ctx, o, revs)
	if err != nil {
		return reconcile.Result{}, err
	}
	in, byOrdinal, err := r.input(set, update.Name, pods)
	if err != nil {
		r.log.Error(err, "StatefulSet spec invalid", "statefulSet", req.NamespacedName)
		return reconcile.Result{}, nil
	}
	status := statefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    current.Name,
		UpdateRevision:     update.Name,
		CollisionCount:     &collisionCount,
		LabelSelector:      selector.String(),
		Conditions:         set.Status.Conditions,
	}
	r.calculateStatus(set, &status, pods)

	actErr := r.act(ctx, set, in, byOrdinal, current, update, &status)
	if !reflect.DeepEqual(status, set.Status) {
		if err := writeStatus(ctx, r.reader, r.client, u, &status); err != nil {
			return reconcile.Result{}, err
		}
	}
	live := map[string]bool{current.Name: true, update.Name: true}
	for _, p := range pods {
		live[revisionOf(p)] = true
	}
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	if err := r.history.truncate(ctx, revs, live, limit); err != nil {
		r.log.Error(err, "truncating history", "statefulSet", req.NamespacedName)
	}
	if wait := minReadySeconds(set); actErr == nil && wait > 0 && status.AvailableReplicas != status.ReadyReplicas {
		return reconcile.Result{RequeueAfter: time.Duration(wait) * time.Second}, nil
	}
	return reconcile.Result{}, actErr
}

func minReadySeconds(set *advancedStatefulSet) int32 {
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MinReadySeconds != nil {
		return *ru.MinReadySeconds
	}
	return 0
}

// ordinalOf is the number after the last "-" of a pod named <set>-<n>, or
// -1 (getParentNameAndOrdinal).
func ordinalOf(setName, podName string) int {
	i := strings.LastIndex(podName, "-")
	if i < 0 || podName[:i] != setName {
		return -1
	}
	n, err := strconv.Atoi(podName[i+1:])
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// input summarises the pods by ordinal for planStatefulSet.
func (r *statefulSetReconciler) input(set *advancedStatefulSet, update string, pods []*corev1.Pod) (stsInput, map[int]*corev1.Pod, error) {
	replicas := 1
	if set.Spec.Replicas != nil {
		replicas = int(*set.Spec.Replicas)
	}
	us := set.Spec.UpdateStrategy
	in := stsInput{
		pods:          make([]stsPod, replicas),
		monotonic:     set.Spec.PodManagementPolicy != string(appsv1.ParallelPodManagement),
		rollingUpdate: us.Type != string(appsv1.OnDeleteStatefulSetStrategyType),
	}
	var err error
	if ru := us.RollingUpdate; ru != nil {
		in.paused = ru.Paused
		if ru.Partition != nil {
			in.partition = int(*ru.Partition)
		}
		if in.maxUnavailable, err = statefulSetMaxUnavailable(ru.MaxUnavailable, replicas); err != nil {
			return in, nil, fmt.Errorf("spec.updateStrategy.rollingUpdate.maxUnavailable: %w", err)
		}
	} else {
		in.maxUnavailable = 1
	}
	if s := set.Spec.ScaleStrategy; s != nil && s.MaxUnavailable != nil {
		m, err := statefulSetMaxUnavailable(s.MaxUnavailable, replicas)
		if err != nil {
			return in, nil, fmt.Errorf("spec.scaleStrategy.maxUnavailable: %w", err)
		}
		in.scaleMaxUnavailable = &m
	}
	now := r.clock.Now()
	minReady := minReadySeconds(set)
	byOrdinal := map[int]*corev1.Pod{}
	maxOrdinal := replicas - 1
	for _, p := range pods {
		if ord := ordinalOf(set.Name, p.Name); ord >= 0 {
			byOrdinal[ord] = p
			maxOrdinal = max(maxOrdinal, ord)
		}
	}
	in.condemned = make([]stsPod, maxOrdinal+1-replicas)
	for ord, p := range byOrdinal {
		s := stsPod{
			exists:      true,
			finished:    p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed,
			terminating: p.DeletionTimestamp != nil,
			ready:       p.Status.Phase == corev1.PodRunning && isReady(p),
			available:   isRunningAndAvailable(p, minReady, now),
			updated:     revisionOf(p) == update,
		}
		s.healthy = lifecycleIsNormal(p) && s.ready && !s.terminating
		if ord < replicas {
			in.pods[ord] = s
		} else {
			in.condemned[ord-replicas] = s
		}
	}
	return in, byOrdinal, nil
}

// act carries out the pass's plan, or, when the plan is empty, brings
// pod states up to date (refreshPodState runs on every healthy pod in
// processReplica).
func (r *statefulSetReconciler) act(ctx context.Context, set *advancedStatefulSet, in stsInput, byOrdinal map[int]*corev1.Pod, current, update *appsv1.ControllerRevision, status *statefulSetStatus) error {
	var pods []*corev1.Pod
	for _, p := range byOrdinal {
		pods = append(pods, p)
	}
	if _, err := refreshPods(ctx, r.client, pods, r.clock.Now()); err != nil {
		return err
	}
	for _, a := range planStatefulSet(in) {
		if a.create {
			rev := current
			if a.atUpdate {
				rev = update
			}
			if err := r.createPod(ctx, set, a.ordinal, rev); err != nil {
				return err
			}
			continue
		}
		p := byOrdinal[a.ordinal]
		if err := r.client.Delete(ctx, p, client.Preconditions{UID: &p.UID}); client.IgnoreNotFound(err) != nil {
			return err
		}
		if a.forUpdate && revisionOf(p) == current.Name {
			status.CurrentReplicas--
		}
	}
	return nil
}

// createPod is newVersionedStatefulSetPod + CreateStatefulPod: the pod
// <set>-<ordinal> from the revision's template, with the StatefulSet
// identity (statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index
// — the PodIndexLabel gate is on by default — hostname, subdomain), the
// revision's full name as controller-revision-hash, lifecycle Normal (no
// preNormal hook), and the KruisePodReady readiness gate the pod webhook
// injects.
func (r *statefulSetReconciler) createPod(ctx context.Context, set *advancedStatefulSet, ordinal int, rev *appsv1.ControllerRevision) error {
	t, err := templateOfRevision(rev.Data.Raw)
	if err != nil {
		return err
	}
	p := podFromTemplate(t, set, metav1.TypeMeta{APIVersion: AdvancedStatefulSetKind.GroupVersion().String(), Kind: AdvancedStatefulSetKind.Kind})
	p.Name = fmt.Sprintf("%s-%d", set.Name, ordinal)
	p.Labels[appsv1.StatefulSetPodNameLabel] = p.Name
	p.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ordinal)
	p.Labels[appsv1.ControllerRevisionHashLabelKey] = rev.Name
	p.Labels[LabelLifecycleState] = lifecycleNormal
	p.Annotations[lifecycleTimestampAnnotation] = r.clock.Now().Format(time.RFC3339)
	p.Spec.Hostname = p.Name
	p.Spec.Subdomain = set.Spec.ServiceName
	addReadinessGate(&p.Spec, ConditionKruisePodReady)
	if err := r.client.Create(ctx, p); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating pod %s: %w", p.Name, err)
	}
	return nil
}

// calculateStatus is updateStatus + completeRollingUpdate: the current
// revision moves on once every pod is updated and ready.
func (r *statefulSetReconciler) calculateStatus(set *advancedStatefulSet, s *statefulSetStatus, pods []*corev1.Pod) {
	now, minReady := r.clock.Now(), minReadySeconds(set)
	for _, p := range pods {
		if ordinalOf(set.Name, p.Name) < 0 {
			continue
		}
		s.Replicas++ // isCreated: every listed pod has a phase
		rev := revisionOf(p)
		if p.Status.Phase == corev1.PodRunning && isReady(p) {
			s.ReadyReplicas++
			available := isRunningAndAvailable(p, minReady, now)
			if available {
				s.AvailableReplicas++
			}
			if rev == s.UpdateRevision {
				s.UpdatedReadyReplicas++
				if available {
					s.UpdatedAvailableReplicas++
				}
			}
		}
		if p.DeletionTimestamp == nil {
			if rev == s.CurrentRevision {
				s.CurrentReplicas++
			}
			if rev == s.UpdateRevision {
				s.UpdatedReplicas++
			}
		}
	}
	rollingUpdate := set.Spec.UpdateStrategy.Type != string(appsv1.OnDeleteStatefulSetStrategyType)
	if rollingUpdate && s.UpdatedReplicas == s.Replicas && s.ReadyReplicas == s.Replicas {
		s.CurrentReplicas = s.UpdatedReplicas
		s.CurrentRevision = s.UpdateRevision
	}
}
