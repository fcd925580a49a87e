package gateway

import (
	"k8s.io/apimachinery/pkg/api/equality"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic/route"
)

// Limits of the HTTPRoute API (CRD validation).
const (
	maxRules   = 16
	maxMatches = 64
)

// Render returns the rules of a step, always computed from the original
// rules (so steps never pile up):
//   - weight: every backendRef to the stable Service gets a canary copy;
//     with the stable Service alone in its rule the weights are 100-w and w
//     (Kruise's numbers), beside other backends the stable share W is
//     split W*(100-w) : W*w and the others are scaled by 100 to keep ratios.
//   - matches: each rule routing to stable gets a canary rule after the
//     original ones, sending only to the canary Service; a match with a
//     path stands alone, others are ANDed with each of the rule's matches.
//   - requestHeaderModifier: a filter on the canary rules, and on the
//     canary backendRefs of weighted rules.
//
// Weight and matches combine: matching requests go to the canary, the
// others are split by weight.
func Render(original []gatewayv1.HTTPRouteRule, r route.Route, b Backends) ([]gatewayv1.HTTPRouteRule, error) {
	canary := b.Canary
	rules := make([]gatewayv1.HTTPRouteRule, 0, len(original))
	var extra []gatewayv1.HTTPRouteRule
	for i := range original {
		rule := *original[i].DeepCopy()
		stableRefs := b.stableRefs(rule.BackendRefs)
		if len(stableRefs) == 0 {
			rules = append(rules, rule)
			continue
		}
		if r.Weight != nil {
			rule.BackendRefs = weighted(rule.BackendRefs, stableRefs, *r.Weight, canary, r.RequestHeaderModifier)
		}
		rules = append(rules, rule)
		if len(r.Matches) > 0 {
			c, err := canaryRule(original[i], stableRefs, r, canary)
			if err != nil {
				return nil, err
			}
			extra = append(extra, c)
		}
	}
	if len(rules)+len(extra) > maxRules {
		return nil, route.Unsupported("the HTTPRoute would need %d rules with the canary ones, more than the %d allowed", len(rules)+len(extra), maxRules)
	}
	return append(rules, extra...), nil
}

// isService reports whether ref is a core Service; an omitted kind or
// group means Service (Kruise missed this, openkruise/rollouts#342).
func isService(ref gatewayv1.BackendObjectReference) bool {
	return (ref.Group == nil || *ref.Group == "") && (ref.Kind == nil || *ref.Kind == "Service")
}

// Backends are the Services a step splits traffic between, in the
// HTTPRoute's namespace.
type Backends struct {
	Namespace, Stable, Canary string
}

// stableRefs are the indexes of the backendRefs to the stable Service.
func (b Backends) stableRefs(refs []gatewayv1.HTTPBackendRef) []int {
	var idx []int
	for i, ref := range refs {
		local := ref.Namespace == nil || string(*ref.Namespace) == b.Namespace
		if isService(ref.BackendObjectReference) && string(ref.Name) == b.Stable && local {
			idx = append(idx, i)
		}
	}
	return idx
}

func weightOf(ref gatewayv1.HTTPBackendRef) int32 {
	if ref.Weight == nil {
		return 1 // the API's default
	}
	return *ref.Weight
}

func canaryRef(stable gatewayv1.HTTPBackendRef, canary string, weight *int32, mod *gatewayv1.HTTPHeaderFilter) gatewayv1.HTTPBackendRef {
	c := *stable.DeepCopy()
	c.Name = gatewayv1.ObjectName(canary)
	c.Weight = weight
	if mod != nil {
		c.Filters = withHeaderModifier(c.Filters, mod)
	}
	return c
}

// weighted splits the stable backendRefs of one rule. Example, w=20: a
// rule [stable] becomes [stable 80, canary 20]; a rule [stable 3, other 1]
// becomes [stable 240, other 100, canary 60] (stable:canary 80:20 of the
// stable share, other keeps a quarter of all traffic).
func weighted(refs []gatewayv1.HTTPBackendRef, stableIdx []int, w int32, canary string, mod *gatewayv1.HTTPHeaderFilter) []gatewayv1.HTTPBackendRef {
	alone := len(stableIdx) == len(refs)
	out := make([]gatewayv1.HTTPBackendRef, 0, len(refs)+len(stableIdx))
	var canaries []gatewayv1.HTTPBackendRef
	isStable := map[int]bool{}
	for _, i := range stableIdx {
		isStable[i] = true
	}
	for i, ref := range refs {
		base := weightOf(ref)
		if alone {
			base = 1
		}
		if !isStable[i] {
			ref.Weight = ptr(base * 100)
			out = append(out, ref)
			continue
		}
		canaries = append(canaries, canaryRef(ref, canary, ptr(base*w), mod))
		ref.Weight = ptr(base * (100 - w))
		out = append(out, ref)
	}
	return append(out, canaries...)
}

// canaryRule is the A/B rule of a rule that routes to stable.
func canaryRule(rule gatewayv1.HTTPRouteRule, stableIdx []int, r route.Route, canary string) (gatewayv1.HTTPRouteRule, error) {
	c := *rule.DeepCopy()
	if c.Name != nil {
		c.Name = ptr(gatewayv1.SectionName(string(*c.Name) + "-canary"))
	}
	c.BackendRefs = nil
	for _, i := range stableIdx {
		c.BackendRefs = append(c.BackendRefs, canaryRef(rule.BackendRefs[i], canary, nil, nil))
	}
	if r.RequestHeaderModifier != nil {
		c.Filters = withHeaderModifier(c.Filters, r.RequestHeaderModifier)
	}
	ruleMatches := rule.Matches
	if len(ruleMatches) == 0 {
		ruleMatches = []gatewayv1.HTTPRouteMatch{{}}
	}
	c.Matches = nil
	for _, m := range r.Matches {
		if m.Path != nil {
			c.Matches = append(c.Matches, gatewayv1.HTTPRouteMatch{Path: m.Path.DeepCopy(), Headers: m.Headers, QueryParams: m.QueryParams})
			continue
		}
		for _, rm := range ruleMatches {
			c.Matches = append(c.Matches, mergeMatch(rm, m))
		}
	}
	if len(c.Matches) > maxMatches {
		return c, route.Unsupported("the canary rule would need %d matches, more than the %d allowed", len(c.Matches), maxMatches)
	}
	return c, nil
}

// mergeMatch ANDs a step match into a rule match; a step condition on a
// header or parameter the rule also tests replaces the rule's.
func mergeMatch(rm gatewayv1.HTTPRouteMatch, m v1beta1.HttpRouteMatch) gatewayv1.HTTPRouteMatch {
	out := *rm.DeepCopy()
	for _, h := range m.Headers {
		out.Headers = append(filterOut(out.Headers, func(x gatewayv1.HTTPHeaderMatch) bool { return x.Name == h.Name }), h)
	}
	for _, q := range m.QueryParams {
		out.QueryParams = append(filterOut(out.QueryParams, func(x gatewayv1.HTTPQueryParamMatch) bool { return x.Name == q.Name }), q)
	}
	return out
}

func filterOut[T any](xs []T, drop func(T) bool) []T {
	var out []T
	for _, x := range xs {
		if !drop(x) {
			out = append(out, x)
		}
	}
	return out
}

// withHeaderModifier adds mod to filters, merged into an existing
// RequestHeaderModifier since a rule may carry only one.
func withHeaderModifier(filters []gatewayv1.HTTPRouteFilter, mod *gatewayv1.HTTPHeaderFilter) []gatewayv1.HTTPRouteFilter {
	for i := range filters {
		if filters[i].Type == gatewayv1.HTTPRouteFilterRequestHeaderModifier && filters[i].RequestHeaderModifier != nil {
			f := filters[i].RequestHeaderModifier
			f.Set = mergeHeaders(f.Set, mod.Set)
			f.Add = append(f.Add, mod.Add...)
			f.Remove = append(f.Remove, mod.Remove...)
			return filters
		}
	}
	return append(filters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: mod.DeepCopy()})
}

func mergeHeaders(have, add []gatewayv1.HTTPHeader) []gatewayv1.HTTPHeader {
	for _, h := range add {
		have = append(filterOut(have, func(x gatewayv1.HTTPHeader) bool { return x.Name == h.Name }), h)
	}
	return have
}

func ptr[T any](v T) *T { return &v }

// Equal compares rules as the API server stores them: omitted fields
// that the CRD defaults count as their default.
func Equal(a, b []gatewayv1.HTTPRouteRule) bool {
	return equality.Semantic.DeepEqual(normalize(a), normalize(b))
}

func normalize(rules []gatewayv1.HTTPRouteRule) []gatewayv1.HTTPRouteRule {
	out := make([]gatewayv1.HTTPRouteRule, len(rules))
	for i := range rules {
		r := *rules[i].DeepCopy()
		if len(r.Matches) == 0 {
			r.Matches = []gatewayv1.HTTPRouteMatch{{}}
		}
		for j := range r.Matches {
			m := &r.Matches[j]
			if m.Path == nil {
				m.Path = &gatewayv1.HTTPPathMatch{}
			}
			if m.Path.Type == nil {
				m.Path.Type = ptr(gatewayv1.PathMatchPathPrefix)
			}
			if m.Path.Value == nil {
				m.Path.Value = ptr("/")
			}
			for k := range m.Headers {
				if m.Headers[k].Type == nil {
					m.Headers[k].Type = ptr(gatewayv1.HeaderMatchExact)
				}
			}
			for k := range m.QueryParams {
				if m.QueryParams[k].Type == nil {
					m.QueryParams[k].Type = ptr(gatewayv1.QueryParamMatchExact)
				}
			}
		}
		for j := range r.BackendRefs {
			b := &r.BackendRefs[j]
			if b.Group == nil {
				b.Group = ptr(gatewayv1.Group(""))
			}
			if b.Kind == nil {
				b.Kind = ptr(gatewayv1.Kind("Service"))
			}
			if b.Weight == nil {
				b.Weight = ptr(int32(1))
			}
		}
		out[i] = r
	}
	return out
}
