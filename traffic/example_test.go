package traffic_test

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic"
	"github.com/sluicehq/sluice/traffic/route"
)

// The calls the release engine makes for the Kruise guide's Example 1:
// a header step, 50%, 100%, then the end of a successful release. Each
// call is repeated (after the grace period) until it reports done.
func Example() {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithObjects(echoserverService(), echoserverIngress()).Build()
	ro := &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "rollouts-demo", Namespace: "demo", UID: "uid-1"}}
	ro.Spec.Strategy.Canary = &v1beta1.CanaryStrategy{
		TrafficRoutings: []v1beta1.TrafficRoutingRef{{Service: "echoserver", Ingress: &v1beta1.IngressTrafficRouting{Name: "echoserver"}}},
	}
	exact := gatewayv1.HeaderMatchExact
	steps := []v1beta1.TrafficRoutingStrategy{
		{Matches: []v1beta1.HttpRouteMatch{{Headers: []gatewayv1.HTTPHeaderMatch{{Type: &exact, Name: "User-Agent", Value: "Andriod"}}}}},
		{Traffic: ptr("50%")},
		{Traffic: ptr("100%")},
	}

	o, _ := traffic.ForRollout(ro, traffic.PodTemplateHashLabel, nil)
	svc := traffic.NewServices(c, o)
	p, err := traffic.NewProvider(c, o)
	if err != nil {
		panic(err)
	}
	must(p.Initialize(ctx))                                                   // Initializing
	repeat(func() (bool, error) { return svc.PinStable(ctx, "stable-hash") }) // BeforeStepUpgrade of step 1
	for i, s := range steps {
		r, err := route.FromStep(s)
		must(err)
		repeat(func() (bool, error) { return svc.EnsureCanary(ctx, "canary-hash") }) // StepTrafficRouting
		repeat(func() (bool, error) { return p.EnsureRoutes(ctx, r) })
		fmt.Printf("step %d: %s\n", i+1, canaryAnnotations(ctx, c))
	}
	repeat(func() (bool, error) { return svc.RestoreStable(ctx) }) // finalising, success order
	repeat(func() (bool, error) { return p.Finalise(ctx) })
	repeat(func() (bool, error) { return svc.RemoveCanary(ctx) })
	fmt.Println("after:", canaryAnnotations(ctx, c))
	// Output:
	// step 1: [nginx.ingress.kubernetes.io/canary=true nginx.ingress.kubernetes.io/canary-by-header=User-Agent nginx.ingress.kubernetes.io/canary-by-header-value=Andriod]
	// step 2: [nginx.ingress.kubernetes.io/canary=true nginx.ingress.kubernetes.io/canary-weight=50]
	// step 3: [nginx.ingress.kubernetes.io/canary=true nginx.ingress.kubernetes.io/canary-weight=100]
	// after: no canary ingress
}

func canaryAnnotations(ctx context.Context, c client.Client) any {
	ing := &networkingv1.Ingress{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "echoserver-canary"}, ing); err != nil {
		return "no canary ingress"
	}
	keys := make([]string, 0, len(ing.Annotations))
	for k := range ing.Annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+ing.Annotations[k])
	}
	return out
}

func repeat(f func() (bool, error)) {
	for {
		done, err := f()
		must(err)
		if done {
			return
		}
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
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
