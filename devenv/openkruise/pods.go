package openkruise

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Labels and pod conditions OpenKruise's controllers write.
const (
	// LabelInstanceID names a CloneSet pod's instance (pod <cloneset>-<id>)
	// (apis/apps/v1alpha1/cloneset_types.go CloneSetInstanceID).
	LabelInstanceID = "apps.kruise.io/cloneset-instance-id"
	// LabelSpecifiedDelete marks a pod its controller (or a user) wants
	// deleted; a CloneSet's ReCreate update sets it, then deletes the pod
	// (apis/apps/v1alpha1/well_known_labels.go SpecifiedDeleteKey).
	LabelSpecifiedDelete = "apps.kruise.io/specified-delete"
	// LabelLifecycleState is a pod's lifecycle state (apis/apps/pub/lifecycle.go).
	LabelLifecycleState = "lifecycle.apps.kruise.io/state"
	// ConditionInPlaceUpdateReady gates the readiness of CloneSet pods
	// (pkg/util/inplaceupdate/inplace_update.go InjectReadinessGate).
	ConditionInPlaceUpdateReady corev1.PodConditionType = "InPlaceUpdateReady"
	// ConditionKruisePodReady gates the readiness of every pod a Kruise
	// workload owns (pkg/webhook/pod/mutating/pod_readiness.go).
	ConditionKruisePodReady corev1.PodConditionType = "KruisePodReady"

	lifecyclePreparingNormal = "PreparingNormal"
	lifecycleNormal          = "Normal"
)

// isActive is kubernetes pkg/controller IsPodActive: not finished and not
// being deleted. Both controllers count only active pods.
func isActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

func condition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func isReady(p *corev1.Pod) bool {
	c := condition(p, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

// isRunningAndAvailable: running, ready, and ready for minReadySeconds
// (kubernetes pkg/api/v1/pod IsPodAvailable).
func isRunningAndAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	if p.Status.Phase != corev1.PodRunning || !isReady(p) {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	c := condition(p, corev1.PodReady)
	return !c.LastTransitionTime.IsZero() && !c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).After(now)
}

// lifecycleIsNormal: no lifecycle state, or Normal. A pod in any other
// state (PreparingNormal right after creation) is not available to either
// controller (cloneset/sync IsPodAvailable, statefulset isHealthy).
func lifecycleIsNormal(p *corev1.Pod) bool {
	s := p.Labels[LabelLifecycleState]
	return s == "" || s == lifecycleNormal
}

func hasReadinessGate(p *corev1.Pod, t corev1.PodConditionType) bool {
	for _, g := range p.Spec.ReadinessGates {
		if g.ConditionType == t {
			return true
		}
	}
	return false
}

func addReadinessGate(spec *corev1.PodSpec, t corev1.PodConditionType) {
	for _, g := range spec.ReadinessGates {
		if g.ConditionType == t {
			return
		}
	}
	spec.ReadinessGates = append(spec.ReadinessGates, corev1.PodReadinessGate{ConditionType: t})
}

// missingGateConditions are the readiness-gate conditions OpenKruise sets
// True on its pods when they are absent: InPlaceUpdateReady (the in-place
// update control's Refresh, called by both controllers) and KruisePodReady
// (pkg/controller/podreadiness).
func missingGateConditions(p *corev1.Pod) []corev1.PodConditionType {
	var out []corev1.PodConditionType
	for _, t := range []corev1.PodConditionType{ConditionInPlaceUpdateReady, ConditionKruisePodReady} {
		if hasReadinessGate(p, t) && condition(p, t) == nil {
			out = append(out, t)
		}
	}
	return out
}

// podFromTemplate is kubernetes pkg/controller GetPodFromTemplate: the
// template's labels, annotations, finalizers and spec, generateName
// <owner>-, and the owner as controller.
func podFromTemplate(t *corev1.PodTemplateSpec, owner metav1.Object, ownerKind metav1.TypeMeta) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       owner.GetNamespace(),
			GenerateName:    owner.GetName() + "-",
			Labels:          map[string]string{},
			Annotations:     map[string]string{},
			Finalizers:      append([]string(nil), t.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner, ownerKind.GroupVersionKind())},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	for k, v := range t.Labels {
		p.Labels[k] = v
	}
	for k, v := range t.Annotations {
		p.Annotations[k] = v
	}
	return p
}

func revisionOf(p *corev1.Pod) string { return p.Labels[appsv1.ControllerRevisionHashLabelKey] }

// phaseOrder is Pending < Unknown < Running, as kubernetes ranks pods
// (pkg/controller/controller_utils.go podPhaseToOrdinal).
func phaseOrder(p corev1.PodPhase) int {
	switch p {
	case corev1.PodPending:
		return 0
	case corev1.PodUnknown:
		return 1
	case corev1.PodRunning:
		return 2
	}
	return 0
}

// lessActive orders pods the way kubernetes' ActivePods sorts them (the
// order CloneSet updates and deletes pods in: cloneset/core
// GetPodsSortFunc): unscheduled first, then Pending < Unknown < Running,
// not ready before ready, ready for less time before more, more restarts
// first, newer before older (then by name, for a stable order).
func lessActive(a, b *corev1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if phaseOrder(a.Status.Phase) != phaseOrder(b.Status.Phase) {
		return phaseOrder(a.Status.Phase) < phaseOrder(b.Status.Phase)
	}
	if isReady(a) != isReady(b) {
		return !isReady(a)
	}
	if isReady(a) {
		ta, tb := condition(a, corev1.PodReady).LastTransitionTime, condition(b, corev1.PodReady).LastTransitionTime
		if !ta.Equal(&tb) {
			return afterOrZero(ta, tb)
		}
	}
	if ra, rb := maxRestarts(a), maxRestarts(b); ra != rb {
		return ra > rb
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return afterOrZero(a.CreationTimestamp, b.CreationTimestamp)
	}
	return a.Name < b.Name
}

func afterOrZero(a, b metav1.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero()
	}
	return a.After(b.Time)
}

func maxRestarts(p *corev1.Pod) int32 {
	var n int32
	for _, s := range p.Status.ContainerStatuses {
		n = max(n, s.RestartCount)
	}
	return n
}

// lifecycleTimestampAnnotation records when the lifecycle state was last
// set (pkg/util/lifecycle SetPodLifecycle).
const lifecycleTimestampAnnotation = "lifecycle.apps.kruise.io/timestamp"

// refreshPods brings pod states up to date as both controllers'
// refreshPodState do before updating: readiness-gate conditions missing
// are set True, and a pod created PreparingNormal becomes Normal once
// scheduled (no preNormal hook). It reports whether a lifecycle changed:
// the pass then stops there, as OpenKruise's does.
func refreshPods(ctx context.Context, c client.Client, pods []*corev1.Pod, now time.Time) (bool, error) {
	changed := false
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if missing := missingGateConditions(p); len(missing) > 0 {
			var conds []corev1.PodCondition
			for _, t := range missing {
				conds = append(conds, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now)})
			}
			patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": conds}})
			if err != nil {
				return changed, err
			}
			if err := c.Status().Patch(ctx, p, client.RawPatch(types.StrategicMergePatchType, patch)); client.IgnoreNotFound(err) != nil {
				return changed, err
			}
		}
		if p.Labels[LabelLifecycleState] == lifecyclePreparingNormal && p.Spec.NodeName != "" {
			patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q},"annotations":{%q:%q}}}`,
				LabelLifecycleState, lifecycleNormal, lifecycleTimestampAnnotation, now.Format(time.RFC3339))
			if err := c.Patch(ctx, p, client.RawPatch(types.StrategicMergePatchType, []byte(patch))); client.IgnoreNotFound(err) != nil {
				return changed, err
			}
			changed = true
		}
	}
	return changed, nil
}
