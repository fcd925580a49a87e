package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// Annotations of the v1alpha1 API.
const (
	// RollingStyleAnnotation selects "partition" or "canary" (the default
	// for Deployments) in v1alpha1; v1beta1 has enableExtraWorkloadForCanary.
	RollingStyleAnnotation = "rollouts.kruise.io/rolling-style"
	// TrafficRoutingAnnotation names a TrafficRouting object; v1beta1 has
	// trafficRoutingRef.
	TrafficRoutingAnnotation = "rollouts.kruise.io/trafficrouting"
)

// Rollout is the Kruise Rollout v1alpha1 API.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.phase`,description="The rollout status phase"
// +kubebuilder:printcolumn:name="CANARY_STEP",type=integer,JSONPath=`.status.canaryStatus.currentStepIndex`,description="The rollout canary status step"
// +kubebuilder:printcolumn:name="CANARY_STATE",type=string,JSONPath=`.status.canaryStatus.currentStepState`,description="The rollout canary status step state"
// +kubebuilder:printcolumn:name="MESSAGE",type=string,JSONPath=`.status.message`,description="The rollout canary status message"
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Rollout struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RolloutSpec   `json:"spec,omitempty"`
	Status RolloutStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// RolloutList is a list of Rollouts.
type RolloutList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Rollout `json:"items"`
}

// RolloutSpec is what the user asks for.
type RolloutSpec struct {
	// ObjectRef points at the workload.
	ObjectRef ObjectRef `json:"objectRef"`
	// Strategy is how a release proceeds.
	Strategy RolloutStrategy `json:"strategy"`
	// DeprecatedRolloutID is ignored; use the workload's
	// rollouts.kruise.io/rollout-id label.
	// +optional
	DeprecatedRolloutID string `json:"rolloutID,omitempty"`
	// Disabled stops the Rollout from taking over releases.
	// +kubebuilder:default=false
	// +optional
	Disabled bool `json:"disabled"`
}

// ObjectRef holds the workload reference.
type ObjectRef struct {
	// +optional
	WorkloadRef *WorkloadRef `json:"workloadRef,omitempty"`
}

// WorkloadRef points at a workload in the Rollout's namespace.
type WorkloadRef struct {
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// RolloutStrategy holds the canary strategy.
type RolloutStrategy struct {
	// +optional
	Paused bool `json:"paused,omitempty"`
	// +optional
	Canary *CanaryStrategy `json:"canary,omitempty"`

	// Analysis runs for the whole release (Sluice).
	// +optional
	Analysis *analysisv1alpha1.RolloutAnalysis `json:"analysis,omitempty"`
	// ProgressDeadlineSeconds (Sluice); see v1beta1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`
}

// CanaryStrategy releases the new version in steps.
type CanaryStrategy struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=50
	Steps []CanaryStep `json:"steps,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxItems=1
	TrafficRoutings []TrafficRoutingRef `json:"trafficRoutings,omitempty"`
	// +optional
	// +kubebuilder:validation:XIntOrString
	FailureThreshold *intstr.IntOrString `json:"failureThreshold,omitempty"`
	// +optional
	PatchPodTemplateMetadata *v1beta1.PatchPodTemplateMetadata `json:"patchPodTemplateMetadata,omitempty"`
	// +optional
	DisableGenerateCanaryService bool `json:"disableGenerateCanaryService,omitempty"`
}

// CanaryStep is one batch.
type CanaryStep struct {
	TrafficRoutingStrategy `json:",inline"`
	// +optional
	// +kubebuilder:validation:XIntOrString
	Replicas *intstr.IntOrString `json:"replicas,omitempty"`
	// +optional
	Pause v1beta1.RolloutPause `json:"pause,omitempty"`
	// Analysis judges the step before its pause (Sluice).
	// +optional
	Analysis *analysisv1alpha1.RolloutAnalysis `json:"analysis,omitempty"`
}

// TrafficRoutingStrategy is how traffic reaches the new version at a step.
type TrafficRoutingStrategy struct {
	// Weight is the percentage of traffic for the new version.
	// +optional
	Weight *int32 `json:"weight,omitempty"`
	// +optional
	RequestHeaderModifier *gatewayv1.HTTPHeaderFilter `json:"requestHeaderModifier,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Matches []HttpRouteMatch `json:"matches,omitempty"`
}

// HttpRouteMatch selects requests by headers (v1beta1 adds path and query).
type HttpRouteMatch struct {
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Headers []gatewayv1.HTTPHeaderMatch `json:"headers,omitempty"`
}

// TrafficRoutingRef is one routing configuration for the release.
//
// +kubebuilder:validation:XValidation:rule="has(self.ingress) || has(self.gateway) || has(self.customNetworkRefs)",message="set one of ingress, gateway or customNetworkRefs"
type TrafficRoutingRef struct {
	// +kubebuilder:validation:MinLength=1
	Service string `json:"service"`
	// +optional
	// +kubebuilder:default=3
	GracePeriodSeconds int32 `json:"gracePeriodSeconds,omitempty"`
	// +optional
	Ingress *v1beta1.IngressTrafficRouting `json:"ingress,omitempty"`
	// +optional
	Gateway *v1beta1.GatewayTrafficRouting `json:"gateway,omitempty"`
	// +optional
	CustomNetworkRefs []v1beta1.ObjectRef `json:"customNetworkRefs,omitempty"`
}

// RolloutStatus is what the controller observed and decided.
type RolloutStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	CanaryStatus *CanaryStatus `json:"canaryStatus,omitempty"`
	// +optional
	Conditions []v1beta1.RolloutCondition `json:"conditions,omitempty"`
	// +optional
	Phase v1beta1.RolloutPhase `json:"phase,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// Analysis is the state of the release's AnalysisRuns (Sluice).
	// +optional
	Analysis *analysisv1alpha1.RolloutAnalysisStatus `json:"analysis,omitempty"`
	// Release is the release in progress, as data (Sluice).
	// +optional
	Release *v1beta1.ReleaseStatus `json:"release,omitempty"`
	// LastRelease is how the last release ended (Sluice).
	// +optional
	LastRelease *v1beta1.ReleaseRecord `json:"lastRelease,omitempty"`
}

// CanaryStatus is the progress of a canary release.
type CanaryStatus struct {
	// +optional
	ObservedWorkloadGeneration int64 `json:"observedWorkloadGeneration,omitempty"`
	// +optional
	ObservedRolloutID string `json:"observedRolloutID,omitempty"`
	// +optional
	RolloutHash string `json:"rolloutHash,omitempty"`
	// +optional
	StableRevision string `json:"stableRevision,omitempty"`
	CanaryRevision string `json:"canaryRevision"`
	// +optional
	PodTemplateHash     string `json:"podTemplateHash"`
	CanaryReplicas      int32  `json:"canaryReplicas"`
	CanaryReadyReplicas int32  `json:"canaryReadyReplicas"`
	// +optional
	NextStepIndex int32 `json:"nextStepIndex"`
	// +optional
	CurrentStepIndex int32                   `json:"currentStepIndex"`
	CurrentStepState v1beta1.CanaryStepState `json:"currentStepState"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	LastUpdateTime *metav1.Time `json:"lastUpdateTime,omitempty"`
	// +optional
	FinalisingStep v1beta1.FinalisingStepType `json:"finalisingStep"`
}

func init() {
	SchemeBuilder.Register(&Rollout{}, &RolloutList{})
}
