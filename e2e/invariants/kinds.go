package invariants

import (
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kind is one kind of object the checker watches.
type Kind int

// The watched kinds. OpenKruise's, the Gateway API's and Sluice's own are
// watched only when their CRDs exist.
const (
	Pod Kind = iota
	ReplicaSet
	Deployment
	StatefulSet
	CloneSet
	AdvancedStatefulSet
	Service
	EndpointSlice
	Ingress
	HTTPRoute
	AnalysisRun
	Rollout
	numKinds
)

type kindInfo struct {
	name     string
	gvr      schema.GroupVersionResource
	optional bool // served only when a CRD is installed
}

func (k Kind) info() kindInfo {
	switch k {
	case Pod:
		return kindInfo{"Pod", schema.GroupVersionResource{Version: "v1", Resource: "pods"}, false}
	case ReplicaSet:
		return kindInfo{"ReplicaSet", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}, false}
	case Deployment:
		return kindInfo{"Deployment", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, false}
	case StatefulSet:
		return kindInfo{"StatefulSet", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, false}
	case CloneSet:
		return kindInfo{"CloneSet", schema.GroupVersionResource{Group: "apps.kruise.io", Version: "v1alpha1", Resource: "clonesets"}, true}
	case AdvancedStatefulSet:
		return kindInfo{"AdvancedStatefulSet", schema.GroupVersionResource{Group: "apps.kruise.io", Version: "v1beta1", Resource: "statefulsets"}, true}
	case Service:
		return kindInfo{"Service", schema.GroupVersionResource{Version: "v1", Resource: "services"}, false}
	case EndpointSlice:
		return kindInfo{"EndpointSlice", schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}, false}
	case Ingress:
		return kindInfo{"Ingress", schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"}, false}
	case HTTPRoute:
		return kindInfo{"HTTPRoute", schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}, true}
	case AnalysisRun:
		return kindInfo{"AnalysisRun", schema.GroupVersionResource{Group: "analysis.sluice.dev", Version: "v1alpha1", Resource: "analysisruns"}, true}
	case Rollout:
		return kindInfo{"Rollout", schema.GroupVersionResource{Group: "rollouts.kruise.io", Version: "v1beta1", Resource: "rollouts"}, true}
	}
	panic(fmt.Sprintf("invariants: unknown kind %d", int(k)))
}

func (k Kind) String() string { return k.info().name }

// GVR is the resource the checker watches for the kind.
func (k Kind) GVR() schema.GroupVersionResource { return k.info().gvr }

// allKinds lists every kind, in declaration order.
func allKinds() []Kind {
	out := make([]Kind, 0, numKinds)
	for k := Kind(0); k < numKinds; k++ {
		out = append(out, k)
	}
	return out
}

// workloadKind maps a Rollout's workloadRef to the kind the checker
// watches; ok is false for kinds Sluice does not release.
func workloadKind(apiVersion, kind string) (Kind, bool) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return 0, false
	}
	switch {
	case gv.Group == "apps" && kind == "Deployment":
		return Deployment, true
	case gv.Group == "apps" && kind == "StatefulSet":
		return StatefulSet, true
	case gv.Group == "apps.kruise.io" && kind == "CloneSet":
		return CloneSet, true
	case gv.Group == "apps.kruise.io" && kind == "StatefulSet":
		return AdvancedStatefulSet, true
	}
	return 0, false
}

// parseRV reads a resourceVersion. On one kube-apiserver (one etcd) it is
// etcd's global revision, so it orders changes across kinds.
func parseRV(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resourceVersion %q is not an etcd revision: %w", s, err)
	}
	return v, nil
}
