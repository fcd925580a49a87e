package ingress

import (
	"context"
	"fmt"
	"strconv"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic/route"
	"github.com/sluicehq/sluice/traffic/script"
)

// ScriptKey is the configuration key of the Lua script of a classType.
func ScriptKey(classType string) string { return "lua.traffic.routing.ingress." + classType }

// luaInput is the obj table Kruise's ingress scripts read; weight is a
// string, "-1" when the step has none.
type luaInput struct {
	Annotations           map[string]string           `json:"annotations"`
	Weight                string                      `json:"weight"`
	Matches               []v1beta1.HttpRouteMatch    `json:"matches"`
	CanaryService         string                      `json:"canaryService"`
	RequestHeaderModifier *gatewayv1.HTTPHeaderFilter `json:"requestHeaderModifier,omitempty"`
}

// luaClass is the Annotator of a script: it returns the annotation table.
func luaClass(ctx context.Context, name, source, canaryService string) Annotator {
	return func(current map[string]string, r route.Route) (map[string]string, error) {
		in := luaInput{
			Annotations:           current,
			Weight:                strconv.Itoa(int(r.CanaryWeight())),
			Matches:               r.Matches,
			CanaryService:         canaryService,
			RequestHeaderModifier: r.RequestHeaderModifier,
		}
		if in.Annotations == nil {
			in.Annotations = map[string]string{}
		}
		out, err := script.Run(ctx, name, source, in)
		if err != nil {
			return nil, err
		}
		return stringMap(name, out)
	}
}

// stringMap reads a script's result as annotations; numbers and booleans
// are written as Kubernetes would need them, as strings.
func stringMap(name string, v any) (map[string]string, error) {
	if v == nil {
		return map[string]string{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("lua script %s returned %T, want a table of annotations", name, v)
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		switch e := e.(type) {
		case string:
			out[k] = e
		case int64, float64, bool:
			out[k] = fmt.Sprint(e)
		default:
			return nil, fmt.Errorf("lua script %s returned annotation %q as %T, want a string", name, k, e)
		}
	}
	return out, nil
}
