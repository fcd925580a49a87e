package v1alpha1

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// Finalizers of the TrafficRouting protocol, as Kruise Rollout names them.
const (
	// ProgressingRolloutFinalizerPrefix starts the finalizer a Rollout puts
	// on the TrafficRouting it uses while its release is in progress:
	// progressing.rollouts.kruise.io/<rollout>. The routing stays changed
	// while any such finalizer is there.
	ProgressingRolloutFinalizerPrefix = "progressing.rollouts.kruise.io"
	// TrafficRoutingFinalizer keeps a deleted TrafficRouting until its
	// routing objects are restored.
	TrafficRoutingFinalizer = "rollouts.kruise.io/trafficrouting"
)

// ProgressingRolloutFinalizer is the finalizer Rollout rollout puts on the
// TrafficRouting it uses.
func ProgressingRolloutFinalizer(rollout string) string {
	return ProgressingRolloutFinalizerPrefix + "/" + rollout
}

// HoldingRollouts returns the Rollouts whose finalizers hold tr, in the
// order of its finalizers.
func (tr *TrafficRouting) HoldingRollouts() []string {
	var out []string
	for _, f := range tr.Finalizers {
		if name, ok := strings.CutPrefix(f, ProgressingRolloutFinalizerPrefix+"/"); ok {
			out = append(out, name)
		}
	}
	return out
}

// TrafficRouting is one change of the routing shared by several Rollouts
// (a full-link canary: a front end and the services behind it released
// together). The change is made while any Rollout that names it releases,
// and undone when the last one is done. It routes to the stable Service
// itself (no canary Service): what reaches the new pods behind it is up to
// the mesh or the services downstream, usually by the header the strategy
// matches or sets.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.phase`,description="The TrafficRouting status phase"
// +kubebuilder:printcolumn:name="MESSAGE",type=string,JSONPath=`.status.message`,description="The TrafficRouting canary status message"
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type TrafficRouting struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TrafficRoutingSpec   `json:"spec,omitempty"`
	Status TrafficRoutingStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// TrafficRoutingList is a list of TrafficRoutings.
type TrafficRoutingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrafficRouting `json:"items"`
}

// TrafficRoutingSpec says which routing objects change and how.
type TrafficRoutingSpec struct {
	// ObjectRef is the routing to change: a Service and its Ingress,
	// HTTPRoute or custom objects. Kruise uses the first entry only;
	// Sluice's admission accepts exactly one.
	ObjectRef []TrafficRoutingRef `json:"objectRef"`
	// Strategy is the change: matching requests (or a weight) routed with
	// the header modifier applied.
	Strategy TrafficRoutingStrategy `json:"strategy"`
}

// TrafficRoutingStatus is what the controller observed and did.
type TrafficRoutingStatus struct {
	// ObservedGeneration is the generation the status was written for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase is where the TrafficRouting is in its life.
	// +optional
	Phase TrafficRoutingPhase `json:"phase,omitempty"`
	// Message says what it does, or why it cannot.
	// +optional
	Message string `json:"message,omitempty"`
}

// TrafficRoutingPhase is the phase of a TrafficRouting.
type TrafficRoutingPhase string

// The phases, as Kruise Rollout names them.
const (
	// TrafficRoutingPhaseInitial: the routing objects are not checked yet.
	TrafficRoutingPhaseInitial TrafficRoutingPhase = "Initial"
	// TrafficRoutingPhaseHealthy: the routing objects exist and are as the
	// user wrote them.
	TrafficRoutingPhaseHealthy TrafficRoutingPhase = "Healthy"
	// TrafficRoutingPhaseProgressing: a Rollout holds it; the strategy is
	// applied to the routing objects.
	TrafficRoutingPhaseProgressing TrafficRoutingPhase = "Progressing"
	// TrafficRoutingPhaseFinalizing: no Rollout holds it any more; the
	// routing objects are being restored.
	TrafficRoutingPhaseFinalizing TrafficRoutingPhase = "Finalizing"
	// TrafficRoutingPhaseTerminating: it is deleted; the routing objects
	// are being restored before it goes.
	TrafficRoutingPhaseTerminating TrafficRoutingPhase = "Terminating"
)

// V1beta1Refs are the objectRefs in the shape the traffic package takes.
func (s *TrafficRoutingSpec) V1beta1Refs() []v1beta1.TrafficRoutingRef {
	return routingsUp(s.ObjectRef)
}

// V1beta1Ref is the first objectRef (the one Kruise uses) in the shape
// the traffic package takes, and false when there is none.
func (s *TrafficRoutingSpec) V1beta1Ref() (v1beta1.TrafficRoutingRef, bool) {
	refs := s.V1beta1Refs()
	if len(refs) == 0 {
		return v1beta1.TrafficRoutingRef{}, false
	}
	return refs[0], true
}

// V1beta1Strategy is the strategy in the shape of a v1beta1 step: weight
// N becomes traffic "N%".
func (s *TrafficRoutingStrategy) V1beta1Strategy() v1beta1.TrafficRoutingStrategy {
	out := v1beta1.TrafficRoutingStrategy{RequestHeaderModifier: s.RequestHeaderModifier.DeepCopy()}
	if s.Weight != nil {
		t := fmt.Sprintf("%d%%", *s.Weight)
		out.Traffic = &t
	}
	for _, m := range s.Matches {
		out.Matches = append(out.Matches, v1beta1.HttpRouteMatch{Headers: copyHeaders(m.Headers)})
	}
	return out
}

func init() {
	SchemeBuilder.Register(&TrafficRouting{}, &TrafficRoutingList{})
}
