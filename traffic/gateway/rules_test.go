package gateway

import (
	"errors"
	"testing"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/traffic/internal/golden"
	"github.com/sluicehq/sluice/traffic/internal/steps"
	"github.com/sluicehq/sluice/traffic/route"
)

// The original rules: the stable Service alone (its kind omitted, as Envoy
// Gateway users write it), an unrelated backend, the stable Service beside
// another backend under a header match, and the stable Service named with
// its own namespace (counts) and with another one (another Service).
const originalYAML = `
- matches:
  - path: {type: PathPrefix, value: /apis/echo}
  backendRefs:
  - name: echoserver
    port: 80
- matches:
  - path: {type: PathPrefix, value: /other}
  backendRefs:
  - {group: "", kind: Service, name: other, port: 80}
- name: tenant
  matches:
  - headers: [{type: Exact, name: X-Tenant, value: acme}]
  backendRefs:
  - {kind: Service, name: echoserver, port: 80, weight: 3}
  - {kind: Service, name: legacy, port: 80, weight: 1}
- matches:
  - path: {type: Exact, value: /same-namespace}
  backendRefs:
  - {name: echoserver, namespace: ns, port: 80}
- matches:
  - path: {type: Exact, value: /other-namespace}
  backendRefs:
  - {name: echoserver, namespace: other, port: 80}
`

var echo = Backends{Namespace: "ns", Stable: "echoserver", Canary: "echoserver-canary"}

type result struct {
	Step  string                    `json:"step"`
	Rules []gatewayv1.HTTPRouteRule `json:"rules,omitempty"`
	Error string                    `json:"error,omitempty"`
}

func TestRenderGolden(t *testing.T) {
	var original []gatewayv1.HTTPRouteRule
	if err := yaml.Unmarshal([]byte(originalYAML), &original); err != nil {
		t.Fatal(err)
	}
	var out []result
	for _, s := range steps.All {
		rules, err := Render(original, s.Route, echo)
		if err != nil {
			if !errors.Is(err, route.ErrUnsupported) {
				t.Errorf("%s: %v", s.Name, err)
			}
			out = append(out, result{Step: s.Name, Error: err.Error()})
			continue
		}
		out = append(out, result{Step: s.Name, Rules: rules})
	}
	golden.Assert(t, "httproute", out)

	if got, _ := Render(original, route.Route{}, echo); !Equal(got, original) {
		t.Error("a Route without weight or matches must leave the rules as they are")
	}
}

func TestEqualTreatsDefaultsAsSet(t *testing.T) {
	var bare, defaulted []gatewayv1.HTTPRouteRule
	_ = yaml.Unmarshal([]byte(`[{backendRefs: [{name: a}]}]`), &bare)
	_ = yaml.Unmarshal([]byte(`[{matches: [{path: {type: PathPrefix, value: /}}], backendRefs: [{group: "", kind: Service, name: a, weight: 1}]}]`), &defaulted)
	if !Equal(bare, defaulted) {
		t.Error("rules differing only by CRD defaults must be equal")
	}
	defaulted[0].BackendRefs[0].Weight = ptr(int32(2))
	if Equal(bare, defaulted) {
		t.Error("a different weight must not be equal")
	}
}

func TestTooManyRulesIsUnsupported(t *testing.T) {
	rules := make([]gatewayv1.HTTPRouteRule, 9)
	for i := range rules {
		rules[i].BackendRefs = []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "s"}}}}
	}
	_, err := Render(rules, route.Route{Matches: steps.All[0].Route.Matches}, Backends{Namespace: "ns", Stable: "s", Canary: "s-canary"})
	if !errors.Is(err, route.ErrUnsupported) {
		t.Errorf("err = %v, want ErrUnsupported", err)
	}
}
