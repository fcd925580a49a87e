// Package route holds the contract between the release engine and the
// traffic providers: what one step asks of the routing (Route) and the
// small interface every provider implements (Provider). It is a leaf
// package so that providers and the traffic factory can both import it.
package route

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// Route is what one step asks of the routing. The zero Route sends all
// traffic to the stable version.
type Route struct {
	// Weight is the percentage of traffic for the new version; nil = none.
	Weight *int32
	// Matches send matching requests to the new version (ORed).
	Matches []v1beta1.HttpRouteMatch
	// RequestHeaderModifier changes the requests sent to the new version.
	RequestHeaderModifier *gatewayv1.HTTPHeaderFilter
}

// Provider changes one routing technology (an Ingress, an HTTPRoute, a
// custom object) for a release. Every method is idempotent and keeps its
// state only in the cluster objects, so any call is safe after a restart.
// done=false means something was changed (or is not ready yet): the caller
// waits the grace period and calls again until done.
type Provider interface {
	// Initialize checks that the routing objects exist and can be used.
	Initialize(ctx context.Context) error
	// EnsureRoutes makes the routing send traffic as r says; done when
	// nothing had to change.
	EnsureRoutes(ctx context.Context, r Route) (done bool, err error)
	// Finalise restores the original routing (all traffic to stable) and
	// removes the canary objects; done when nothing was left to do.
	Finalise(ctx context.Context) (done bool, err error)
}

// ErrUnsupported marks a Route the provider cannot express (for example two
// header matches on nginx). Retrying does not help: the step must change.
var ErrUnsupported = errors.New("route not supported")

// Unsupported returns an error wrapping ErrUnsupported.
func Unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// FromStep is the Route of a Rollout step. traffic "N%" becomes Weight N.
func FromStep(s v1beta1.TrafficRoutingStrategy) (Route, error) {
	r := Route{Matches: s.Matches, RequestHeaderModifier: s.RequestHeaderModifier}
	if s.Traffic == nil {
		return r, nil
	}
	w, err := ParseWeight(*s.Traffic)
	if err != nil {
		return Route{}, err
	}
	r.Weight = &w
	return r, nil
}

// ParseWeight reads a traffic value "N%" (or "N") with 0 <= N <= 100.
func ParseWeight(s string) (int32, error) {
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")))
	if err != nil || n < 0 || n > 100 {
		return 0, fmt.Errorf("traffic %q: want a percentage between 0%% and 100%%", s)
	}
	return int32(n), nil
}

// CanaryWeight is the weight as Kruise's scripts see it: -1 when none.
func (r Route) CanaryWeight() int32 {
	if r.Weight == nil {
		return -1
	}
	return *r.Weight
}

// Weight returns a pointer to w, for building Routes.
func Weight(w int32) *int32 { return &w }
