package traffic

import (
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic/custom"
	"github.com/sluicehq/sluice/traffic/gateway"
	"github.com/sluicehq/sluice/traffic/ingress"
)

func TestNewProviderPicksByRef(t *testing.T) {
	route := "echoserver"
	cases := []struct {
		name    string
		ref     v1beta1.TrafficRoutingRef
		want    string // Go type, or the error
		wantErr bool
	}{
		{name: "ingress", ref: v1beta1.TrafficRoutingRef{Service: "s", Ingress: &v1beta1.IngressTrafficRouting{Name: "i"}}, want: "*ingress.Provider"},
		{name: "gateway", ref: v1beta1.TrafficRoutingRef{Service: "s", Gateway: &v1beta1.GatewayTrafficRouting{HTTPRouteName: &route}}, want: "*gateway.Provider"},
		{name: "custom", ref: v1beta1.TrafficRoutingRef{Service: "s", CustomNetworkRefs: []v1beta1.ObjectRef{{APIVersion: "networking.istio.io/v1", Kind: "VirtualService", Name: "vs"}}}, want: "*custom.Provider"},
		{name: "several", ref: v1beta1.TrafficRoutingRef{Service: "s", Ingress: &v1beta1.IngressTrafficRouting{Name: "i"}, Gateway: &v1beta1.GatewayTrafficRouting{HTTPRouteName: &route}}, want: "traffic.Composite"},
		{name: "none is an error, not a default", ref: v1beta1.TrafficRoutingRef{Service: "s"}, want: "names no ingress, gateway or customNetworkRefs", wantErr: true},
		{name: "gateway without route", ref: v1beta1.TrafficRoutingRef{Service: "s", Gateway: &v1beta1.GatewayTrafficRouting{}}, want: "httpRouteName is required", wantErr: true},
		{name: "custom without kind", ref: v1beta1.TrafficRoutingRef{Service: "s", CustomNetworkRefs: []v1beta1.ObjectRef{{Name: "x"}}}, want: "need apiVersion, kind and name", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewProvider(fake.NewClientBuilder().Build(), Options{Namespace: "ns", Ref: tc.ref})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("err = %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got string
			switch p.(type) {
			case *ingress.Provider:
				got = "*ingress.Provider"
			case *gateway.Provider:
				got = "*gateway.Provider"
			case *custom.Provider:
				got = "*custom.Provider"
			case Composite:
				got = "traffic.Composite"
			}
			if got != tc.want {
				t.Errorf("provider = %T, want %s", p, tc.want)
			}
		})
	}
}
