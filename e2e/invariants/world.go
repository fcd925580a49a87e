package invariants

import (
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// world is the namespace as the events so far describe it: the latest
// view of every object, by kind and name.
type world struct {
	objs [numKinds]map[string]any
}

func newWorld() *world {
	w := &world{}
	for k := range w.objs {
		w.objs[k] = map[string]any{}
	}
	return w
}

func (w *world) set(k Kind, name string, v any) { w.objs[k][name] = v }
func (w *world) remove(k Kind, name string)     { delete(w.objs[k], name) }

// digest is every object's resourceVersion by kind and name: what an
// exact read at the same revision must return.
func (w *world) digest() map[Kind]map[string]uint64 {
	out := map[Kind]map[string]uint64{}
	for k, objs := range w.objs {
		d := map[string]uint64{}
		for name, v := range objs {
			d[name] = rvOf(v)
		}
		out[Kind(k)] = d
	}
	return out
}

func rvOf(v any) uint64 {
	switch x := v.(type) {
	case *podView:
		return x.RV
	case *replicaSetView:
		return x.RV
	case *workloadView:
		return x.RV
	case *serviceView:
		return x.RV
	case *endpointSliceView:
		return x.RV
	case *ingressView:
		return x.RV
	case *httpRouteView:
		return x.RV
	case *analysisRunView:
		return x.RV
	case *rolloutView:
		return x.RV
	}
	return 0
}

func (w *world) workload(k Kind, name string) *workloadView {
	v, _ := w.objs[k][name].(*workloadView)
	return v
}

func (w *world) rollout(name string) *rolloutView {
	v, _ := w.objs[Rollout][name].(*rolloutView)
	return v
}

func (w *world) rollouts() []*rolloutView {
	out := make([]*rolloutView, 0, len(w.objs[Rollout]))
	for _, name := range slices.Sorted(maps.Keys(w.objs[Rollout])) {
		out = append(out, w.objs[Rollout][name].(*rolloutView))
	}
	return out
}

func (w *world) service(name string) *serviceView {
	v, _ := w.objs[Service][name].(*serviceView)
	return v
}

func (w *world) ingress(name string) *ingressView {
	v, _ := w.objs[Ingress][name].(*ingressView)
	return v
}

func (w *world) httpRoute(name string) *httpRouteView {
	v, _ := w.objs[HTTPRoute][name].(*httpRouteView)
	return v
}

func (w *world) ingresses() []*ingressView {
	out := make([]*ingressView, 0, len(w.objs[Ingress]))
	for _, name := range slices.Sorted(maps.Keys(w.objs[Ingress])) {
		out = append(out, w.objs[Ingress][name].(*ingressView))
	}
	return out
}

// pods returns the counting pods (not being deleted, not finished) whose
// controller is one of owners.
func (w *world) pods(owners map[types.UID]bool) (all, ready int) {
	for _, v := range w.objs[Pod] {
		p := v.(*podView)
		if p.Gone || !owners[p.Controller] {
			continue
		}
		all++
		if p.Ready {
			ready++
		}
	}
	return all, ready
}

// readySelected counts the ready counting pods a Service selector selects.
func (w *world) readySelected(selector map[string]string) int {
	if len(selector) == 0 {
		return 0
	}
	sel := labels.SelectorFromSet(selector)
	n := 0
	for _, v := range w.objs[Pod] {
		if p := v.(*podView); !p.Gone && p.Ready && sel.Matches(labels.Set(p.Labels)) {
			n++
		}
	}
	return n
}

// readyEndpoints counts the ready endpoints of a Service's EndpointSlices.
func (w *world) readyEndpoints(service string) int {
	n := 0
	for _, v := range w.objs[EndpointSlice] {
		if es := v.(*endpointSliceView); es.Service == service && !es.Deleting {
			n += es.Ready
		}
	}
	return n
}

// replicaSetsOf returns the ReplicaSets a Deployment controls.
func (w *world) replicaSetsOf(d *workloadView) []*replicaSetView {
	var out []*replicaSetView
	for _, v := range w.objs[ReplicaSet] {
		if rs := v.(*replicaSetView); rs.Controller == d.UID {
			out = append(out, rs)
		}
	}
	return out
}

// canaryDeployments returns the canary Deployments of a canary-style
// release of the Deployment named stable.
func (w *world) canaryDeployments(stable string) []*workloadView {
	var out []*workloadView
	for _, v := range w.objs[Deployment] {
		if d := v.(*workloadView); d.Labels[canaryDeploymentLabel] == stable {
			out = append(out, d)
		}
	}
	return out
}

// canaryDeploymentLabel marks a canary Deployment with the name of the
// Deployment it releases.
const canaryDeploymentLabel = "rollouts.kruise.io/canary-deployment"

// ownedPods: the UIDs whose pods belong to a workload. For a Deployment
// they are its ReplicaSets (and, in canary style, its canary Deployments'
// ReplicaSets); for the others the workload itself.
func (w *world) podOwners(wl *workloadView) map[types.UID]bool {
	owners := map[types.UID]bool{}
	if wl.Kind != Deployment {
		owners[wl.UID] = true
		return owners
	}
	for _, rs := range w.replicaSetsOf(wl) {
		owners[rs.UID] = true
	}
	for _, c := range w.canaryDeployments(wl.Name) {
		for _, rs := range w.replicaSetsOf(c) {
			owners[rs.UID] = true
		}
	}
	return owners
}

// revisionPods counts the pods a StatefulSet-like workload or a CloneSet
// controls with controller-revision-hash = revision.
func (w *world) revisionPods(wl *workloadView, revision string) (all, ready int) {
	for _, v := range w.objs[Pod] {
		p := v.(*podView)
		if p.Gone || p.Controller != wl.UID || p.Labels[appsv1.ControllerRevisionHashLabelKey] != revision {
			continue
		}
		all++
		if p.Ready {
			ready++
		}
	}
	return all, ready
}

// runs returns the AnalysisRuns of a Rollout.
func (w *world) runs(rollout string) []*analysisRunView {
	var out []*analysisRunView
	for _, name := range slices.Sorted(maps.Keys(w.objs[AnalysisRun])) {
		if ar := w.objs[AnalysisRun][name].(*analysisRunView); ar.Rollout == rollout {
			out = append(out, ar)
		}
	}
	return out
}
