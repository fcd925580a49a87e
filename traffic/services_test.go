package traffic

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluicehq/sluice/traffic/internal/golden"
)

func stableService() *corev1.Service {
	local := corev1.IPFamilyPolicySingleStack
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echoserver", Namespace: "ns", Labels: map[string]string{"app": "echoserver"},
			Annotations: map[string]string{"team": "web"}, ResourceVersion: "7", UID: "uid-1"},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeLoadBalancer,
			ClusterIP:             "10.0.0.7",
			ClusterIPs:            []string{"10.0.0.7"},
			ExternalIPs:           []string{"1.2.3.4"},
			IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
			IPFamilyPolicy:        &local,
			LoadBalancerIP:        "5.6.7.8",
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			HealthCheckNodePort:   31000,
			Ports:                 []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080}},
			Selector:              map[string]string{"app": "echoserver"},
		},
	}
}

func TestNewCanaryServiceGolden(t *testing.T) {
	owner := &metav1.OwnerReference{APIVersion: "rollouts.kruise.io/v1beta1", Kind: "Rollout", Name: "rollouts-demo", UID: "r-1"}
	golden.Assert(t, "canary-service", NewCanaryService(stableService(), "echoserver-canary", PodTemplateHashLabel, "5d7f9c", owner))
}

func TestServicesLifecycle(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithObjects(stableService()).Build()
	s := Services{Client: c, Namespace: "ns", Stable: "echoserver", Canary: "echoserver-canary", RevisionLabel: PodTemplateHashLabel}

	untilDone(t, "pin stable", func() (bool, error) { return s.PinStable(ctx, "stable1") })
	untilDone(t, "ensure canary", func() (bool, error) { return s.EnsureCanary(ctx, "new1") })
	untilDone(t, "canary follows a new revision", func() (bool, error) { return s.EnsureCanary(ctx, "new2") })
	wantSelector(t, c, "echoserver", map[string]string{"app": "echoserver", "pod-template-hash": "stable1"})
	wantSelector(t, c, "echoserver-canary", map[string]string{"app": "echoserver", "pod-template-hash": "new2"})

	untilDone(t, "restore stable", func() (bool, error) { return s.RestoreStable(ctx) })
	untilDone(t, "remove canary", func() (bool, error) { return s.RemoveCanary(ctx) })
	wantSelector(t, c, "echoserver", map[string]string{"app": "echoserver"})
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "echoserver-canary"}, &corev1.Service{}); err == nil {
		t.Error("canary service still exists")
	}
}

func TestServicesWithoutCanaryServiceTouchNothing(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithObjects(stableService()).Build()
	s := NewServices(c, Options{Namespace: "ns", DisableGenerateCanaryService: true})
	s.Stable, s.Canary = "echoserver", "echoserver"
	for name, call := range map[string]func() (bool, error){
		"pin":    func() (bool, error) { return s.PinStable(ctx, "stable1") },
		"canary": func() (bool, error) { return s.EnsureCanary(ctx, "new1") },
		"remove": func() (bool, error) { return s.RemoveCanary(ctx) },
	} {
		if done, err := call(); !done || err != nil {
			t.Errorf("%s = %v, %v; want done at once", name, done, err)
		}
	}
	wantSelector(t, c, "echoserver", map[string]string{"app": "echoserver"})
}

// untilDone calls f until it reports done; an idempotent call must get
// there in a few calls.
func untilDone(t *testing.T, what string, f func() (bool, error)) {
	t.Helper()
	for i := 0; i < 3; i++ {
		done, err := f()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if done {
			return
		}
	}
	t.Fatalf("%s: not done after 3 calls", what)
}

func wantSelector(t *testing.T, c client.Client, name string, want map[string]string) {
	t.Helper()
	svc := &corev1.Service{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: name}, svc); err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Selector) != len(want) {
		t.Errorf("%s selector = %v, want %v", name, svc.Spec.Selector, want)
	}
	for k, v := range want {
		if svc.Spec.Selector[k] != v {
			t.Errorf("%s selector = %v, want %v", name, svc.Spec.Selector, want)
		}
	}
}
