//go:build e2e

package traffic_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/traffic/gateway"
)

func ptr[T any](v T) *T { return &v }

// newRollout creates a v1beta1 Rollout of the echoserver Deployment with
// steps and one traffic routing.
func newRollout(t *testing.T, ns string, ref v1beta1.TrafficRoutingRef, steps ...v1beta1.TrafficRoutingStrategy) *v1beta1.Rollout {
	t.Helper()
	ro := &v1beta1.Rollout{}
	ro.Name, ro.Namespace = "rollouts-demo", ns
	ro.Spec.WorkloadRef = v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "echoserver"}
	ro.Spec.Strategy.Canary = &v1beta1.CanaryStrategy{TrafficRoutings: []v1beta1.TrafficRoutingRef{ref}}
	for i, s := range steps {
		ro.Spec.Strategy.Canary.Steps = append(ro.Spec.Strategy.Canary.Steps, v1beta1.CanaryStep{
			TrafficRoutingStrategy: s, Replicas: ptr(intstr.FromInt(i + 1)),
		})
	}
	if err := cli.Create(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
	return ro
}

func header(name, value string) v1beta1.HttpRouteMatch {
	return v1beta1.HttpRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{Type: ptr(gatewayv1.HeaderMatchExact), Name: gatewayv1.HTTPHeaderName(name), Value: value}}}
}

func httpRouteRules(t *testing.T, u *unstructured.Unstructured) []gatewayv1.HTTPRouteRule {
	t.Helper()
	b, err := json.Marshal(u.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	var spec gatewayv1.HTTPRouteSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	return spec.Rules
}

// Weight and header/query/path A/B steps on an HTTPRoute whose backendRef
// omits kind, then the exact original back.
func TestGatewayHTTPRouteSteps(t *testing.T) {
	ns := framework.NewNamespace(t, cp)
	createKinds(t, ns, guide("echoserver.yaml"), "Service")
	createKinds(t, ns, "testdata/httproute.yaml", "HTTPRoute")
	steps := []v1beta1.TrafficRoutingStrategy{
		{Traffic: ptr("20%")},
		{Matches: []v1beta1.HttpRouteMatch{header("X-Canary", "yes")},
			RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Version", Value: "canary"}}}},
		{Matches: []v1beta1.HttpRouteMatch{{QueryParams: []gatewayv1.HTTPQueryParamMatch{{Type: ptr(gatewayv1.QueryParamMatchExact), Name: "canary", Value: "yes"}}}}},
		{Matches: []v1beta1.HttpRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr("/apis/echo/beta")}}}},
		{Traffic: ptr("50%"), Matches: []v1beta1.HttpRouteMatch{header("X-Canary", "yes")}},
	}
	ro := newRollout(t, ns, v1beta1.TrafficRoutingRef{Service: "echoserver", Gateway: &v1beta1.GatewayTrafficRouting{HTTPRouteName: ptr("echoserver")}}, steps...)
	orig := getUnstructured(t, ns, "gateway.networking.k8s.io/v1", "HTTPRoute", "echoserver")
	origRules := httpRouteRules(t, orig)

	_, p := newRouting(t, ro, ns)
	if err := p.Initialize(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		svc, p := newRouting(t, ro, ns)
		until(t, "canary service", func(ctx context.Context) (bool, error) { return svc.EnsureCanary(ctx, canaryRevision) })
		r := stepRoute(t, v1beta1.CanaryStep{TrafficRoutingStrategy: s})
		until(t, "routes", func(ctx context.Context) (bool, error) { return p.EnsureRoutes(ctx, r) })

		live := httpRouteRules(t, getUnstructured(t, ns, "gateway.networking.k8s.io/v1", "HTTPRoute", "echoserver"))
		want, err := gateway.Render(origRules, r, gateway.Backends{Namespace: ns, Stable: "echoserver", Canary: "echoserver-canary"})
		if err != nil {
			t.Fatal(err)
		}
		if !gateway.Equal(live, want) {
			t.Errorf("step %d rules:\n%s", i+1, cmp.Diff(want, live))
		}
		checkGatewayStep(t, i, live)
	}

	_, p = newRouting(t, ro, ns)
	until(t, "route to stable", p.Finalise)
	now := getUnstructured(t, ns, "gateway.networking.k8s.io/v1", "HTTPRoute", "echoserver")
	if !equality.Semantic.DeepEqual(orig.Object["spec"], now.Object["spec"]) || !equality.Semantic.DeepEqual(orig.GetAnnotations(), now.GetAnnotations()) {
		t.Errorf("the HTTPRoute is not back to its original:\n%s", cmp.Diff(orig.Object["spec"], now.Object["spec"]))
	}
}

// checkGatewayStep spells out, for the record, what each step must look
// like on the server (Render is checked above; this guards Render itself).
func checkGatewayStep(t *testing.T, i int, rules []gatewayv1.HTTPRouteRule) {
	t.Helper()
	weights := func(r gatewayv1.HTTPRouteRule) map[string]int32 {
		m := map[string]int32{}
		for _, b := range r.BackendRefs {
			m[string(b.Name)] = ptrValue(b.Weight, 1)
		}
		return m
	}
	other := map[string]int32{"other": 1}
	switch i {
	case 0: // 20%
		if len(rules) != 2 || !cmp.Equal(weights(rules[0]), map[string]int32{"echoserver": 80, "echoserver-canary": 20}) || !cmp.Equal(weights(rules[1]), other) {
			t.Errorf("20%%: %+v", rules)
		}
	case 1, 2, 3: // one canary rule after the original two, to the canary only
		if len(rules) != 3 || !cmp.Equal(weights(rules[2]), map[string]int32{"echoserver-canary": 1}) || !cmp.Equal(weights(rules[0]), map[string]int32{"echoserver": 1}) {
			t.Fatalf("step %d: %+v", i+1, rules)
		}
		m := rules[2].Matches
		switch i {
		case 1:
			if len(m) != 1 || *m[0].Path.Value != "/apis/echo" || len(m[0].Headers) != 1 || m[0].Headers[0].Name != "X-Canary" ||
				len(rules[2].Filters) != 1 || rules[2].Filters[0].RequestHeaderModifier.Set[0].Value != "canary" {
				t.Errorf("header step: %+v", rules[2])
			}
		case 2:
			if len(m) != 1 || *m[0].Path.Value != "/apis/echo" || len(m[0].QueryParams) != 1 || m[0].QueryParams[0].Name != "canary" {
				t.Errorf("query step: %+v", rules[2])
			}
		case 3:
			if len(m) != 1 || *m[0].Path.Value != "/apis/echo/beta" || len(m[0].Headers) != 0 {
				t.Errorf("path step: %+v", rules[2])
			}
		}
	case 4: // 50% and a header
		if len(rules) != 3 || !cmp.Equal(weights(rules[0]), map[string]int32{"echoserver": 50, "echoserver-canary": 50}) {
			t.Errorf("50%% and header: %+v", rules)
		}
	}
}

func ptrValue[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
