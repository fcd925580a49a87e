package traffic

import (
	"encoding/json"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Revision label keys: the canary Service selects the new revision's pods
// by one of them, the stable Service is pinned to the stable revision's.
const (
	// PodTemplateHashLabel for Deployments, CloneSets and Advanced DaemonSets.
	PodTemplateHashLabel = "pod-template-hash"
	// ControllerRevisionHashLabel for StatefulSets (native and Advanced) and native DaemonSets.
	ControllerRevisionHashLabel = "controller-revision-hash"
)

// CanaryServiceName is the Service the routing sends canary traffic to:
// <service>-canary, or the stable Service itself when the Rollout
// disables the canary Service (disableGenerateCanaryService).
func CanaryServiceName(stable string, disableGenerate bool) string {
	if disableGenerate {
		return stable
	}
	return stable + "-canary"
}

// NewCanaryService builds the canary Service from the stable one: the same
// labels, annotations and spec with everything the API server allocates
// per Service cleared (cluster IPs, node ports, external and load balancer
// IPs, IP families), selecting only pods of revision by revisionKey.
func NewCanaryService(stable *corev1.Service, name, revisionKey, revision string, owner *metav1.OwnerReference) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   stable.Namespace,
			Labels:      maps.Clone(stable.Labels),
			Annotations: maps.Clone(stable.Annotations),
		},
		Spec: *stable.Spec.DeepCopy(),
	}
	if owner != nil {
		s.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	s.Spec.ClusterIP = ""
	s.Spec.ClusterIPs = nil
	s.Spec.ExternalIPs = nil
	s.Spec.IPFamilies = nil
	s.Spec.IPFamilyPolicy = nil
	s.Spec.LoadBalancerIP = ""
	s.Spec.HealthCheckNodePort = 0
	for i := range s.Spec.Ports {
		s.Spec.Ports[i].NodePort = 0
	}
	s.Spec.Selector = maps.Clone(stable.Spec.Selector)
	if s.Spec.Selector == nil {
		s.Spec.Selector = map[string]string{}
	}
	s.Spec.Selector[revisionKey] = revision
	return s
}

// selectorPatch is a merge patch setting (or, with a nil value, removing)
// one selector key.
func selectorPatch(key string, value *string) []byte {
	var v any
	if value != nil {
		v = *value
	}
	b, err := json.Marshal(map[string]any{"spec": map[string]any{"selector": map[string]any{key: v}}})
	if err != nil {
		panic(fmt.Sprintf("marshalling a selector patch: %v", err)) // a map of strings always marshals
	}
	return b
}
