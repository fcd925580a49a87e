package openkruise

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The kinds the stand-in plays the controllers of.
var (
	CloneSetKind            = schema.GroupVersionKind{Group: "apps.kruise.io", Version: "v1alpha1", Kind: "CloneSet"}
	AdvancedStatefulSetKind = schema.GroupVersionKind{Group: "apps.kruise.io", Version: "v1beta1", Kind: "StatefulSet"}
	AdvancedDaemonSetKind   = schema.GroupVersionKind{Group: "apps.kruise.io", Version: "v1alpha1", Kind: "DaemonSet"}
)

// The fields of OpenKruise's types the stand-in reads and writes, with the
// JSON names and omitempty of apis/apps/v1alpha1/cloneset_types.go and
// apis/apps/v1beta1/statefulset_types.go (OpenKruise's Go modules are not
// available; the objects travel as unstructured).

type cloneSet struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              cloneSetSpec   `json:"spec"`
	Status            cloneSetStatus `json:"status"`
}

type cloneSetSpec struct {
	Replicas             *int32                 `json:"replicas,omitempty"`
	Selector             *metav1.LabelSelector  `json:"selector"`
	Template             corev1.PodTemplateSpec `json:"template"`
	ScaleStrategy        cloneSetScaleStrategy  `json:"scaleStrategy,omitempty"`
	UpdateStrategy       cloneSetUpdateStrategy `json:"updateStrategy,omitempty"`
	RevisionHistoryLimit *int32                 `json:"revisionHistoryLimit,omitempty"`
	MinReadySeconds      int32                  `json:"minReadySeconds,omitempty"`
}

type cloneSetScaleStrategy struct {
	PodsToDelete   []string            `json:"podsToDelete,omitempty"`
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

type cloneSetUpdateStrategy struct {
	Type           string              `json:"type,omitempty"`
	Partition      *intstr.IntOrString `json:"partition,omitempty"`
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
	MaxSurge       *intstr.IntOrString `json:"maxSurge,omitempty"`
	Paused         bool                `json:"paused,omitempty"`
}

// cloneSetStatus: replicas, readyReplicas, availableReplicas,
// updatedReplicas and updatedReadyReplicas are always written; the rest
// only when set.
type cloneSetStatus struct {
	ObservedGeneration       int64            `json:"observedGeneration,omitempty"`
	Replicas                 int32            `json:"replicas"`
	ReadyReplicas            int32            `json:"readyReplicas"`
	AvailableReplicas        int32            `json:"availableReplicas"`
	UpdatedReplicas          int32            `json:"updatedReplicas"`
	UpdatedReadyReplicas     int32            `json:"updatedReadyReplicas"`
	UpdatedAvailableReplicas int32            `json:"updatedAvailableReplicas,omitempty"`
	ExpectedUpdatedReplicas  int32            `json:"expectedUpdatedReplicas,omitempty"`
	UpdateRevision           string           `json:"updateRevision,omitempty"`
	CurrentRevision          string           `json:"currentRevision,omitempty"`
	CollisionCount           *int32           `json:"collisionCount,omitempty"`
	Conditions               []map[string]any `json:"conditions,omitempty"`
	LabelSelector            string           `json:"labelSelector,omitempty"`
}

type advancedStatefulSet struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              statefulSetSpec   `json:"spec"`
	Status            statefulSetStatus `json:"status"`
}

type statefulSetSpec struct {
	Replicas             *int32                    `json:"replicas,omitempty"`
	Selector             *metav1.LabelSelector     `json:"selector"`
	Template             corev1.PodTemplateSpec    `json:"template"`
	ServiceName          string                    `json:"serviceName,omitempty"`
	PodManagementPolicy  string                    `json:"podManagementPolicy,omitempty"`
	UpdateStrategy       statefulSetUpdateStrategy `json:"updateStrategy,omitempty"`
	RevisionHistoryLimit *int32                    `json:"revisionHistoryLimit,omitempty"`
	ScaleStrategy        *struct {
		MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
	} `json:"scaleStrategy,omitempty"`
}

type statefulSetUpdateStrategy struct {
	Type          string `json:"type,omitempty"`
	RollingUpdate *struct {
		Partition       *int32              `json:"partition,omitempty"`
		MaxUnavailable  *intstr.IntOrString `json:"maxUnavailable,omitempty"`
		PodUpdatePolicy string              `json:"podUpdatePolicy,omitempty"`
		Paused          bool                `json:"paused,omitempty"`
		MinReadySeconds *int32              `json:"minReadySeconds,omitempty"`
	} `json:"rollingUpdate,omitempty"`
}

type statefulSetStatus struct {
	ObservedGeneration       int64            `json:"observedGeneration,omitempty"`
	Replicas                 int32            `json:"replicas"`
	ReadyReplicas            int32            `json:"readyReplicas"`
	AvailableReplicas        int32            `json:"availableReplicas"`
	CurrentReplicas          int32            `json:"currentReplicas"`
	UpdatedReplicas          int32            `json:"updatedReplicas"`
	UpdatedReadyReplicas     int32            `json:"updatedReadyReplicas,omitempty"`
	UpdatedAvailableReplicas int32            `json:"updatedAvailableReplicas,omitempty"`
	CurrentRevision          string           `json:"currentRevision,omitempty"`
	UpdateRevision           string           `json:"updateRevision,omitempty"`
	CollisionCount           *int32           `json:"collisionCount,omitempty"`
	Conditions               []map[string]any `json:"conditions,omitempty"`
	LabelSelector            string           `json:"labelSelector,omitempty"`
}

// advancedDaemonSet: apis/apps/v1alpha1/daemonset_types.go.
type advancedDaemonSet struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              daemonSetSpec   `json:"spec"`
	Status            daemonSetStatus `json:"status"`
}

type daemonSetSpec struct {
	Selector       *metav1.LabelSelector  `json:"selector"`
	Template       corev1.PodTemplateSpec `json:"template"`
	UpdateStrategy struct {
		Type          string `json:"type,omitempty"`
		RollingUpdate *struct {
			Type           string              `json:"rollingUpdateType,omitempty"`
			MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
			MaxSurge       *intstr.IntOrString `json:"maxSurge,omitempty"`
			Partition      *intstr.IntOrString `json:"partition,omitempty"`
			Paused         *bool               `json:"paused,omitempty"`
		} `json:"rollingUpdate,omitempty"`
	} `json:"updateStrategy,omitempty"`
	MinReadySeconds      int32  `json:"minReadySeconds,omitempty"`
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`
}

// daemonSetStatus: the first five counts are always written.
type daemonSetStatus struct {
	CurrentNumberScheduled int32            `json:"currentNumberScheduled"`
	NumberMisscheduled     int32            `json:"numberMisscheduled"`
	DesiredNumberScheduled int32            `json:"desiredNumberScheduled"`
	NumberReady            int32            `json:"numberReady"`
	ObservedGeneration     int64            `json:"observedGeneration,omitempty"`
	UpdatedNumberScheduled int32            `json:"updatedNumberScheduled"`
	NumberAvailable        int32            `json:"numberAvailable,omitempty"`
	NumberUnavailable      int32            `json:"numberUnavailable,omitempty"`
	CollisionCount         *int32           `json:"collisionCount,omitempty"`
	Conditions             []map[string]any `json:"conditions,omitempty"`
	DaemonSetHash          string           `json:"daemonSetHash,omitempty"`
}

func runtimeRaw(data []byte) runtime.RawExtension { return runtime.RawExtension{Raw: data} }

func fromUnstructured(u *unstructured.Unstructured, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into)
}

// statusMap is a status (a pointer to it) as the API stores it (omitempty
// fields left out).
func statusMap(status any) (map[string]any, error) {
	return runtime.DefaultUnstructuredConverter.ToUnstructured(status)
}
