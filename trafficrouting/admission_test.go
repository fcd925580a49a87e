package trafficrouting

import (
	"strings"
	"testing"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

func ptr[T any](v T) *T { return &v }

func header(name, value string) gatewayv1.HTTPHeaderMatch {
	return gatewayv1.HTTPHeaderMatch{Type: ptr(gatewayv1.HeaderMatchExact), Name: gatewayv1.HTTPHeaderName(name), Value: value}
}

func valid() *v1alpha1.TrafficRouting {
	tr := &v1alpha1.TrafficRouting{}
	tr.Spec.ObjectRef = []v1alpha1.TrafficRoutingRef{{Service: "frontend", Gateway: &v1beta1.GatewayTrafficRouting{HTTPRouteName: ptr("frontend")}}}
	tr.Spec.Strategy.Matches = []v1alpha1.HttpRouteMatch{{Headers: []gatewayv1.HTTPHeaderMatch{header("x-canary", "yes")}}}
	return tr
}

func TestValidateSpec(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(tr *v1alpha1.TrafficRouting)
		want   []string // "field: type" of each error
	}{
		{name: "valid"},
		{name: "a weight alone", mutate: func(tr *v1alpha1.TrafficRouting) {
			tr.Spec.Strategy.Matches, tr.Spec.Strategy.Weight = nil, ptr(int32(10))
		}},
		{name: "no objectRef", mutate: func(tr *v1alpha1.TrafficRouting) { tr.Spec.ObjectRef = nil },
			want: []string{"spec.objectRef: Required value"}},
		{name: "two objectRefs", mutate: func(tr *v1alpha1.TrafficRouting) {
			tr.Spec.ObjectRef = append(tr.Spec.ObjectRef, tr.Spec.ObjectRef[0])
		}, want: []string{"spec.objectRef: Too many"}},
		{name: "a ref naming nothing", mutate: func(tr *v1alpha1.TrafficRouting) {
			tr.Spec.ObjectRef[0] = v1alpha1.TrafficRoutingRef{Gateway: &v1beta1.GatewayTrafficRouting{}}
		}, want: []string{"spec.objectRef[0].service: Required value", "spec.objectRef[0].gateway.httpRouteName: Required value"}},
		{name: "nothing routed", mutate: func(tr *v1alpha1.TrafficRouting) {
			tr.Spec.Strategy = v1alpha1.TrafficRoutingStrategy{Weight: ptr(int32(0))}
		},
			want: []string{"spec.strategy: Required value"}},
		{name: "weight out of range", mutate: func(tr *v1alpha1.TrafficRouting) { tr.Spec.Strategy.Weight = ptr(int32(101)) },
			want: []string{"spec.strategy.weight: Invalid value"}},
		{name: "a match without headers", mutate: func(tr *v1alpha1.TrafficRouting) {
			tr.Spec.Strategy.Matches = append(tr.Spec.Strategy.Matches, v1alpha1.HttpRouteMatch{})
		}, want: []string{"spec.strategy.matches[1].headers: Required value"}},
		{name: "nginx cannot match two headers", mutate: func(tr *v1alpha1.TrafficRouting) {
			tr.Spec.ObjectRef[0] = v1alpha1.TrafficRoutingRef{Service: "frontend", Ingress: &v1beta1.IngressTrafficRouting{Name: "frontend"}}
			tr.Spec.Strategy.Matches[0].Headers = append(tr.Spec.Strategy.Matches[0].Headers, header("x-b", "1"))
		}, want: []string{"spec.strategy.matches: Invalid value"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := valid()
			if tc.mutate != nil {
				tc.mutate(tr)
			}
			errs := ValidateSpec(tr)
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %q", errs, tc.want)
			}
			for i, e := range errs {
				if !strings.HasPrefix(e.Error(), tc.want[i]) {
					t.Errorf("error %d %q, want %q", i, e.Error(), tc.want[i])
				}
			}
		})
	}
}

// The routing objects a held TrafficRouting changed are the ones it must
// restore: objectRef is fixed until it is Healthy; the strategy is not.
func TestValidateUpdate(t *testing.T) {
	old := valid()
	old.Finalizers = []string{v1alpha1.ProgressingRolloutFinalizer("frontend")}
	old.Status.Phase = v1alpha1.TrafficRoutingPhaseProgressing
	cur := old.DeepCopy()
	cur.Spec.ObjectRef[0].Service = "other"
	errs := ValidateUpdate(old, cur)
	if len(errs) != 1 || errs[0].Field != "spec.objectRef" || !strings.Contains(errs[0].Detail, "held by frontend") {
		t.Fatalf("errors %v", errs)
	}
	strategy := old.DeepCopy()
	strategy.Spec.Strategy.Weight = ptr(int32(20))
	if errs := ValidateUpdate(old, strategy); len(errs) != 0 {
		t.Errorf("a new strategy is refused: %v", errs)
	}
	old.Finalizers, old.Status.Phase = nil, v1alpha1.TrafficRoutingPhaseHealthy
	if errs := ValidateUpdate(old, cur); len(errs) != 0 {
		t.Errorf("a Healthy TrafficRouting cannot change its objectRef: %v", errs)
	}
}
