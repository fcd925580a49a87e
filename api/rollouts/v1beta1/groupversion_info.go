// Package v1beta1 is the storage version of the rollouts.kruise.io Rollout
// API, field for field compatible with Kruise Rollout 0.6, plus Sluice's
// optional analysis and progress-deadline fields.
//
// +kubebuilder:object:generate=true
// +groupName=rollouts.kruise.io
package v1beta1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this package's kinds.
	GroupVersion = schema.GroupVersion{Group: "rollouts.kruise.io", Version: "v1beta1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds this package's kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
