//go:build e2e

package traffic_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/traffic"
)

const (
	stableRevision = "5d8f6b7c9d"
	canaryRevision = "7f9c4d6b8a"
)

// The guide's Examples 1-3 step by step: header User-Agent=Andriod, 50%,
// 100%, then the end of the release (or a rollback after step 2).
func TestGuideIngressExamples(t *testing.T) {
	nginx := func(k string) string { return "nginx.ingress.kubernetes.io/" + k }
	alb := func(k string) string { return "alb.ingress.kubernetes.io/" + k }
	cases := []struct {
		name      string
		ingress   string
		classType string // "" keeps the guide's Rollout as written
		rollback  bool
		steps     []map[string]string // the canary Ingress annotations after each step
	}{
		{name: "example 1 nginx", ingress: "example1-ingress.yaml", steps: []map[string]string{
			{"kubernetes.io/ingress.class": "nginx", nginx("canary"): "true", nginx("canary-by-header"): "User-Agent", nginx("canary-by-header-value"): "Andriod"},
			{"kubernetes.io/ingress.class": "nginx", nginx("canary"): "true", nginx("canary-weight"): "50"},
			{"kubernetes.io/ingress.class": "nginx", nginx("canary"): "true", nginx("canary-weight"): "100"},
		}},
		{name: "example 1 nginx rolled back at 50%", ingress: "example1-ingress.yaml", rollback: true, steps: []map[string]string{
			{"kubernetes.io/ingress.class": "nginx", nginx("canary"): "true", nginx("canary-by-header"): "User-Agent", nginx("canary-by-header-value"): "Andriod"},
			{"kubernetes.io/ingress.class": "nginx", nginx("canary"): "true", nginx("canary-weight"): "50"},
		}},
		{name: "example 2 aliyun-alb", ingress: "example2-ingress.yaml", classType: "aliyun-alb", steps: []map[string]string{
			{alb("canary"): "true", alb("order"): "1", alb("canary-by-header"): "User-Agent", alb("canary-by-header-value"): "Andriod"},
			{alb("canary"): "true", alb("order"): "1", alb("canary-weight"): "50"},
			{alb("canary"): "true", alb("order"): "1", alb("canary-weight"): "100"},
		}},
		{name: "example 3 mse ingress as the guide writes it (nginx annotations)", ingress: "example3-ingress.yaml", steps: []map[string]string{
			{nginx("canary"): "true", nginx("canary-by-header"): "User-Agent", nginx("canary-by-header-value"): "Andriod"},
			{nginx("canary"): "true", nginx("canary-weight"): "50"},
			{nginx("canary"): "true", nginx("canary-weight"): "100"},
		}},
		{name: "example 3 with classType mse", ingress: "example3-ingress.yaml", classType: "mse", steps: []map[string]string{
			{nginx("canary"): "true", nginx("canary-by-header"): "User-Agent", nginx("canary-by-header-value"): "Andriod"},
			{nginx("canary"): "true", nginx("canary-weight"): "50"},
			{nginx("canary"): "true", nginx("canary-weight"): "100"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := framework.NewNamespace(t, cp)
			createKinds(t, ns, guide("echoserver.yaml"), "Service")
			createKinds(t, ns, guide(tc.ingress), "Ingress")
			ro := createRollout(t, ns, "example1-rollout.yaml", func(ro *v1beta1.Rollout) {
				if tc.classType != "" {
					ro.Spec.Strategy.Canary.TrafficRoutings[0].Ingress.ClassType = tc.classType
				}
			})
			origIngress, origService := &networkingv1.Ingress{}, &corev1.Service{}
			get(t, ns, "echoserver", origIngress)
			get(t, ns, "echoserver", origService)

			_, p := newRouting(t, ro, ns)
			if err := p.Initialize(t.Context()); err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.steps {
				step := ro.Spec.Strategy.Canary.Steps[i]
				svc, p := newRouting(t, ro, ns) // as after a restart
				if i == 0 {
					until(t, "pin stable", func(ctx context.Context) (bool, error) { return svc.PinStable(ctx, stableRevision) })
				}
				until(t, "canary service", func(ctx context.Context) (bool, error) { return svc.EnsureCanary(ctx, canaryRevision) })
				until(t, "routes", func(ctx context.Context) (bool, error) { return p.EnsureRoutes(ctx, stepRoute(t, step)) })
				checkStep(t, ns, origIngress, want)
			}

			svc, p := newRouting(t, ro, ns)
			if tc.rollback {
				until(t, "route to stable", p.Finalise)
				until(t, "restore stable", svc.RestoreStable)
				until(t, "remove canary", svc.RemoveCanary)
			} else {
				until(t, "restore stable", svc.RestoreStable)
				until(t, "route to stable", p.Finalise)
				until(t, "remove canary", svc.RemoveCanary)
			}
			gone(t, ns, "echoserver-canary", &networkingv1.Ingress{})
			gone(t, ns, "echoserver-canary", &corev1.Service{})
			ing, s := &networkingv1.Ingress{}, &corev1.Service{}
			get(t, ns, "echoserver", ing)
			get(t, ns, "echoserver", s)
			if !equality.Semantic.DeepEqual(origIngress.Spec, ing.Spec) || !equality.Semantic.DeepEqual(origIngress.Annotations, ing.Annotations) ||
				!equality.Semantic.DeepEqual(origIngress.Labels, ing.Labels) || ing.ResourceVersion != origIngress.ResourceVersion {
				t.Errorf("the stable Ingress changed:\n%s", cmp.Diff(origIngress, ing))
			}
			if !equality.Semantic.DeepEqual(origService.Spec, s.Spec) || !equality.Semantic.DeepEqual(origService.ObjectMeta.Labels, s.Labels) ||
				!equality.Semantic.DeepEqual(origService.ObjectMeta.Annotations, s.Annotations) {
				t.Errorf("the stable Service is not back to its original:\n%s", cmp.Diff(origService.Spec, s.Spec))
			}
		})
	}
}

// checkStep asserts the Services and the canary Ingress after a step.
func checkStep(t *testing.T, ns string, stable *networkingv1.Ingress, annotations map[string]string) {
	t.Helper()
	s, c := &corev1.Service{}, &corev1.Service{}
	get(t, ns, "echoserver", s)
	get(t, ns, "echoserver-canary", c)
	if d := cmp.Diff(map[string]string{"app": "echoserver", "pod-template-hash": stableRevision}, s.Spec.Selector); d != "" {
		t.Errorf("stable selector (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]string{"app": "echoserver", "pod-template-hash": canaryRevision}, c.Spec.Selector); d != "" {
		t.Errorf("canary selector (-want +got):\n%s", d)
	}
	if c.Spec.ClusterIP == s.Spec.ClusterIP || len(c.OwnerReferences) != 1 || c.OwnerReferences[0].Kind != "Rollout" {
		t.Errorf("canary service: clusterIP %s (stable %s), owners %v", c.Spec.ClusterIP, s.Spec.ClusterIP, c.OwnerReferences)
	}
	if !equality.Semantic.DeepEqual(s.Spec.Ports, c.Spec.Ports) {
		t.Errorf("canary ports %v, want the stable ones %v", c.Spec.Ports, s.Spec.Ports)
	}

	ing := &networkingv1.Ingress{}
	get(t, ns, "echoserver-canary", ing)
	if d := cmp.Diff(annotations, ing.Annotations); d != "" {
		t.Errorf("canary ingress annotations (-want +got):\n%s", d)
	}
	want := stable.Spec.DeepCopy()
	want.Rules[0].HTTP.Paths[0].Backend.Service.Name = "echoserver-canary"
	if d := cmp.Diff(*want, ing.Spec); d != "" {
		t.Errorf("canary ingress spec (-want +got):\n%s", d)
	}
	if len(ing.OwnerReferences) != 1 || ing.OwnerReferences[0].Name != "rollouts-demo" {
		t.Errorf("canary ingress owners = %v", ing.OwnerReferences)
	}
}

// A classType that is not built in runs the ConfigMap's script; without
// one it is an error at Initialize, and a step a class cannot express fails
// before anything is created.
func TestIngressClassesBeyondTheBuiltins(t *testing.T) {
	ns := framework.NewNamespace(t, cp)
	createKinds(t, ns, guide("echoserver.yaml"), "Service")
	createKinds(t, ns, guide("example1-ingress.yaml"), "Ingress")
	ro := createRollout(t, ns, "example1-rollout.yaml", func(ro *v1beta1.Rollout) {
		ro.Spec.Strategy.Canary.TrafficRoutings[0].Ingress.ClassType = "kong"
	})
	_, p := newRouting(t, ro, ns)
	if err := p.Initialize(t.Context()); err == nil || !strings.Contains(err.Error(), `classType "kong" is not built in`) {
		t.Errorf("Initialize with an unknown class = %v", err)
	}

	cm := &corev1.ConfigMap{Data: map[string]string{"lua.traffic.routing.ingress.kong": `
		local a = obj.annotations
		a["konghq.com/canary"] = "true"
		a["konghq.com/canary-weight"] = nil
		if obj.weight ~= "-1" then a["konghq.com/canary-weight"] = obj.weight end
		return a`}}
	cm.Name, cm.Namespace = "sluice-configuration", ns
	if err := cli.Create(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	_, p = newRouting(t, ro, ns)
	if err := p.Initialize(t.Context()); err != nil {
		t.Fatal(err)
	}
	until(t, "routes", func(ctx context.Context) (bool, error) {
		return p.EnsureRoutes(ctx, stepRoute(t, ro.Spec.Strategy.Canary.Steps[1]))
	})
	ing := &networkingv1.Ingress{}
	get(t, ns, "echoserver-canary", ing)
	want := map[string]string{"kubernetes.io/ingress.class": "nginx", "konghq.com/canary": "true", "konghq.com/canary-weight": "50"}
	if d := cmp.Diff(want, ing.Annotations); d != "" {
		t.Errorf("kong annotations (-want +got):\n%s", d)
	}
	until(t, "route to stable", p.Finalise)

	// nginx cannot express two matches: the step fails and nothing is created.
	ro.Spec.Strategy.Canary.TrafficRoutings[0].Ingress.ClassType = "nginx"
	_, p = newRouting(t, ro, ns)
	two := v1beta1.CanaryStep{TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{
		Matches: append(ro.Spec.Strategy.Canary.Steps[0].Matches, header("X-Canary", "yes")),
	}}
	_, err := p.EnsureRoutes(t.Context(), stepRoute(t, two))
	if !errors.Is(err, traffic.ErrUnsupported) || !strings.Contains(err.Error(), "express one match, the step has 2") {
		t.Errorf("two matches on nginx = %v", err)
	}
	gone(t, ns, "echoserver-canary", &networkingv1.Ingress{})
}
