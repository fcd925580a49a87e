package preview_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic"
	"github.com/sluicehq/sluice/traffic/preview"
)

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func echoserverService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echoserver", Namespace: "demo"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "echoserver"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}
}

func echoserverIngress() *networkingv1.Ingress {
	exact := networkingv1.PathTypeExact
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "echoserver", Namespace: "demo"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/apis/echo", PathType: &exact, Backend: networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: "echoserver", Port: networkingv1.ServiceBackendPort{Number: 80}},
			}}},
		}}}}},
	}
}

// example1 is the Kruise guide's Example 1: a header step on one pod,
// then 50%, then 100%, through an nginx Ingress.
func example1(matches ...v1beta1.HttpRouteMatch) *v1beta1.Rollout {
	exact := gatewayv1.HeaderMatchExact
	if len(matches) == 0 {
		matches = []v1beta1.HttpRouteMatch{{Headers: []gatewayv1.HTTPHeaderMatch{{Type: &exact, Name: "User-Agent", Value: "Andriod"}}}}
	}
	ro := &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "rollouts-demo", Namespace: "demo", UID: "uid-1"}}
	ro.Spec.WorkloadRef = v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "echoserver"}
	one, half, all := intstr.FromInt32(1), intstr.FromString("50%"), intstr.FromString("100%")
	ro.Spec.Strategy.Canary = &v1beta1.CanaryStrategy{
		Steps: []v1beta1.CanaryStep{
			{TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Matches: matches}, Replicas: &one},
			{TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: ptr("50%")}, Replicas: &half},
			{TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: ptr("100%")}, Replicas: &all},
		},
		TrafficRoutings: []v1beta1.TrafficRoutingRef{{Service: "echoserver", Ingress: &v1beta1.IngressTrafficRouting{Name: "echoserver"}}},
	}
	return ro
}

func release(ro *v1beta1.Rollout) preview.Release {
	return preview.Release{Rollout: ro, Replicas: 5, RevisionLabel: traffic.PodTemplateHashLabel, Stable: "stable-hash", New: "<new>"}
}

// text writes a plan one line per field, for comparison.
func text(p preview.Plan) string {
	var b strings.Builder
	v := func(s *string) string {
		if s == nil {
			return "-"
		}
		return *s
	}
	for _, ph := range p.Phases {
		fmt.Fprintf(&b, "phase %d\n", ph.Step)
		for _, c := range ph.Changes {
			fmt.Fprintf(&b, "  %s %s %s", c.Kind, c.Name, c.Action)
			if c.CopyOf != "" {
				fmt.Fprintf(&b, " from %s", c.CopyOf)
			}
			b.WriteString("\n")
			for _, f := range c.Fields {
				fmt.Fprintf(&b, "    %s: %s -> %s\n", f.Path, v(f.Before), v(f.After))
			}
		}
		if ph.Err != nil {
			fmt.Fprintf(&b, "  error: %v\n", ph.Err)
		}
	}
	return b.String()
}

// Example 1's routing, step by step, as the real traffic calls leave it:
// the cluster itself is not changed.
func TestExample1(t *testing.T) {
	live := fake.NewClientBuilder().WithScheme(scheme()).WithObjects(echoserverService(), echoserverIngress()).Build()
	p, ok, err := preview.Routing(t.Context(), live, scheme(), release(example1()))
	if err != nil || !ok {
		t.Fatalf("ok %v, %v", ok, err)
	}
	want := `phase 0
phase 1
  Service echoserver changed
    spec.selector["pod-template-hash"]: - -> "stable-hash"
  Service echoserver-canary created from echoserver
    spec.selector["pod-template-hash"]: - -> "<new>"
  Ingress echoserver-canary created from echoserver
    metadata.annotations["nginx.ingress.kubernetes.io/canary"]: - -> "true"
    metadata.annotations["nginx.ingress.kubernetes.io/canary-by-header"]: - -> "User-Agent"
    metadata.annotations["nginx.ingress.kubernetes.io/canary-by-header-value"]: - -> "Andriod"
    spec.rules[0].http.paths[0].backend.service.name: "echoserver" -> "echoserver-canary"
phase 2
  Ingress echoserver-canary changed
    metadata.annotations["nginx.ingress.kubernetes.io/canary-by-header"]: "User-Agent" -> -
    metadata.annotations["nginx.ingress.kubernetes.io/canary-by-header-value"]: "Andriod" -> -
    metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"]: - -> "50"
phase 3
  Service echoserver changed
    spec.selector["pod-template-hash"]: "stable-hash" -> -
  Ingress echoserver-canary changed
    metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"]: "50" -> "100"
phase 4
  Service echoserver-canary deleted
  Ingress echoserver-canary deleted
`
	if got := text(p); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	for _, obj := range []client.Object{&corev1.Service{}, &networkingv1.Ingress{}} {
		if err := live.Get(t.Context(), client.ObjectKey{Namespace: "demo", Name: "echoserver-canary"}, obj); err == nil {
			t.Errorf("the preview created %T echoserver-canary in the cluster", obj)
		}
	}
	svc := &corev1.Service{}
	if err := live.Get(t.Context(), client.ObjectKey{Namespace: "demo", Name: "echoserver"}, svc); err != nil || len(svc.Spec.Selector) != 1 {
		t.Errorf("the preview changed the stable Service in the cluster: %v %v", svc.Spec.Selector, err)
	}
}

// What nginx cannot express (two header matches in one step) stops the
// plan at that step, with the traffic package's error.
func TestUnsupportedStep(t *testing.T) {
	exact := gatewayv1.HeaderMatchExact
	two := v1beta1.HttpRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{
		{Type: &exact, Name: "User-Agent", Value: "Andriod"}, {Type: &exact, Name: "X-Beta", Value: "1"},
	}}
	live := fake.NewClientBuilder().WithScheme(scheme()).WithObjects(echoserverService(), echoserverIngress()).Build()
	p, _, err := preview.Routing(t.Context(), live, scheme(), release(example1(two)))
	if err != nil {
		t.Fatal(err)
	}
	last := p.Phases[len(p.Phases)-1]
	if last.Step != 1 || !preview.Unsupported(last.Err) {
		t.Fatalf("the plan ends at phase %d with %v, want step 1 unsupported", last.Step, last.Err)
	}
}

// A missing Ingress fails the first phase, as Initialize would fail the
// release.
func TestMissingIngress(t *testing.T) {
	live := fake.NewClientBuilder().WithScheme(scheme()).WithObjects(echoserverService()).Build()
	p, _, err := preview.Routing(t.Context(), live, scheme(), release(example1()))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Phases) != 1 || p.Phases[0].Err == nil || !strings.Contains(p.Phases[0].Err.Error(), "echoserver") {
		t.Fatalf("got %s, want the initialisation to fail naming the Ingress", text(p))
	}
}

// The Gateway API's HTTPRoute, read and written as an unstructured
// object: its rules gain the canary backend with the step's weight.
func TestHTTPRoute(t *testing.T) {
	hr := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "echo", "namespace": "demo"},
		"spec": map[string]any{"rules": []any{map[string]any{
			"backendRefs": []any{map[string]any{"name": "echoserver", "port": int64(80)}},
		}}},
	}}
	live := fake.NewClientBuilder().WithScheme(scheme()).WithObjects(echoserverService(), hr).Build()
	ro := example1()
	ro.Spec.Strategy.Canary.Steps = ro.Spec.Strategy.Canary.Steps[1:2] // 50%
	ro.Spec.Strategy.Canary.TrafficRoutings = []v1beta1.TrafficRoutingRef{{Service: "echoserver", Gateway: &v1beta1.GatewayTrafficRouting{HTTPRouteName: ptr("echo")}}}
	p, _, err := preview.Routing(t.Context(), live, scheme(), release(ro))
	if err != nil {
		t.Fatal(err)
	}
	got := text(p)
	for _, want := range []string{
		"  HTTPRoute echo changed\n",
		`spec.rules[0].backendRefs[1].name: - -> "echoserver-canary"`,
		`spec.rules[0].backendRefs[1].weight: - -> 50`,
		`spec.rules[0].backendRefs[0].weight: - -> 50`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the plan lacks %q:\n%s", want, got)
		}
	}
	if p.Phases[len(p.Phases)-1].Err != nil {
		t.Errorf("the end failed: %v", p.Phases[len(p.Phases)-1].Err)
	}
}

// The canary Service is a copy of the stable one without what the API
// server allocates for each Service (its cluster IPs): the copy shows only
// what it sets, not those as removed.
func TestCopyLeavesOutAllocatedFields(t *testing.T) {
	svc := echoserverService()
	svc.Spec.ClusterIP = "10.0.0.7"
	svc.Spec.ClusterIPs = []string{"10.0.0.7"}
	live := fake.NewClientBuilder().WithScheme(scheme()).WithObjects(svc, echoserverIngress()).Build()
	p, ok, err := preview.Routing(t.Context(), live, scheme(), release(example1()))
	if err != nil || !ok {
		t.Fatalf("ok %v, %v", ok, err)
	}
	got := text(p)
	if strings.Contains(got, "clusterIP") {
		t.Errorf("the copy lists the stable Service's cluster IPs:\n%s", got)
	}
	if !strings.Contains(got, "  Service echoserver-canary created from echoserver\n    spec.selector[\"pod-template-hash\"]: - -> \"<new>\"\n  Ingress") {
		t.Errorf("the copy's own selector is not its only field:\n%s", got)
	}
}
