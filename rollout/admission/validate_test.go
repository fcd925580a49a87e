package admission

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

func rollout(mutate func(r *v1beta1.Rollout)) *v1beta1.Rollout {
	one, half, all := intstr.FromInt32(1), intstr.FromString("50%"), intstr.FromString("100%")
	fifty := "50%"
	r := &v1beta1.Rollout{Spec: v1beta1.RolloutSpec{
		WorkloadRef: v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "echoserver"},
		Strategy: v1beta1.RolloutStrategy{Canary: &v1beta1.CanaryStrategy{
			Steps: []v1beta1.CanaryStep{
				{Replicas: &one},
				{Replicas: &half, TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: &fifty}},
				{Replicas: &all},
			},
			TrafficRoutings: []v1beta1.TrafficRoutingRef{{Service: "echoserver", Ingress: &v1beta1.IngressTrafficRouting{Name: "echoserver"}}},
		}},
	}}
	if mutate != nil {
		mutate(r)
	}
	return r
}

func TestValidateSpec(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		name      string
		mutate    func(*v1beta1.Rollout)
		v1beta1   bool
		wantField string // empty: valid
		wantText  string
	}{
		{name: "valid"},
		{name: "unsupported kind", mutate: func(r *v1beta1.Rollout) { r.Spec.WorkloadRef.Kind = "ReplicaSet" },
			wantField: "spec.workloadRef.kind", wantText: "Unsupported value"},
		{name: "blue-green on a StatefulSet", mutate: func(r *v1beta1.Rollout) {
			r.Spec.WorkloadRef.Kind = "StatefulSet"
			r.Spec.Strategy.BlueGreen = &v1beta1.BlueGreenStrategy{Steps: r.Spec.Strategy.Canary.Steps}
			r.Spec.Strategy.Canary = nil
		}, wantField: "spec.workloadRef.kind", wantText: "blue-green"},
		{name: "neither canary nor blueGreen", mutate: func(r *v1beta1.Rollout) { r.Spec.Strategy.Canary = nil },
			wantField: "spec.strategy", wantText: "Required"},
		{name: "no steps", mutate: func(r *v1beta1.Rollout) { r.Spec.Strategy.Canary.Steps = nil },
			wantField: "spec.strategy.canary.steps", wantText: "at least one step"},
		{name: "missing replicas", mutate: func(r *v1beta1.Rollout) { r.Spec.Strategy.Canary.Steps[0].Replicas = nil },
			wantField: "spec.strategy.canary.steps[0].replicas", wantText: "every step needs replicas"},
		{name: "replicas over 100%", mutate: func(r *v1beta1.Rollout) {
			v := intstr.FromString("120%")
			r.Spec.Strategy.Canary.Steps[2].Replicas = &v
		}, wantField: "spec.strategy.canary.steps[2].replicas", wantText: `<= "100%"`},
		{name: "decreasing replicas", mutate: func(r *v1beta1.Rollout) {
			v := intstr.FromString("10%")
			r.Spec.Strategy.Canary.Steps[2].Replicas = &v
		}, wantField: "spec.strategy.canary.steps[2].replicas", wantText: "must not decrease"},
		{name: "mixed number and percentage are not compared", mutate: func(r *v1beta1.Rollout) {
			v := intstr.FromInt32(100)
			r.Spec.Strategy.Canary.Steps[0].Replicas = &v
		}},
		{name: "traffic 0% in canary", mutate: func(r *v1beta1.Rollout) { r.Spec.Strategy.Canary.Steps[1].Traffic = str("0%") },
			wantField: "spec.strategy.canary.steps[1].traffic", wantText: `"0%" < traffic`},
		{name: "traffic not a percentage", mutate: func(r *v1beta1.Rollout) { r.Spec.Strategy.Canary.Steps[1].Traffic = str("50") },
			wantField: "spec.strategy.canary.steps[1].traffic", wantText: "percentage"},
		{name: "traffic 0% in blue-green", mutate: func(r *v1beta1.Rollout) {
			r.Spec.Strategy.Canary.Steps[1].Traffic = str("0%")
			r.Spec.Strategy.BlueGreen = &v1beta1.BlueGreenStrategy{Steps: r.Spec.Strategy.Canary.Steps, TrafficRoutings: r.Spec.Strategy.Canary.TrafficRoutings}
			r.Spec.Strategy.Canary = nil
		}},
		{name: "two traffic routings", mutate: func(r *v1beta1.Rollout) {
			c := r.Spec.Strategy.Canary
			c.TrafficRoutings = append(c.TrafficRoutings, c.TrafficRoutings[0])
		}, wantField: "spec.strategy.canary.trafficRoutings", wantText: "must have at most 1"},
		{name: "ingress without name", mutate: func(r *v1beta1.Rollout) { r.Spec.Strategy.Canary.TrafficRoutings[0].Ingress.Name = "" },
			wantField: "spec.strategy.canary.trafficRoutings[0].ingress.name"},
		{name: "routing without provider", mutate: func(r *v1beta1.Rollout) { r.Spec.Strategy.Canary.TrafficRoutings[0].Ingress = nil },
			wantField: "spec.strategy.canary.trafficRoutings[0]", wantText: "one of ingress, gateway or customNetworkRefs"},
		{name: "partition step over the limit with traffic (v1beta1)", v1beta1: true, mutate: func(r *v1beta1.Rollout) {
			v := intstr.FromString("80%")
			r.Spec.Strategy.Canary.Steps[1].Replicas = &v
		}, wantField: "spec.strategy.canary.steps[1].replicas", wantText: "at most 50%"},
		{name: "partition limit does not apply to v1alpha1", mutate: func(r *v1beta1.Rollout) {
			v := intstr.FromString("80%")
			r.Spec.Strategy.Canary.Steps[1].Replicas = &v
		}},
		{name: "partition limit does not apply to an extra canary workload", v1beta1: true, mutate: func(r *v1beta1.Rollout) {
			v := intstr.FromString("80%")
			r.Spec.Strategy.Canary.Steps[1].Replicas = &v
			r.Spec.Strategy.Canary.EnableExtraWorkloadForCanary = true
		}},
		{name: "extra canary workload for a StatefulSet", mutate: func(r *v1beta1.Rollout) {
			r.Spec.WorkloadRef.Kind = "StatefulSet"
			r.Spec.Strategy.Canary.EnableExtraWorkloadForCanary = true
		}, wantField: "spec.strategy.canary.enableExtraWorkloadForCanary"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateSpec(rollout(tc.mutate), tc.v1beta1, DefaultOptions)
			if tc.wantField == "" {
				if len(errs) > 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			for _, e := range errs {
				if e.Field == tc.wantField && strings.Contains(e.Error(), tc.wantText) {
					return
				}
			}
			t.Fatalf("want an error on %s containing %q, got %v", tc.wantField, tc.wantText, errs)
		})
	}
}

func TestValidateUpdateWhileProgressing(t *testing.T) {
	old := rollout(nil)
	old.Status.Phase = v1beta1.RolloutPhaseProgressing
	cur := rollout(func(r *v1beta1.Rollout) {
		r.Spec.WorkloadRef.Name = "other"
		r.Spec.Strategy.Canary.Steps = r.Spec.Strategy.Canary.Steps[:2]
		r.Spec.Strategy.Canary.TrafficRoutings[0].Service = "other"
		r.Spec.Strategy.Canary.EnableExtraWorkloadForCanary = true
	})
	got := map[string]bool{}
	for _, e := range ValidateUpdate(old, cur) {
		got[e.Field] = true
	}
	for _, f := range []string{"spec.workloadRef", "spec.strategy.canary.steps", "spec.strategy.canary.trafficRoutings", "spec.strategy.canary.enableExtraWorkloadForCanary"} {
		if !got[f] {
			t.Errorf("no error on %s (got %v)", f, got)
		}
	}
	old.Status.Phase = v1beta1.RolloutPhaseHealthy
	if errs := ValidateUpdate(old, cur); len(errs) > 0 {
		t.Fatalf("a Healthy Rollout may change: %v", errs)
	}
}

func TestToV1alpha1Paths(t *testing.T) {
	errs := ValidateSpec(rollout(func(r *v1beta1.Rollout) {
		r.Spec.Strategy.Canary.Steps[1].Traffic = func() *string { s := "0%"; return &s }()
		r.Spec.WorkloadRef.Kind = "Job"
	}), false, DefaultOptions)
	errs = toV1alpha1Paths(errs)
	want := map[string]bool{"spec.objectRef.workloadRef.kind": false, "spec.strategy.canary.steps[1].weight": false}
	for _, e := range errs {
		if _, ok := want[e.Field]; ok {
			want[e.Field] = true
		}
	}
	for f, seen := range want {
		if !seen {
			t.Errorf("no error on v1alpha1 path %s: %v", f, errs)
		}
	}
}

// A Rollout that only names a TrafficRouting routes by the
// TrafficRouting's strategy: its steps' own traffic is ignored, and the
// warning says why.
func TestTrafficRoutingRefStepsWarn(t *testing.T) {
	r := &v1beta1.Rollout{}
	weight := "20%"
	r.Spec.Strategy.Canary = &v1beta1.CanaryStrategy{TrafficRoutingRef: "full-link", Steps: []v1beta1.CanaryStep{
		{Replicas: ptrIntStr(intstr.FromInt(1))},
		{Replicas: ptrIntStr(intstr.FromInt(2)), TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: &weight}},
	}}
	w := Warnings(r)
	if len(w) != 1 || !strings.HasPrefix(w[0], "spec.strategy.canary.steps[1]: routes traffic but the strategy has no trafficRoutings (the TrafficRouting full-link routes by its own strategy)") {
		t.Errorf("warnings %q", w)
	}
	r.Spec.Strategy.Canary.Steps = r.Spec.Strategy.Canary.Steps[:1]
	if w := Warnings(r); len(w) != 0 {
		t.Errorf("a plain TrafficRouting reference warned: %q", w)
	}
}

// The TrafficRouting a release joined cannot be changed until it ends: the
// release would never let the old one go.
func TestTrafficRoutingRefImmutableWhileProgressing(t *testing.T) {
	old := &v1beta1.Rollout{}
	old.Spec.Strategy.Canary = &v1beta1.CanaryStrategy{TrafficRoutingRef: "full-link"}
	old.Status.Phase = v1beta1.RolloutPhaseProgressing
	cur := old.DeepCopy()
	cur.Spec.Strategy.Canary.TrafficRoutingRef = "other"
	errs := ValidateUpdate(old, cur)
	if len(errs) != 1 || errs[0].Field != "spec.strategy.canary.trafficRoutingRef" {
		t.Fatalf("errors %v", errs)
	}
	if got := toV1alpha1Paths(errs)[0].Field; got != "metadata.annotations[rollouts.kruise.io/trafficrouting]" {
		t.Errorf("v1alpha1 path %s", got)
	}
	old.Status.Phase = v1beta1.RolloutPhaseHealthy
	if errs := ValidateUpdate(old, cur); len(errs) != 0 {
		t.Errorf("a Healthy Rollout cannot change its TrafficRouting: %v", errs)
	}
}

func ptrIntStr(v intstr.IntOrString) *intstr.IntOrString { return &v }

// What a routing cannot express (two header matches on Nginx) is accepted,
// as Kruise Rollout accepts it, with a warning naming the step, in the
// version's own field path.
func TestWarnsOfWhatTheRoutingCannotExpress(t *testing.T) {
	exact := gatewayv1.HeaderMatchExact
	header := func(n string) v1beta1.HttpRouteMatch {
		return v1beta1.HttpRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{Type: &exact, Name: gatewayv1.HTTPHeaderName(n), Value: "v"}}}
	}
	r := rollout(func(r *v1beta1.Rollout) {
		r.Spec.Strategy.Canary.Steps[1].Matches = []v1beta1.HttpRouteMatch{header("a"), header("b")}
		r.Spec.Strategy.Canary.Steps[1].Traffic = nil
	})
	if errs := ValidateSpec(r, true, DefaultOptions); len(errs) > 0 {
		t.Fatalf("rejected: %v", errs)
	}
	ws := Warnings(r)
	if len(ws) != 1 || !strings.HasPrefix(ws[0], "spec.strategy.canary.steps[1].matches: ") || !strings.Contains(ws[0], "would stop at this step") {
		t.Fatalf("warnings %q, want one on steps[1].matches", ws)
	}
	r.Spec.Strategy.Canary.Steps[1].Matches = r.Spec.Strategy.Canary.Steps[1].Matches[:1]
	if ws := Warnings(r); len(ws) != 0 {
		t.Errorf("one header match is what Nginx expresses; warnings %q", ws)
	}
}
