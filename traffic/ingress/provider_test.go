package ingress

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluicehq/sluice/traffic/internal/steps"
	"github.com/sluicehq/sluice/traffic/route"
	"github.com/sluicehq/sluice/traffic/script"
)

func stableIngress() *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "echoserver", Namespace: "ns", Annotations: map[string]string{"kubernetes.io/ingress.class": "nginx"}},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "echoserver"}}}},
		}}}}},
	}
}

func canaryAnnotationsOf(t *testing.T, c client.Client) map[string]string {
	t.Helper()
	ing := &networkingv1.Ingress{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "echoserver-canary"}, ing); err != nil {
		t.Fatal(err)
	}
	return ing.Annotations
}

// Created at weight 0, then one patch per step that also removes the
// previous step's keys, done when nothing changes.
func TestProviderCreatesAtZeroThenPatches(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithObjects(stableIngress()).Build()
	p := New(c, Config{Namespace: "ns", Name: "echoserver", StableService: "echoserver", CanaryService: "echoserver-canary"})
	if err := p.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	header := steps.All[0].Route
	if done, err := p.EnsureRoutes(ctx, header); done || err != nil {
		t.Fatalf("first call = %v, %v; want the canary created", done, err)
	}
	if d := cmp.Diff(map[string]string{"kubernetes.io/ingress.class": "nginx", "nginx.ingress.kubernetes.io/canary": "true",
		"nginx.ingress.kubernetes.io/canary-weight": "0"}, canaryAnnotationsOf(t, c)); d != "" {
		t.Errorf("created with (-want +got):\n%s", d)
	}
	for _, r := range []route.Route{header, {Weight: route.Weight(50)}} {
		if done, err := p.EnsureRoutes(ctx, r); done || err != nil {
			t.Fatalf("EnsureRoutes = %v, %v; want a change", done, err)
		}
		if done, err := p.EnsureRoutes(ctx, r); !done || err != nil {
			t.Fatalf("EnsureRoutes again = %v, %v; want done", done, err)
		}
	}
	if d := cmp.Diff(map[string]string{"kubernetes.io/ingress.class": "nginx", "nginx.ingress.kubernetes.io/canary": "true",
		"nginx.ingress.kubernetes.io/canary-weight": "50"}, canaryAnnotationsOf(t, c)); d != "" {
		t.Errorf("after 50%% (-want +got):\n%s", d)
	}
	if done, err := p.Finalise(ctx); done || err != nil {
		t.Fatalf("Finalise = %v, %v; want the canary deleted", done, err)
	}
	if done, err := p.Finalise(ctx); !done || err != nil {
		t.Fatalf("Finalise again = %v, %v; want done", done, err)
	}
}

// A canary Ingress still being deleted (finalizer) is waited for, never reused.
func TestProviderWaitsForADeletingCanary(t *testing.T) {
	ctx := context.Background()
	canary, err := NewCanary(stableIngress(), "echoserver", "echoserver-canary", nil)
	if err != nil {
		t.Fatal(err)
	}
	canary.Finalizers = []string{"example.com/hold"}
	c := fake.NewClientBuilder().WithObjects(stableIngress(), canary).Build()
	if err := c.Delete(ctx, canary); err != nil {
		t.Fatal(err)
	}
	p := New(c, Config{Namespace: "ns", Name: "echoserver", StableService: "echoserver", CanaryService: "echoserver-canary"})
	if done, err := p.EnsureRoutes(ctx, route.Route{Weight: route.Weight(10)}); done || err != nil {
		t.Errorf("EnsureRoutes on a deleting canary = %v, %v; want to wait", done, err)
	}
}

func TestProviderClassErrors(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithObjects(stableIngress()).Build()
	unknown := New(c, Config{Namespace: "ns", Name: "echoserver", ClassType: "kong", StableService: "echoserver", CanaryService: "echoserver-canary"})
	if err := unknown.Initialize(ctx); err == nil {
		t.Error("an unknown classType without a script must fail Initialize")
	}
	scripted := New(c, Config{Namespace: "ns", Name: "echoserver", ClassType: "kong", StableService: "echoserver", CanaryService: "echoserver-canary",
		Scripts: script.Map{ScriptKey("kong"): "return obj.annotations"}})
	if err := scripted.Initialize(ctx); err != nil {
		t.Errorf("a scripted classType: %v", err)
	}
	nginx := New(c, Config{Namespace: "ns", Name: "echoserver", StableService: "echoserver", CanaryService: "echoserver-canary"})
	if _, err := nginx.EnsureRoutes(ctx, steps.All[4].Route); !errors.Is(err, route.ErrUnsupported) {
		t.Errorf("several matches on nginx = %v, want ErrUnsupported", err)
	}
}
