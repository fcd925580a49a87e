package invariants

import (
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// workloadFacts is what the invariants need to know about a Rollout's
// workload at one point of the timeline, computed from the objects alone.
type workloadFacts struct {
	w        *workloadView
	replicas int32
	// known is false while the new version's pods cannot be told apart: a
	// StatefulSet-like workload or CloneSet whose status has not yet
	// caught up with its spec (status.updateRevision is stale).
	known bool
	// newPods counts the new version's pods (not being deleted).
	newPods int
	// ready counts every ready pod of the workload (both versions, and a
	// canary Deployment's).
	ready int
	// surge and unavailable are maxSurge (rounded up) and maxUnavailable
	// (rounded per kind) as numbers of pods.
	surge, unavailable int32
	// promise is false when the workload promises no availability.
	promise bool
	// settled: the workload's controller has observed its latest spec.
	settled bool
	// rolled: the workload's controller reports every pod updated and
	// ready, and no release mark is left on it.
	rolled bool
}

// baseline is the new pods a forward stretch starts from; -1 while they
// cannot be counted (taken from the first count).
func (f workloadFacts) baseline() int {
	if !f.known {
		return -1
	}
	return f.newPods
}

// inProgressingAnnotation marks a workload frozen for a release.
const inProgressingAnnotation = "rollouts.kruise.io/in-progressing"

func (m *Model) facts(ro *rolloutView, w *workloadView) workloadFacts {
	f := workloadFacts{w: w, replicas: w.Replicas, settled: w.ObservedGeneration >= w.Generation, promise: !w.NoPromise}
	n := int(w.Replicas)
	switch w.Kind {
	case Deployment:
		// maxSurge rounds up, maxUnavailable down; when both come out 0 one
		// pod may be unavailable (the Deployment controller's rule).
		f.surge = scaled(w.Surge, n, true, 0)
		f.unavailable = scaled(w.Unavailable, n, false, 0)
		if f.surge == 0 && f.unavailable == 0 {
			f.unavailable = 1
		}
		f.known = true
		f.newPods, _ = m.world.pods(m.newOwners(ro, w))
	case StatefulSet, AdvancedStatefulSet:
		// Default 1, a percentage rounds down, never below 1 (the
		// StatefulSet controller's rule); no surge.
		f.unavailable = max(1, scaled(w.Unavailable, n, false, 1))
		f.known = f.settled && w.UpdateRevision != ""
		f.newPods, _ = m.world.revisionPods(w, w.UpdateRevision)
	case CloneSet:
		// OpenKruise: maxSurge default 0 rounds up; maxUnavailable default
		// 20%, rounded up when there is no surge, down otherwise.
		f.surge = scaled(w.Surge, n, true, 0)
		twenty := intstr.FromString("20%")
		u := w.Unavailable
		if u == nil {
			u = &twenty
		}
		f.unavailable = scaled(u, n, f.surge == 0, 0)
		f.known = f.settled && w.UpdateRevision != ""
		f.newPods, _ = m.world.revisionPods(w, w.UpdateRevision)
	}
	_, f.ready = m.world.pods(m.world.podOwners(w))

	frozen := w.Annotations[inProgressingAnnotation] != ""
	switch w.Kind {
	case Deployment:
		f.rolled = w.StatusReplicas == w.Replicas && w.Updated == w.Replicas && w.Available == w.Replicas &&
			len(m.world.canaryDeployments(w.Name)) == 0
	case StatefulSet, AdvancedStatefulSet:
		f.rolled = w.StatusReplicas == w.Replicas && w.Updated == w.Replicas && w.Ready == w.Replicas && w.CurrentRevision == w.UpdateRevision
	case CloneSet:
		f.rolled = w.StatusReplicas == w.Replicas && w.Updated == w.Replicas && w.Ready == w.Replicas
	}
	f.rolled = f.rolled && f.settled && !frozen && !w.Deleting
	return f
}

// newOwners are the UIDs whose pods run a Deployment's new version: its
// ReplicaSets with the Deployment's template (ignoring pod-template-hash),
// and, in canary style, the ReplicaSets of its canary Deployments that run
// that template with the Rollout's patchPodTemplateMetadata.
func (m *Model) newOwners(ro *rolloutView, d *workloadView) map[types.UID]bool {
	owners := map[types.UID]bool{}
	for _, rs := range m.world.replicaSetsOf(d) {
		if rs.TemplateKey == d.TemplateKey {
			owners[rs.UID] = true
		}
	}
	canaries := m.world.canaryDeployments(d.Name)
	if len(canaries) == 0 {
		return owners
	}
	want := canaryTemplateKey(ro, d)
	for _, c := range canaries {
		if c.TemplateKey != want {
			continue
		}
		for _, rs := range m.world.replicaSetsOf(c) {
			if rs.TemplateKey == c.TemplateKey {
				owners[rs.UID] = true
			}
		}
	}
	return owners
}

// canaryTemplateKey is the key of the template a canary Deployment runs:
// the Deployment's, with the Rollout's patchPodTemplateMetadata.
func canaryTemplateKey(ro *rolloutView, d *workloadView) string {
	var patch *v1beta1.PatchPodTemplateMetadata
	if ro != nil && ro.Spec.Strategy.Canary != nil {
		patch = ro.Spec.Strategy.Canary.PatchPodTemplateMetadata
	}
	if patch == nil || (len(patch.Labels) == 0 && len(patch.Annotations) == 0) {
		return d.TemplateKey
	}
	t := maps.Clone(d.Template)
	md, _ := t["metadata"].(map[string]any)
	md = maps.Clone(md)
	if md == nil {
		md = map[string]any{}
	}
	for field, add := range map[string]map[string]string{"labels": patch.Labels, "annotations": patch.Annotations} {
		if len(add) == 0 {
			continue
		}
		cur, _ := md[field].(map[string]any)
		cur = maps.Clone(cur)
		if cur == nil {
			cur = map[string]any{}
		}
		for k, v := range add {
			cur[k] = v
		}
		md[field] = cur
	}
	t["metadata"] = md
	key, _ := keyOf(t)
	return key
}

// scaled turns an int-or-percent of n into a number of pods; nil gives def.
func scaled(v *intstr.IntOrString, n int, roundUp bool, def int32) int32 {
	if v == nil {
		return def
	}
	x, err := intstr.GetScaledValueFromIntOrPercent(v, n, roundUp)
	if err != nil {
		return def
	}
	return int32(x)
}

// stepReplicas is the new-version pods step k (1-based) asks for: a number,
// or a percentage of the workload's replicas rounded up, capped at the
// replicas; step 0 (before the release's first step) asks for none.
// Worked example: 10 replicas, "33%" → ceil(3.3) = 4; 15 → 10.
func stepReplicas(steps []v1beta1.CanaryStep, k int32, replicas int32) int32 {
	if k <= 0 || len(steps) == 0 {
		return 0
	}
	s := steps[min(int(k), len(steps))-1]
	if s.Replicas == nil {
		return replicas
	}
	v, err := intstr.GetScaledValueFromIntOrPercent(s.Replicas, int(replicas), true)
	if err != nil {
		return replicas
	}
	return min(int32(v), replicas)
}

// stepTraffic is step k's traffic percentage; 0 for step 0 or no traffic.
func stepTraffic(steps []v1beta1.CanaryStep, k int32) float64 {
	if k <= 0 || len(steps) == 0 {
		return 0
	}
	return percent(steps[min(int(k), len(steps))-1].Traffic)
}

// trafficFacts is where a Rollout's routing sends requests.
type trafficFacts struct {
	routed bool
	stable string // the stable Service
	canary string // the canary Service ("" when it is the stable one)
	// canaryWeight is the highest share (percent) of requests the routing
	// sends to the canary Service by weight; canaryMatch is true when some
	// requests go there by a match (header, cookie, query, or an HTTPRoute
	// rule that routes only to the canary).
	canaryWeight float64
	canaryMatch  bool
	// stableServed is true when the routing sends requests to the stable
	// Service (a stable Ingress or HTTPRoute backend not shadowed by a
	// 100% canary).
	stableServed bool
	what         string // where the canary traffic comes from, for messages
}

func (t trafficFacts) canaryTraffic() bool { return t.canaryWeight > 0 || t.canaryMatch }

func (m *Model) traffic(ro *rolloutView) trafficFacts {
	tr, disable := ro.routing()
	if tr == nil || (tr.Ingress == nil && (tr.Gateway == nil || tr.Gateway.HTTPRouteName == nil)) {
		return trafficFacts{}
	}
	f := trafficFacts{routed: true, stable: tr.Service}
	if !disable {
		f.canary = tr.Service + "-canary"
	}
	if tr.Ingress != nil {
		stable := m.world.ingress(tr.Ingress.Name)
		shadowed := false
		for _, ing := range m.world.ingresses() {
			isCanary, w, match := ing.canary()
			if !isCanary || ing.Deleting {
				continue
			}
			if f.canary != "" && slices.Contains(ing.Backends, f.canary) && (w > 0 || match) {
				if w > f.canaryWeight {
					f.canaryWeight = w
				}
				f.canaryMatch = f.canaryMatch || match
				f.what = fmt.Sprintf("Ingress %s (weight %g%%, match %t)", ing.Name, w, match)
			}
			if stable != nil && w >= 100 && sharesHost(stable, ing) {
				shadowed = true
			}
		}
		if stable != nil && !stable.Deleting && slices.Contains(stable.Backends, f.stable) && !shadowed {
			f.stableServed = true
		}
	}
	if tr.Gateway != nil && tr.Gateway.HTTPRouteName != nil {
		if r := m.world.httpRoute(*tr.Gateway.HTTPRouteName); r != nil && !r.Deleting {
			for _, rule := range r.Rules {
				var sum, ws, wc int32
				hasStable := false
				for _, b := range rule.Backends {
					sum += b.Weight
					switch b.Name {
					case f.stable:
						hasStable, ws = true, ws+b.Weight
					case f.canary:
						wc += b.Weight
					}
				}
				if sum <= 0 {
					continue
				}
				if ws > 0 {
					f.stableServed = true
				}
				if wc <= 0 || f.canary == "" {
					continue
				}
				if !hasStable {
					// Kruise's match mode: a rule of its own that sends
					// its matching requests to the canary only.
					f.canaryMatch = true
					f.what = fmt.Sprintf("HTTPRoute %s (a rule routing only to %s)", r.Name, f.canary)
					continue
				}
				// Worked example: stable 80, canary 20 → 20 / 100 = 20%.
				if share := float64(wc) * 100 / float64(sum); share > f.canaryWeight {
					f.canaryWeight = share
					f.what = fmt.Sprintf("HTTPRoute %s (weight %d of %d)", r.Name, wc, sum)
				}
			}
		}
	}
	return f
}

// sharesHost reports whether two Ingresses have a rule for the same host
// (a rule without host matches every host).
func sharesHost(a, b *ingressView) bool {
	for _, x := range a.Hosts {
		for _, y := range b.Hosts {
			if x == y || x == "" || y == "" {
				return true
			}
		}
	}
	return false
}
