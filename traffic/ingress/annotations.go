package ingress

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic/route"
)

// Annotator computes the canary Ingress annotations of a step from its
// current ones. It must be pure: the provider compares its result with the
// live object to know whether anything has to change.
type Annotator func(current map[string]string, r route.Route) (map[string]string, error)

// Built-in classes, by classType. Any other classType needs a Lua script.
var builtin = map[string]Annotator{
	"nginx":      nginx,
	"higress":    canaryAnnotations("higress", "nginx.ingress.kubernetes.io/", nil, headerControl("higress.io/")),
	"aliyun-alb": canaryAnnotations("aliyun-alb", "alb.ingress.kubernetes.io/", map[string]string{"alb.ingress.kubernetes.io/order": "1"}, nil),
	"mse":        mseAnnotations,
}

var nginx = canaryAnnotations("nginx", "nginx.ingress.kubernetes.io/", nil, nil)

// BuiltinClass returns the Go annotator of a built-in classType.
func BuiltinClass(classType string) (Annotator, bool) {
	a, ok := builtin[classType]
	return a, ok
}

// The suffixes of the match annotations, cleared at every step so the
// previous step's match never lingers.
var matchKeys = []string{"canary-by-cookie", "canary-by-header", "canary-by-header-pattern", "canary-by-header-value", "canary-weight"}

// canaryAnnotations is the nginx family (nginx, higress, aliyun-alb): one
// header (or cookie) and a weight, under prefix. extra are fixed annotations; headers,
// when set, expresses requestHeaderModifier.
func canaryAnnotations(class, prefix string, extra map[string]string, headers func(map[string]string, *gatewayv1.HTTPHeaderFilter)) Annotator {
	return func(current map[string]string, r route.Route) (map[string]string, error) {
		out := maps.Clone(current)
		if out == nil {
			out = map[string]string{}
		}
		for _, k := range matchKeys {
			delete(out, prefix+k)
		}
		maps.Copy(out, extra)
		out[prefix+"canary"] = "true"
		if r.Weight != nil {
			out[prefix+"canary-weight"] = strconv.Itoa(int(*r.Weight))
		}
		m, err := singleMatch(class, r.Matches, false)
		if err != nil {
			return nil, err
		}
		if m != nil {
			if err := setHeaderMatch(out, prefix, m.Headers[0]); err != nil {
				return nil, err
			}
		}
		if headers != nil {
			headers(out, r.RequestHeaderModifier)
		} else if r.RequestHeaderModifier != nil {
			return nil, route.Unsupported("%s annotations cannot modify request headers (requestHeaderModifier); use classType mse or higress, or the Gateway API", class)
		}
		return out, nil
	}
}

// singleMatch checks that the matches fit what annotation-based canaries
// can express: at most one match (Kruise keeps only the last of several,
// silently), no path, exactly one header and, when queries is true, at
// most one query parameter in place of or beside it.
func singleMatch(class string, matches []v1beta1.HttpRouteMatch, queries bool) (*v1beta1.HttpRouteMatch, error) {
	switch {
	case len(matches) == 0:
		return nil, nil
	case len(matches) > 1:
		return nil, route.Unsupported("%s annotations express one match, the step has %d: split them into steps or use the Gateway API", class, len(matches))
	}
	m := &matches[0]
	switch {
	case m.Path != nil:
		return nil, route.Unsupported("%s annotations cannot match a path: the canary Ingress already has the stable Ingress's paths", class)
	case !queries && len(m.QueryParams) > 0:
		return nil, route.Unsupported("%s annotations cannot match query parameters; use classType mse or the Gateway API", class)
	case len(m.QueryParams) > 1:
		return nil, route.Unsupported("%s annotations match one query parameter, the step has %d", class, len(m.QueryParams))
	case len(m.Headers) > 1:
		return nil, route.Unsupported("%s annotations match one header, the step has %d", class, len(m.Headers))
	case len(m.Headers) == 0 && len(m.QueryParams) == 0:
		return nil, route.Unsupported("%s annotations cannot express an empty match", class)
	}
	return m, nil
}

// setHeaderMatch writes one header match. The header name
// "canary-by-cookie" is Kruise's convention for a cookie match.
func setHeaderMatch(out map[string]string, prefix string, h gatewayv1.HTTPHeaderMatch) error {
	regex := h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression
	if string(h.Name) == "canary-by-cookie" {
		if regex {
			return route.Unsupported("a cookie match cannot be a regular expression")
		}
		out[prefix+"canary-by-cookie"] = h.Value
		return nil
	}
	out[prefix+"canary-by-header"] = string(h.Name)
	if regex {
		out[prefix+"canary-by-header-pattern"] = h.Value
	} else {
		out[prefix+"canary-by-header-value"] = h.Value
	}
	return nil
}

const msePrefix = "mse.ingress.kubernetes.io/"

// mseAnnotations is nginx plus what MSE adds: a query parameter match
// (under mse.ingress.kubernetes.io/, where Kruise wrongly writes
// nginx.ingress.kubernetes.io/canary-by-query), request header control and
// the gray service subset.
func mseAnnotations(current map[string]string, r route.Route) (map[string]string, error) {
	base := r
	base.Matches, base.RequestHeaderModifier = nil, nil
	out, err := nginx(current, base)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"canary-by-query", "canary-by-query-value", "canary-by-query-pattern"} {
		delete(out, msePrefix+k)
		delete(out, "nginx.ingress.kubernetes.io/"+k) // left by Kruise's script
	}
	if _, ok := out[msePrefix+"service-subset"]; ok {
		out[msePrefix+"service-subset"] = "gray"
	}
	headerControl(msePrefix)(out, r.RequestHeaderModifier)

	m, err := singleMatch("mse", r.Matches, true)
	if err != nil || m == nil {
		return out, err
	}
	if len(m.Headers) == 1 {
		if err := setHeaderMatch(out, "nginx.ingress.kubernetes.io/", m.Headers[0]); err != nil {
			return nil, err
		}
	}
	if len(m.QueryParams) == 1 {
		q := m.QueryParams[0]
		if q.Type != nil && *q.Type != gatewayv1.QueryParamMatchExact {
			return nil, route.Unsupported("mse matches query parameters by exact value only, not %s", *q.Type)
		}
		out[msePrefix+"canary-by-query"] = string(q.Name)
		out[msePrefix+"canary-by-query-value"] = q.Value
	}
	return out, nil
}

// headerControl writes requestHeaderModifier as the request-header-control
// annotations MSE and Higress read: one "name value" per line for add and
// update, comma-separated names for remove.
func headerControl(prefix string) func(map[string]string, *gatewayv1.HTTPHeaderFilter) {
	return func(out map[string]string, f *gatewayv1.HTTPHeaderFilter) {
		for _, k := range []string{"add", "update", "remove"} {
			delete(out, prefix+"request-header-control-"+k)
		}
		if f == nil {
			return
		}
		if v := headerLines(f.Add); v != "" {
			out[prefix+"request-header-control-add"] = v
		}
		if v := headerLines(f.Set); v != "" {
			out[prefix+"request-header-control-update"] = v
		}
		if len(f.Remove) > 0 {
			names := append([]string(nil), f.Remove...)
			sort.Strings(names)
			out[prefix+"request-header-control-remove"] = strings.Join(names, ",")
		}
	}
}

func headerLines(hs []gatewayv1.HTTPHeader) string {
	lines := make([]string, 0, len(hs))
	for _, h := range hs {
		lines = append(lines, fmt.Sprintf("%s %s", h.Name, h.Value))
	}
	return strings.Join(lines, "\n")
}
