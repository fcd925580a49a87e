package invariants

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/go-cmp/cmp"
)

// snapshot is a Rollout's objects when its workload was last at rest.
type snapshot struct {
	key      string // the objects' resourceVersions: unchanged, no new snapshot
	template string
	workload *workloadView
	service  *serviceView
	ingress  *ingressView
	route    *httpRouteView
	// absent names the release's own objects that did not exist at rest
	// and must not be left behind: the canary Service and Ingress.
	absent []string
}

// routingNames are the routing objects a Rollout names: the stable
// Service, the canary Service, the stable Ingress, the canary Ingress and
// the HTTPRoute ("" when not used).
func routingNames(t *tracker) (service, canaryService, ingress, canaryIngress, route string) {
	tr, disable := t.ro.routing()
	if tr == nil {
		return
	}
	service = tr.Service
	if !disable {
		canaryService = tr.Service + "-canary"
	}
	if tr.Ingress != nil {
		ingress, canaryIngress = tr.Ingress.Name, tr.Ingress.Name+"-canary"
	}
	if tr.Gateway != nil && tr.Gateway.HTTPRouteName != nil {
		route = *tr.Gateway.HTTPRouteName
	}
	return
}

func (m *Model) snapshot(t *tracker, w *workloadView, _ trafficFacts) {
	svc, csvc, ing, cing, route := routingNames(t)
	s := &snapshot{template: w.TemplateKey, workload: w, service: m.world.service(svc), ingress: m.world.ingress(ing), route: m.world.httpRoute(route)}
	key := []string{fmt.Sprint(w.RV)}
	if s.service != nil {
		key = append(key, "s"+fmt.Sprint(s.service.RV))
	}
	if s.ingress != nil {
		key = append(key, "i"+fmt.Sprint(s.ingress.RV))
	}
	if s.route != nil {
		key = append(key, "r"+fmt.Sprint(s.route.RV))
	}
	if csvc != "" && m.world.service(csvc) == nil {
		s.absent = append(s.absent, "Service "+csvc)
	}
	if cing != "" && m.world.ingress(cing) == nil {
		s.absent = append(s.absent, "Ingress "+cing)
	}
	key = append(key, s.absent...)
	s.key = strings.Join(key, "/")
	if t.snap != nil && t.snap.key == s.key {
		return
	}
	t.snap = s
}

func (m *Model) closeRelease(t *tracker, w *workloadView, _ trafficFacts) {
	r, s := t.rel, t.snap
	t.rel = nil
	m.ended++
	how := "completed"
	switch {
	case r.cancelled || w.TemplateKey == r.stable:
		how = "cancelled"
	case r.aborted:
		how = "rolled back and ended"
	}
	m.note(fmt.Sprintf("release of %s %s: the workload is at rest", t.workloadName(), how))
	if s == nil {
		return
	}
	if diffs := m.restorationDiffs(t, w, r, s); len(diffs) > 0 {
		m.violation(Restoration, t.subject(), fmt.Sprintf("the release of %s (%s) did not leave things as they were before it:\n  %s",
			t.workloadName(), how, strings.Join(diffs, "\n  ")))
	}
}

// releaseOwnedSpec are the workload spec fields a release may change and
// must put back: Deployment's paused, strategy, minReadySeconds and
// progressDeadlineSeconds (blue-green), and the partition of the others.
// Every other spec field is expected as the write that began the release
// left it (the user's own change); the template and replicas are not
// compared.
var releaseOwnedSpec = []string{"paused", "strategy", "minReadySeconds", "progressDeadlineSeconds", "updateStrategy"}

// ignoredMeta are labels and annotations that legitimately differ after a
// release: the Deployment controller's revision, kubectl's record of the
// last apply, and what Sluice puts on a workload for good or a user sets.
var ignoredMeta = []string{
	"deployment.kubernetes.io/revision",
	"kubectl.kubernetes.io/last-applied-configuration",
	"rollouts.kruise.io/workload-type",
	"rollouts.kruise.io/rollout-id",
}

// releaseOwnedMeta: label and annotation keys a release writes, which must
// be as they were at rest (no in-progressing, control-info, saved strategy
// or stable-revision mark left).
func releaseOwnedMeta(key string) bool {
	for _, p := range []string{"rollouts.kruise.io/", "batchrelease.rollouts.kruise.io/", "sluice.dev/"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func (m *Model) restorationDiffs(t *tracker, w *workloadView, r *release, s *snapshot) []string {
	var diffs []string
	add := func(what string, want, got any) {
		if d := cmp.Diff(normalize(want), normalize(got)); d != "" {
			diffs = append(diffs, fmt.Sprintf("%s (-before +after):\n%s", what, indent(d)))
		}
	}
	name := t.workloadName()
	// The workload: release-owned fields as at rest, the rest as the
	// user's write left it.
	start := r.startWrite
	wantSpec := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(start.Spec)) {
		wantSpec[k] = start.Spec[k]
	}
	for _, k := range releaseOwnedSpec {
		delete(wantSpec, k)
		if v, ok := s.workload.Spec[k]; ok {
			wantSpec[k] = v
		}
	}
	add(name+" spec", wantSpec, w.Spec)
	// A concurrent writer's keys are its own (see ConcurrentWriter).
	ws := []*meta{&start.meta, &s.workload.meta, &w.meta}
	add(name+" labels", withoutWritten(expectedMeta(s.workload.Labels, start.Labels), "l:", ws...), withoutWritten(comparableMeta(w.Labels), "l:", ws...))
	add(name+" annotations", withoutWritten(expectedMeta(s.workload.Annotations, start.Annotations), "a:", ws...), withoutWritten(comparableMeta(w.Annotations), "a:", ws...))

	svc, _, ing, _, route := routingNames(t)
	if s.service != nil {
		got := m.world.service(svc)
		if got == nil {
			diffs = append(diffs, "Service "+svc+" is gone")
		} else {
			ms := []*meta{&s.service.meta, &got.meta}
			add("Service "+svc+" spec", s.service.Spec, got.Spec)
			add("Service "+svc+" labels", withoutWritten(comparableMeta(s.service.Labels), "l:", ms...), withoutWritten(comparableMeta(got.Labels), "l:", ms...))
			add("Service "+svc+" annotations", withoutWritten(comparableMeta(s.service.Annotations), "a:", ms...), withoutWritten(comparableMeta(got.Annotations), "a:", ms...))
		}
	}
	if s.ingress != nil {
		got := m.world.ingress(ing)
		if got == nil {
			diffs = append(diffs, "Ingress "+ing+" is gone")
		} else {
			mi := []*meta{&s.ingress.meta, &got.meta}
			add("Ingress "+ing+" spec", s.ingress.Spec, got.Spec)
			add("Ingress "+ing+" annotations", withoutWritten(comparableMeta(s.ingress.Annotations), "a:", mi...), withoutWritten(comparableMeta(got.Annotations), "a:", mi...))
		}
	}
	if s.route != nil {
		got := m.world.httpRoute(route)
		if got == nil {
			diffs = append(diffs, "HTTPRoute "+route+" is gone")
		} else {
			add("HTTPRoute "+route+" spec", routeDefaults(s.route.Spec), routeDefaults(got.Spec))
			add("HTTPRoute "+route+" annotations", comparableMeta(s.route.Annotations), comparableMeta(got.Annotations))
		}
	}
	for _, a := range s.absent {
		kind, n, _ := strings.Cut(a, " ")
		if kind == "Service" && m.world.service(n) != nil || kind == "Ingress" && m.world.ingress(n) != nil {
			diffs = append(diffs, a+" is left behind")
		}
	}
	if w.Kind == Deployment {
		for _, c := range m.world.canaryDeployments(w.Name) {
			diffs = append(diffs, "canary Deployment "+c.Name+" is left behind")
		}
	}
	return diffs
}

// expectedMeta is a workload's labels or annotations after a release: the
// release-owned keys as at rest, the others as the starting write set them.
func expectedMeta(atRest, start map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range comparableMeta(start) {
		if !releaseOwnedMeta(k) {
			out[k] = v
		}
	}
	for k, v := range comparableMeta(atRest) {
		if releaseOwnedMeta(k) {
			out[k] = v
		}
	}
	return out
}

func comparableMeta(m map[string]string) map[string]string {
	out := maps.Clone(m)
	for _, k := range ignoredMeta {
		delete(out, k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// normalize makes equal what the API treats as equal: a field absent, null
// or at its zero value (false, 0, "", empty), e.g. a partition removed
// against a partition of 0.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if n := normalize(e); n != nil {
				out[k] = n
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case map[string]string:
		if len(x) == 0 {
			return nil
		}
		out := map[string]any{}
		for k, e := range x {
			if e != "" {
				out[k] = e
			}
		}
		return out
	case []any:
		if len(x) == 0 {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case bool:
		if !x {
			return nil
		}
	case string:
		if x == "" {
			return nil
		}
	case int64:
		if x == 0 {
			return nil
		}
	case float64:
		if x == 0 {
			return nil
		}
	case nil:
		return nil
	}
	return v
}

// routeDefaults gives an HTTPRoute's backendRefs their defaults (weight 1,
// kind Service), so a weight put back as 1 equals one never written.
func routeDefaults(spec map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range spec {
		out[k] = v
	}
	rules, _ := spec["rules"].([]any)
	var rs []any
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		rule = maps.Clone(rule)
		refs, _ := rule["backendRefs"].([]any)
		var bs []any
		for _, b := range refs {
			ref, _ := b.(map[string]any)
			ref = maps.Clone(ref)
			if ref["weight"] == nil {
				ref["weight"] = int64(1)
			}
			if ref["kind"] == nil {
				ref["kind"] = "Service"
			}
			bs = append(bs, ref)
		}
		if bs != nil {
			rule["backendRefs"] = bs
		}
		rs = append(rs, rule)
	}
	if rs != nil {
		out["rules"] = rs
	}
	return out
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
