package ingress

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/traffic/internal/golden"
	"github.com/sluicehq/sluice/traffic/internal/steps"
	"github.com/sluicehq/sluice/traffic/route"
)

// result is one step in a golden file: the annotations, or the error.
type result struct {
	Step        string            `json:"step"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// runSteps applies every step shape in turn, each to what the previous
// successful step left, starting from the canary as created (weight 0).
func runSteps(t *testing.T, a Annotator, stable map[string]string) []result {
	t.Helper()
	cur, err := a(stable, route.Route{Weight: route.Weight(0)})
	if err != nil {
		t.Fatal(err)
	}
	out := []result{{Step: "created", Annotations: cur}}
	for _, s := range steps.All {
		next, err := a(cur, s.Route)
		if err != nil {
			if !errors.Is(err, route.ErrUnsupported) {
				t.Errorf("%s: %v", s.Name, err)
			}
			out = append(out, result{Step: s.Name, Error: err.Error()})
			continue
		}
		cur = next
		out = append(out, result{Step: s.Name, Annotations: cur})
	}
	return out
}

func TestBuiltinClassesGolden(t *testing.T) {
	stable := map[string]string{
		"kubernetes.io/ingress.class":              "nginx",
		"mse.ingress.kubernetes.io/service-subset": "",
	}
	for _, class := range []string{"nginx", "higress", "aliyun-alb", "mse"} {
		t.Run(class, func(t *testing.T) {
			a, _ := BuiltinClass(class)
			golden.Assert(t, class, runSteps(t, a, stable))
		})
	}
}

// A user script sees Kruise's input table and returns the annotations.
func TestLuaClassGolden(t *testing.T) {
	const src = `
		local a = obj.annotations
		a["example.com/canary"] = "true"
		a["example.com/weight"] = nil
		a["example.com/header"] = nil
		if obj.weight ~= "-1" then a["example.com/weight"] = obj.weight end
		if obj.matches then
			for _, m in ipairs(obj.matches) do
				for _, h in ipairs(m.headers or {}) do a["example.com/header"] = h.name .. ":" .. h.value end
			end
		end
		a["example.com/service"] = obj.canaryService
		if obj.requestHeaderModifier then a["example.com/set"] = obj.requestHeaderModifier.set[1].name end
		return a`
	golden.Assert(t, "lua", runSteps(t, luaClass(context.Background(), "kong.lua", src, "echoserver-canary"), nil))
}
