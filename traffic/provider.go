package traffic

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic/custom"
	"github.com/sluicehq/sluice/traffic/gateway"
	"github.com/sluicehq/sluice/traffic/ingress"
	"github.com/sluicehq/sluice/traffic/route"
	"github.com/sluicehq/sluice/traffic/script"
)

// Route is what one step asks of the routing; see route.Route.
type Route = route.Route

// Provider is one routing technology; see route.Provider.
type Provider = route.Provider

// ErrUnsupported marks a step the routing cannot express; retrying does
// not help.
var ErrUnsupported = route.ErrUnsupported

// Options describe the routing of one Rollout.
type Options struct {
	// Namespace of the Rollout and of every routing object.
	Namespace string
	// Owner is the Rollout; it owns the canary Service and canary Ingress.
	Owner *metav1.OwnerReference
	// Ref is the Rollout's trafficRoutings[0].
	Ref v1beta1.TrafficRoutingRef
	// DisableGenerateCanaryService routes to the stable Service itself.
	DisableGenerateCanaryService bool
	// RevisionLabel is PodTemplateHashLabel (default) or ControllerRevisionHashLabel.
	RevisionLabel string
	// Scripts are the user's Lua scripts, usually script.ConfigMaps in the
	// manager's namespace; nil means the built-in ones only.
	Scripts script.Source
	// Endpoints reads EndpointSlices live (Services.Endpoints); nil skips
	// the ready-endpoint check.
	Endpoints client.Reader
}

// CanaryService is the name of the Service canary traffic goes to.
func (o Options) CanaryService() string {
	return CanaryServiceName(o.Ref.Service, o.DisableGenerateCanaryService)
}

// NewServices returns the Services part of o.
func NewServices(c client.Client, o Options) Services {
	label := o.RevisionLabel
	if label == "" {
		label = PodTemplateHashLabel
	}
	return Services{Client: c, Namespace: o.Namespace, Stable: o.Ref.Service, Canary: o.CanaryService(), RevisionLabel: label, Owner: o.Owner, Endpoints: o.Endpoints}
}

// NewProvider returns the provider of o.Ref: one of ingress, gateway and
// custom, or several combined when the ref names several. A ref naming
// none is an error, never a silent default.
func NewProvider(c client.Client, o Options) (Provider, error) {
	ref := o.Ref
	if ref.Service == "" {
		return nil, errors.New("trafficRoutings: service is required")
	}
	var ps Composite
	if ref.Ingress != nil {
		if ref.Ingress.Name == "" {
			return nil, errors.New("trafficRoutings: ingress.name is required")
		}
		ps = append(ps, ingress.New(c, ingress.Config{
			Namespace: o.Namespace, Name: ref.Ingress.Name, ClassType: ref.Ingress.ClassType,
			StableService: ref.Service, CanaryService: o.CanaryService(), Owner: o.Owner, Scripts: o.Scripts,
		}))
	}
	if ref.Gateway != nil {
		if ref.Gateway.HTTPRouteName == nil || *ref.Gateway.HTTPRouteName == "" {
			return nil, errors.New("trafficRoutings: gateway.httpRouteName is required")
		}
		ps = append(ps, gateway.New(c, gateway.Config{
			Namespace: o.Namespace, HTTPRouteName: *ref.Gateway.HTTPRouteName,
			StableService: ref.Service, CanaryService: o.CanaryService(),
		}))
	}
	if len(ref.CustomNetworkRefs) > 0 {
		for _, r := range ref.CustomNetworkRefs {
			if r.APIVersion == "" || r.Kind == "" || r.Name == "" {
				return nil, fmt.Errorf("trafficRoutings: customNetworkRefs need apiVersion, kind and name, got %+v", r)
			}
		}
		ps = append(ps, custom.New(c, custom.Config{
			Namespace: o.Namespace, Refs: ref.CustomNetworkRefs,
			StableService: ref.Service, CanaryService: o.CanaryService(), Scripts: o.Scripts,
		}))
	}
	switch len(ps) {
	case 0:
		return nil, fmt.Errorf("trafficRoutings for service %s names no ingress, gateway or customNetworkRefs", ref.Service)
	case 1:
		return ps[0], nil
	}
	return ps, nil
}

// ForRollout returns the Options of a Rollout's first traffic routing
// (canary or blue-green); ok=false when it routes no traffic.
func ForRollout(ro *v1beta1.Rollout, revisionLabel string, scripts script.Source) (o Options, ok bool) {
	s := &ro.Spec.Strategy
	if !s.RoutesSteps() {
		return Options{}, false
	}
	owner := metav1.NewControllerRef(ro, v1beta1.GroupVersion.WithKind("Rollout"))
	return Options{
		Namespace: ro.Namespace, Owner: owner, Ref: s.Routings()[0], DisableGenerateCanaryService: s.CanaryServiceDisabled(),
		RevisionLabel: revisionLabel, Scripts: scripts,
	}, true
}
