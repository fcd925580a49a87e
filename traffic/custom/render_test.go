package custom

import (
	"context"
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/traffic/internal/golden"
	"github.com/sluicehq/sluice/traffic/internal/steps"
	"github.com/sluicehq/sluice/traffic/route"
	"github.com/sluicehq/sluice/traffic/script"
)

const virtualService = `
spec:
  hosts: [echoserver.example.com]
  gateways: [public]
  http:
  - match:
    - uri: {prefix: /admin}
    route:
    - destination: {host: admin}
  - route:
    - destination: {host: echoserver.default.svc.cluster.local, port: {number: 80}, subset: v1}
      weight: 90
    - destination: {host: legacy, port: {number: 80}}
      weight: 10
  tcp:
  - route:
    - destination: {host: echoserver, port: {number: 9000}}
labels: {app: echoserver}
annotations: {team: web}
`

const destinationRule = `
spec:
  host: echoserver
  subsets:
  - name: v1
    labels: {version: v1}
`

type result struct {
	Step  string `json:"step"`
	Data  *Data  `json:"data,omitempty"`
	Error string `json:"error,omitempty"`
}

func renderSteps(t *testing.T, key, objYAML, stable, canary string) []result {
	t.Helper()
	var original Data
	if err := yaml.Unmarshal([]byte(objYAML), &original); err != nil {
		t.Fatal(err)
	}
	var out []result
	for _, s := range steps.All {
		d, err := Render(context.Background(), key, Builtin[key], original, s.Route, stable, canary)
		if err != nil {
			out = append(out, result{Step: s.Name, Error: err.Error()})
			continue
		}
		out = append(out, result{Step: s.Name, Data: &d})
	}
	return out
}

func TestBuiltinScriptsGolden(t *testing.T) {
	vs := ScriptKey("networking.istio.io/v1beta1", "VirtualService")
	dr := ScriptKey("networking.istio.io/v1", "DestinationRule")
	golden.Assert(t, "virtualservice", renderSteps(t, vs, virtualService, "echoserver", "echoserver-canary"))
	golden.Assert(t, "virtualservice-subset", renderSteps(t, vs, virtualService, "echoserver", "echoserver"))
	golden.Assert(t, "destinationrule", renderSteps(t, dr, destinationRule, "echoserver", "echoserver")[:1])
}

func TestScriptKeyIsKruises(t *testing.T) {
	for _, tc := range []struct{ apiVersion, kind, want string }{
		{"networking.istio.io/v1beta1", "VirtualService", "lua.traffic.routing.VirtualService.networking.istio.io"},
		{"apisix.apache.org/v2", "ApisixRoute", "lua.traffic.routing.ApisixRoute.apisix.apache.org"},
	} {
		if got := ScriptKey(tc.apiVersion, tc.kind); got != tc.want {
			t.Errorf("ScriptKey(%s, %s) = %s, want %s", tc.apiVersion, tc.kind, got, tc.want)
		}
	}
}

func TestRenderReportsBadScripts(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"no spec", "return {labels = {}}", "with a spec"},
		{"labels not strings", "return {spec = {a = 1}, labels = {x = {1}}}", "labels that are not strings"},
		{"runtime error", "local s = obj.data.spec\nreturn s.missing.field", "my.lua:2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(context.Background(), "my.lua", tc.src, Data{Spec: map[string]any{}}, route.Route{}, "a", "a-canary")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
			var se *script.Error
			if tc.name == "runtime error" && !errors.As(err, &se) {
				t.Errorf("err = %T, want *script.Error", err)
			}
		})
	}
}
