package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// Rollout releases a workload's new pod template in steps. It is the
// Kruise Rollout v1beta1 API; v1beta1 is the storage version.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.phase`,description="The rollout status phase"
// +kubebuilder:printcolumn:name="CANARY_STEP",type=integer,JSONPath=`.status.currentStepIndex`,description="The rollout canary status step"
// +kubebuilder:printcolumn:name="CANARY_STATE",type=string,JSONPath=`.status.currentStepState`,description="The rollout canary status step state"
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
	// WorkloadRef is the workload whose template changes are released.
	WorkloadRef ObjectRef `json:"workloadRef"`
	// Strategy is how a release proceeds.
	Strategy RolloutStrategy `json:"strategy"`
	// Disabled stops the Rollout from taking over releases; a release in
	// progress is finished and the workload released.
	// +kubebuilder:default=false
	// +optional
	Disabled bool `json:"disabled"`
}

// ObjectRef points at a workload or another object in the Rollout's namespace.
type ObjectRef struct {
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// RolloutStrategy holds exactly one of Canary or BlueGreen.
//
// +kubebuilder:validation:XValidation:rule="has(self.canary) != has(self.blueGreen)",message="set exactly one of canary or blueGreen"
type RolloutStrategy struct {
	// Paused pauses the whole release until set back to false.
	// +optional
	Paused bool `json:"paused,omitempty"`
	// +optional
	Canary *CanaryStrategy `json:"canary,omitempty"`
	// +optional
	BlueGreen *BlueGreenStrategy `json:"blueGreen,omitempty"`

	// Analysis runs for the whole release, beside the steps (Sluice).
	// +optional
	Analysis *analysisv1alpha1.RolloutAnalysis `json:"analysis,omitempty"`
	// ProgressDeadlineSeconds is how long a batch may take to become ready
	// before the Rollout reports it stuck, naming the pods (Sluice).
	// +optional
	// +kubebuilder:validation:Minimum=1
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`
}

// CanaryStrategy releases the new version in steps, by replicas and traffic.
type CanaryStrategy struct {
	// Steps of the release, in order.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=50
	Steps []CanaryStep `json:"steps,omitempty"`
	// TrafficRoutings says how traffic reaches the new version (at most one).
	// +optional
	// +kubebuilder:validation:MaxItems=1
	TrafficRoutings []TrafficRoutingRef `json:"trafficRoutings,omitempty"`
	// FailureThreshold is how many (or which percentage of) updated pods may
	// be unready for a batch to count as ready. Default: the workload's
	// maxUnavailable.
	// +optional
	// +kubebuilder:validation:XIntOrString
	FailureThreshold *intstr.IntOrString `json:"failureThreshold,omitempty"`
	// PatchPodTemplateMetadata adds labels and annotations to the canary
	// pods (canary-style Deployment only).
	// +optional
	PatchPodTemplateMetadata *PatchPodTemplateMetadata `json:"patchPodTemplateMetadata,omitempty"`
	// EnableExtraWorkloadForCanary runs the new version in an extra canary
	// Deployment instead of partitioning the workload (Deployment only).
	// +optional
	EnableExtraWorkloadForCanary bool `json:"enableExtraWorkloadForCanary,omitempty"`
	// TrafficRoutingRef names a TrafficRouting object.
	// +optional
	TrafficRoutingRef string `json:"trafficRoutingRef,omitempty"`
	// DisableGenerateCanaryService routes to the stable Service name instead
	// of creating <service>-canary.
	// +optional
	DisableGenerateCanaryService bool `json:"disableGenerateCanaryService,omitempty"`
}

// BlueGreenStrategy brings the new version up beside the old one and then
// switches traffic over.
type BlueGreenStrategy struct {
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
	TrafficRoutingRef string `json:"trafficRoutingRef,omitempty"`
	// +optional
	DisableGenerateCanaryService bool `json:"disableGenerateCanaryService,omitempty"`
}

// CanaryStep is one batch: how many pods run the new version, how much
// traffic reaches them, and what happens before the next step.
type CanaryStep struct {
	TrafficRoutingStrategy `json:",inline"`
	// Replicas of the new version at this step: a number or "N%".
	// +optional
	// +kubebuilder:validation:XIntOrString
	Replicas *intstr.IntOrString `json:"replicas,omitempty"`
	// Pause after the step; without a duration it waits for approval.
	// +optional
	Pause RolloutPause `json:"pause,omitempty"`
	// Analysis judges the step before its pause (Sluice).
	// +optional
	Analysis *analysisv1alpha1.RolloutAnalysis `json:"analysis,omitempty"`
}

// TrafficRoutingStrategy is how traffic reaches the new version at a step.
type TrafficRoutingStrategy struct {
	// Traffic is the share of traffic for the new version, "N%".
	// +optional
	Traffic *string `json:"traffic,omitempty"`
	// RequestHeaderModifier changes the headers of requests to the new version.
	// +optional
	RequestHeaderModifier *gatewayv1.HTTPHeaderFilter `json:"requestHeaderModifier,omitempty"`
	// Matches route matching requests to the new version; they are ORed,
	// the conditions inside one match are ANDed.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Matches []HttpRouteMatch `json:"matches,omitempty"`
}

// HttpRouteMatch selects requests by path, headers and query parameters.
type HttpRouteMatch struct {
	// +optional
	Path *gatewayv1.HTTPPathMatch `json:"path,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Headers []gatewayv1.HTTPHeaderMatch `json:"headers,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	QueryParams []gatewayv1.HTTPQueryParamMatch `json:"queryParams,omitempty"`
}

// RolloutPause is the wait after a step.
type RolloutPause struct {
	// Duration in seconds; nil waits for approval.
	// +optional
	Duration *int32 `json:"duration,omitempty"`
}

// TrafficRoutingRef is one routing configuration for the release.
//
// +kubebuilder:validation:XValidation:rule="has(self.ingress) || has(self.gateway) || has(self.customNetworkRefs)",message="set one of ingress, gateway or customNetworkRefs"
type TrafficRoutingRef struct {
	// Service selects the stable pods (and, before the release, all pods).
	// +kubebuilder:validation:MinLength=1
	Service string `json:"service"`
	// GracePeriodSeconds to wait after each routing change.
	// +optional
	// +kubebuilder:default=3
	GracePeriodSeconds int32 `json:"gracePeriodSeconds,omitempty"`
	// +optional
	Ingress *IngressTrafficRouting `json:"ingress,omitempty"`
	// +optional
	Gateway *GatewayTrafficRouting `json:"gateway,omitempty"`
	// +optional
	CustomNetworkRefs []ObjectRef `json:"customNetworkRefs,omitempty"`
}

// IngressTrafficRouting names the stable Ingress and its controller type.
type IngressTrafficRouting struct {
	// ClassType is the ingress controller: nginx (default), aliyun-alb, mse,
	// higress, or a type with a Lua script in the configuration ConfigMap.
	// +optional
	// +kubebuilder:default=nginx
	ClassType string `json:"classType,omitempty"`
	// Name of the Ingress in the Rollout's namespace.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// GatewayTrafficRouting names the HTTPRoute to change.
type GatewayTrafficRouting struct {
	// +kubebuilder:validation:MinLength=1
	HTTPRouteName *string `json:"httpRouteName,omitempty"`
}

// PatchPodTemplateMetadata is added to canary pods.
type PatchPodTemplateMetadata struct {
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

func init() {
	SchemeBuilder.Register(&Rollout{}, &RolloutList{})
}
