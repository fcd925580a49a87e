// Package v1alpha1 holds Sluice's analysis API, group analysis.sluice.dev:
// AnalysisTemplate, ClusterAnalysisTemplate and AnalysisRun, plus the
// references a Rollout uses to ask for analysis.
//
// +kubebuilder:object:generate=true
// +groupName=analysis.sluice.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this package's kinds.
	GroupVersion = schema.GroupVersion{Group: "analysis.sluice.dev", Version: "v1alpha1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds this package's kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
