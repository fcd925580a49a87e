// Package steps holds the step shapes every provider's golden tests run
// through, in one order, so that each step also shows what the previous
// one left behind.
package steps

import (
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic/route"
)

// Step is one named Route.
type Step struct {
	Name  string
	Route route.Route
}

func ptr[T any](v T) *T { return &v }

// Header is an exact header match.
func Header(name, value string) v1beta1.HttpRouteMatch {
	return v1beta1.HttpRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{Type: ptr(gatewayv1.HeaderMatchExact), Name: gatewayv1.HTTPHeaderName(name), Value: value}}}
}

// All are the step shapes, in order.
var All = []Step{
	{Name: "matches only (the guide's User-Agent=Andriod)", Route: route.Route{Matches: []v1beta1.HttpRouteMatch{Header("User-Agent", "Andriod")}}},
	{Name: "weight only 50%", Route: route.Route{Weight: route.Weight(50)}},
	{Name: "weight and matches (20% and a header regex)", Route: route.Route{Weight: route.Weight(20), Matches: []v1beta1.HttpRouteMatch{{
		Headers: []gatewayv1.HTTPHeaderMatch{{Type: ptr(gatewayv1.HeaderMatchRegularExpression), Name: "X-Canary", Value: "^(yes|true)$"}},
	}}}},
	{Name: "header modifier with a match", Route: route.Route{
		Matches: []v1beta1.HttpRouteMatch{Header("X-Canary", "yes")},
		RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{
			Set:    []gatewayv1.HTTPHeader{{Name: "X-Version", Value: "canary"}, {Name: "X-Env", Value: "gray"}},
			Add:    []gatewayv1.HTTPHeader{{Name: "X-Trace", Value: "on"}},
			Remove: []string{"X-Debug"},
		},
	}},
	{Name: "several matches", Route: route.Route{Matches: []v1beta1.HttpRouteMatch{Header("User-Agent", "Andriod"), Header("X-Canary", "yes")}}},
	{Name: "query parameter match", Route: route.Route{Matches: []v1beta1.HttpRouteMatch{{
		QueryParams: []gatewayv1.HTTPQueryParamMatch{{Type: ptr(gatewayv1.QueryParamMatchExact), Name: "canary", Value: "yes"}},
	}}}},
	{Name: "header and query in one match", Route: route.Route{Matches: []v1beta1.HttpRouteMatch{{
		Headers:     []gatewayv1.HTTPHeaderMatch{{Type: ptr(gatewayv1.HeaderMatchExact), Name: "X-Canary", Value: "yes"}},
		QueryParams: []gatewayv1.HTTPQueryParamMatch{{Type: ptr(gatewayv1.QueryParamMatchExact), Name: "canary", Value: "yes"}},
	}}}},
	{Name: "path match", Route: route.Route{Matches: []v1beta1.HttpRouteMatch{{
		Path: &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr("/beta")},
	}}}},
	{Name: "cookie (header canary-by-cookie)", Route: route.Route{Matches: []v1beta1.HttpRouteMatch{Header("canary-by-cookie", "gray")}}},
	{Name: "weight 100%", Route: route.Route{Weight: route.Weight(100)}},
	{Name: "no traffic", Route: route.Route{}},
}
