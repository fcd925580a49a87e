package traffic

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

func TestValidateSteps(t *testing.T) {
	exact := gatewayv1.HeaderMatchExact
	header := func(n string) v1beta1.HttpRouteMatch {
		return v1beta1.HttpRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{Type: &exact, Name: gatewayv1.HTTPHeaderName(n), Value: "v"}}}
	}
	steps := []v1beta1.CanaryStep{
		{TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Matches: []v1beta1.HttpRouteMatch{header("a")}}},
		{TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Matches: []v1beta1.HttpRouteMatch{header("a"), header("b")}}},
		{TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: ptr("150%")}},
		{TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Remove: []string{"x"}}}},
	}
	path := field.NewPath("spec", "strategy", "canary", "steps")
	cases := []struct {
		name string
		ref  v1beta1.TrafficRoutingRef
		want []string
	}{
		{name: "nginx by default", ref: v1beta1.TrafficRoutingRef{Ingress: &v1beta1.IngressTrafficRouting{Name: "i"}},
			want: []string{"spec.strategy.canary.steps[1].matches", "spec.strategy.canary.steps[2].traffic", "spec.strategy.canary.steps[3].requestHeaderModifier"}},
		{name: "mse modifies headers", ref: v1beta1.TrafficRoutingRef{Ingress: &v1beta1.IngressTrafficRouting{Name: "i", ClassType: "mse"}},
			want: []string{"spec.strategy.canary.steps[1].matches", "spec.strategy.canary.steps[2].traffic"}},
		{name: "a Lua class is judged at run time", ref: v1beta1.TrafficRoutingRef{Ingress: &v1beta1.IngressTrafficRouting{Name: "i", ClassType: "kong"}},
			want: []string{"spec.strategy.canary.steps[2].traffic"}},
		{name: "gateway", ref: v1beta1.TrafficRoutingRef{Gateway: &v1beta1.GatewayTrafficRouting{HTTPRouteName: ptr("r")}},
			want: []string{"spec.strategy.canary.steps[2].traffic"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateSteps(tc.ref, steps, path)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("errors on %v, want %v (%v)", got, tc.want, errs)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("errors on %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
