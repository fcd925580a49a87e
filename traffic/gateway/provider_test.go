package gateway

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/traffic/route"
)

// A write that loses a race is redone; restore gives back the original.
func TestProviderRetriesConflictsAndRestores(t *testing.T) {
	ctx := context.Background()
	s := runtime.NewScheme()
	if err := gatewayv1.Install(s); err != nil {
		t.Fatal(err)
	}
	hr := &gatewayv1.HTTPRoute{}
	if err := yaml.Unmarshal([]byte(originalYAML), &hr.Spec.Rules); err != nil {
		t.Fatal(err)
	}
	hr.Name, hr.Namespace = "echoserver", "ns"
	conflicts := 1
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(hr).WithInterceptorFuncs(interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if conflicts > 0 {
				conflicts--
				return apierrors.NewConflict(schema.GroupResource{Group: "gateway.networking.k8s.io", Resource: "httproutes"}, obj.GetName(), nil)
			}
			return c.Update(ctx, obj, opts...)
		},
	}).Build()
	p := New(c, Config{Namespace: "ns", HTTPRouteName: "echoserver", StableService: "echoserver", CanaryService: "echoserver-canary"})

	if err := p.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	r := route.Route{Weight: route.Weight(30)}
	if done, err := p.EnsureRoutes(ctx, r); done || err != nil {
		t.Fatalf("first EnsureRoutes = %v, %v; want a change after the retried conflict", done, err)
	}
	if done, err := p.EnsureRoutes(ctx, r); !done || err != nil {
		t.Fatalf("second EnsureRoutes = %v, %v; want done", done, err)
	}
	for done := false; !done; {
		var err error
		if done, err = p.Finalise(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := &gatewayv1.HTTPRoute{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(hr), got); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(hr.Spec, got.Spec) || len(got.Annotations) != 0 {
		t.Errorf("not restored: %+v, annotations %v", got.Spec, got.Annotations)
	}
}
