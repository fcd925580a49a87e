//go:build e2e

package traffic_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/traffic/custom"
)

const istio = "networking.istio.io/v1beta1"

func nested(t *testing.T, u *unstructured.Unstructured, path ...string) any {
	t.Helper()
	v, _, err := unstructured.NestedFieldNoCopy(u.Object, path...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// An Istio VirtualService and DestinationRule through the built-in
// scripts: weight, then header match with a header modifier, then restore.
func TestIstioThroughBuiltinScripts(t *testing.T) {
	ns := framework.NewNamespace(t, cp)
	createKinds(t, ns, guide("echoserver.yaml"), "Service")
	createKinds(t, ns, "testdata/virtualservice.yaml", "VirtualService", "DestinationRule")
	ro := newRollout(t, ns, v1beta1.TrafficRoutingRef{Service: "echoserver", CustomNetworkRefs: []v1beta1.ObjectRef{
		{APIVersion: istio, Kind: "VirtualService", Name: "echoserver"},
		{APIVersion: istio, Kind: "DestinationRule", Name: "echoserver"},
	}},
		v1beta1.TrafficRoutingStrategy{Traffic: ptr("30%")},
		v1beta1.TrafficRoutingStrategy{Matches: []v1beta1.HttpRouteMatch{header("User-Agent", "Andriod")},
			RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Version", Value: "canary"}}}},
	)
	origVS := getUnstructured(t, ns, istio, "VirtualService", "echoserver")
	origDR := getUnstructured(t, ns, istio, "DestinationRule", "echoserver")

	_, p := newRouting(t, ro, ns)
	if err := p.Initialize(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, step := range ro.Spec.Strategy.Canary.Steps {
		_, p := newRouting(t, ro, ns)
		until(t, "routes", func(ctx context.Context) (bool, error) { return p.EnsureRoutes(ctx, stepRoute(t, step)) })
		vs := getUnstructured(t, ns, istio, "VirtualService", "echoserver")
		if _, ok := vs.GetAnnotations()[custom.OriginalSpecAnnotation]; !ok {
			t.Errorf("step %d: no snapshot annotation", i+1)
		}
		http := nested(t, vs, "spec", "http").([]any)
		switch i {
		case 0:
			want := []any{
				map[string]any{"destination": map[string]any{"host": "echoserver", "port": map[string]any{"number": int64(80)}}, "weight": int64(70)},
				map[string]any{"destination": map[string]any{"host": "echoserver-canary", "port": map[string]any{"number": int64(80)}}, "weight": int64(30)},
			}
			if d := cmp.Diff(want, http[1].(map[string]any)["route"]); len(http) != 2 || d != "" {
				t.Errorf("30%%: http = %v\n%s", http, d)
			}
		case 1:
			want := map[string]any{
				"match":   []any{map[string]any{"headers": map[string]any{"user-agent": map[string]any{"exact": "Andriod"}}}},
				"route":   []any{map[string]any{"destination": map[string]any{"host": "echoserver-canary", "port": map[string]any{"number": int64(80)}}}},
				"headers": map[string]any{"request": map[string]any{"set": map[string]any{"X-Version": "canary"}}},
			}
			if d := cmp.Diff(want, http[0]); len(http) != 3 || d != "" {
				t.Errorf("header step (-want +got):\n%s", d)
			}
		}
		dr := getUnstructured(t, ns, istio, "DestinationRule", "echoserver")
		if subsets := nested(t, dr, "spec", "subsets").([]any); len(subsets) != 1 || subsets[0].(map[string]any)["name"] != "canary" {
			t.Errorf("destination rule subsets = %v", subsets)
		}
	}

	_, p = newRouting(t, ro, ns)
	until(t, "route to stable", p.Finalise)
	for _, orig := range []*unstructured.Unstructured{origVS, origDR} {
		now := getUnstructured(t, ns, istio, orig.GetKind(), orig.GetName())
		if !equality.Semantic.DeepEqual(orig.Object["spec"], now.Object["spec"]) || !equality.Semantic.DeepEqual(orig.GetAnnotations(), now.GetAnnotations()) ||
			!equality.Semantic.DeepEqual(orig.GetLabels(), now.GetLabels()) {
			t.Errorf("%s not restored:\n%s", orig.GetKind(), cmp.Diff(orig.Object, now.Object))
		}
	}
}

// A user script from the sluice-configuration ConfigMap drives a kind
// Sluice knows nothing about; broken scripts fail the step, clearly, and
// leave the object alone.
func TestUserScriptForCustomKind(t *testing.T) {
	ns := framework.NewNamespace(t, cp)
	createKinds(t, ns, guide("echoserver.yaml"), "Service")
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "routing.example.com/v1", "kind": "Route",
		"metadata": map[string]any{"name": "echoserver", "namespace": ns},
		"spec":     map[string]any{"backends": []any{map[string]any{"service": "echoserver", "weight": int64(100)}}},
	}}
	if err := cli.Create(t.Context(), obj); err != nil {
		t.Fatal(err)
	}
	const key = "lua.traffic.routing.Route.routing.example.com"
	cm := &corev1.ConfigMap{Data: map[string]string{key: `
		local spec = obj.data.spec
		if obj.canaryWeight >= 0 then
			spec.backends[1].weight = obj.stableWeight
			table.insert(spec.backends, {service = obj.canaryService, weight = obj.canaryWeight})
		end
		if obj.matches then
			spec.canaryHeader = obj.matches[1].headers[1].name .. "=" .. obj.matches[1].headers[1].value
		end
		local labels = obj.data.labels or {}
		labels["routing.example.com/canary"] = "on"
		return {spec = spec, labels = labels, annotations = obj.data.annotations}`}}
	cm.Name, cm.Namespace = "sluice-configuration", ns
	if err := cli.Create(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	ro := newRollout(t, ns, v1beta1.TrafficRoutingRef{Service: "echoserver", CustomNetworkRefs: []v1beta1.ObjectRef{{APIVersion: "routing.example.com/v1", Kind: "Route", Name: "echoserver"}}},
		v1beta1.TrafficRoutingStrategy{Traffic: ptr("40%")},
		v1beta1.TrafficRoutingStrategy{Matches: []v1beta1.HttpRouteMatch{header("X-Canary", "yes")}},
	)
	orig := getUnstructured(t, ns, "routing.example.com/v1", "Route", "echoserver")

	for i, step := range ro.Spec.Strategy.Canary.Steps {
		_, p := newRouting(t, ro, ns)
		until(t, "routes", func(ctx context.Context) (bool, error) { return p.EnsureRoutes(ctx, stepRoute(t, step)) })
		u := getUnstructured(t, ns, "routing.example.com/v1", "Route", "echoserver")
		backends := nested(t, u, "spec", "backends")
		want := []any{map[string]any{"service": "echoserver", "weight": int64(60)}, map[string]any{"service": "echoserver-canary", "weight": int64(40)}}
		if i == 1 {
			want = []any{map[string]any{"service": "echoserver", "weight": int64(100)}}
			if h := nested(t, u, "spec", "canaryHeader"); h != "X-Canary=yes" {
				t.Errorf("canaryHeader = %v", h)
			}
		}
		if d := cmp.Diff(want, backends); d != "" {
			t.Errorf("step %d backends (-want +got):\n%s", i+1, d)
		}
		if u.GetLabels()["routing.example.com/canary"] != "on" {
			t.Errorf("step %d labels = %v", i+1, u.GetLabels())
		}
	}

	// Broken scripts: the step fails with the script's name (and line), fast.
	for _, bad := range []struct{ name, src, want string }{
		{"endless loop", "while true do end", "did not finish within 1s"},
		{"runtime error", "local x = nil\nreturn x.field", key + ":2:"},
		{"os access", "os.exit(1)", "attempt to index a non-table object"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			cm.Data[key] = bad.src
			if err := cli.Update(t.Context(), cm); err != nil {
				t.Fatal(err)
			}
			before := getUnstructured(t, ns, "routing.example.com/v1", "Route", "echoserver")
			_, p := newRouting(t, ro, ns)
			start := time.Now()
			_, err := p.EnsureRoutes(t.Context(), stepRoute(t, ro.Spec.Strategy.Canary.Steps[0]))
			if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "configmap "+ns+"/sluice-configuration key "+key) {
				t.Errorf("err = %v, want it to name the script and contain %q", err, bad.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s", d)
			}
			after := getUnstructured(t, ns, "routing.example.com/v1", "Route", "echoserver")
			if after.GetResourceVersion() != before.GetResourceVersion() {
				t.Error("a failing script changed the object")
			}
		})
	}

	// Restoring needs no script: the snapshot is enough.
	_, p := newRouting(t, ro, ns)
	until(t, "route to stable", p.Finalise)
	now := getUnstructured(t, ns, "routing.example.com/v1", "Route", "echoserver")
	if !equality.Semantic.DeepEqual(orig.Object["spec"], now.Object["spec"]) {
		t.Errorf("spec not restored:\n%s", cmp.Diff(orig.Object["spec"], now.Object["spec"]))
	}
	if len(now.GetLabels()) != 0 || len(now.GetAnnotations()) != 0 {
		t.Errorf("labels %v / annotations %v left behind", now.GetLabels(), now.GetAnnotations())
	}
}
