package v1alpha1

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/randfill"
	"sigs.k8s.io/yaml"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// filler makes random objects that every version can express: weights are
// whole percentages and every step has replicas (an unset replicas is filled
// from the weight on the way up, by design).
func filler(seed int64) *randfill.Filler {
	return randfill.NewWithSeed(seed).NilChance(0.2).NumElements(0, 3).Funcs(
		func(s *CanaryStep, c randfill.Continue) {
			c.FillNoCustom(s)
			if s.Replicas == nil {
				r := intstr.FromInt32(c.Int31())
				s.Replicas = &r
			}
		},
		func(s *v1beta1.CanaryStep, c randfill.Continue) {
			c.FillNoCustom(s)
			if s.Traffic != nil {
				t := fmt.Sprintf("%d%%", c.Int31n(101))
				s.Traffic = &t
			}
		},
		func(s *v1beta1.RolloutStrategy, c randfill.Continue) {
			c.FillNoCustom(s)
			if s.Canary != nil {
				s.BlueGreen = nil // one of the two, as admission enforces
			}
		},
		func(s *v1beta1.RolloutStatus, c randfill.Continue) {
			c.FillNoCustom(s)
			// The top-level step fields mirror the sub-status.
			switch {
			case s.CanaryStatus != nil:
				s.CurrentStepIndex, s.CurrentStepState = s.CanaryStatus.CurrentStepIndex, s.CanaryStatus.CurrentStepState
			case s.BlueGreenStatus != nil:
				s.CurrentStepIndex, s.CurrentStepState = s.BlueGreenStatus.CurrentStepIndex, s.BlueGreenStatus.CurrentStepState
			default:
				s.CurrentStepIndex, s.CurrentStepState = 0, ""
			}
		},
		func(p *intstr.IntOrString, c randfill.Continue) {
			if c.Bool() {
				*p = intstr.FromInt32(c.Int31())
			} else {
				*p = intstr.FromString(fmt.Sprintf("%d%%", c.Int31n(101)))
			}
		},
		func(m *map[string]string, c randfill.Continue) {
			*m = map[string]string{}
			for i := 0; i < c.Intn(3); i++ {
				(*m)[c.String(8)] = c.String(8)
			}
		},
	)
}

func TestRoundTripV1alpha1(t *testing.T) {
	for seed := int64(0); seed < 500; seed++ {
		in := &Rollout{}
		filler(seed).Fill(in)
		normalize(&in.TypeMeta, &in.ObjectMeta)
		if in.Spec.Strategy.Canary != nil {
			// The rolling style lives in an annotation in v1alpha1.
			if seed%2 == 0 {
				setAnnotation(&in.Annotations, RollingStyleAnnotation, "partition")
			}
		}

		hub := &v1beta1.Rollout{}
		if err := in.ConvertTo(hub); err != nil {
			t.Fatalf("seed %d: ConvertTo: %v", seed, err)
		}
		out := &Rollout{}
		if err := out.ConvertFrom(hub); err != nil {
			t.Fatalf("seed %d: ConvertFrom: %v", seed, err)
		}
		if !equality.Semantic.DeepEqual(in, out) {
			t.Fatalf("seed %d: round trip changed the object (-before +after):\n%s", seed, cmp.Diff(in, out))
		}
	}
}

func TestRoundTripV1beta1(t *testing.T) {
	for seed := int64(0); seed < 500; seed++ {
		in := &v1beta1.Rollout{}
		filler(seed).Fill(in)
		normalize(&in.TypeMeta, &in.ObjectMeta)

		mid := &Rollout{}
		if err := mid.ConvertFrom(in); err != nil {
			t.Fatalf("seed %d: ConvertFrom: %v", seed, err)
		}
		out := &v1beta1.Rollout{}
		if err := mid.ConvertTo(out); err != nil {
			t.Fatalf("seed %d: ConvertTo: %v", seed, err)
		}
		if !equality.Semantic.DeepEqual(in, out) {
			t.Fatalf("seed %d: round trip changed the object (-before +after):\n%s", seed, cmp.Diff(in, out))
		}
	}
}

// The rules of Kruise's conversion, each on the object a user would write.
func TestConvertToFollowsKruiseRules(t *testing.T) {
	const example4 = `
apiVersion: rollouts.kruise.io/v1alpha1
kind: Rollout
metadata:
  name: rollouts-demo
  annotations:
    rollouts.kruise.io/rolling-style: partition
spec:
  objectRef:
    workloadRef:
      apiVersion: apps/v1
      kind: Deployment
      name: echoserver
  strategy:
    canary:
      steps:
      - pause: {}
        replicas: 1
      - replicas: 50%
        pause: {duration: 60}
      - weight: 100
        replicas: 100%
        pause: {duration: 60}
`
	in := &Rollout{}
	if err := yaml.UnmarshalStrict([]byte(example4), in); err != nil {
		t.Fatal(err)
	}
	hub := &v1beta1.Rollout{}
	if err := in.ConvertTo(hub); err != nil {
		t.Fatal(err)
	}
	c := hub.Spec.Strategy.Canary
	if hub.Spec.WorkloadRef != (v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "echoserver"}) {
		t.Errorf("workloadRef = %+v", hub.Spec.WorkloadRef)
	}
	if c.EnableExtraWorkloadForCanary {
		t.Error("rolling-style partition must give enableExtraWorkloadForCanary=false")
	}
	if got := c.Steps[2].Traffic; got == nil || *got != "100%" {
		t.Errorf("weight 100 must become traffic 100%%, got %v", got)
	}
	if got := c.Steps[0].Replicas.String(); got != "1" {
		t.Errorf("steps[0].replicas = %s", got)
	}
	if c.Steps[0].Pause.Duration != nil || *c.Steps[1].Pause.Duration != 60 {
		t.Error("pauses not kept")
	}

	cases := []struct {
		name       string
		style      *string
		weight     int32
		replicas   *intstr.IntOrString
		wantExtra  bool
		wantReplic string
	}{
		{name: "no annotation means canary style", wantExtra: true, weight: 5, wantReplic: "5%"},
		{name: "canary annotation", style: ptr("canary"), wantExtra: true, weight: 20, wantReplic: "20%"},
		{name: "annotation is case-insensitive", style: ptr("Partition"), wantExtra: false, weight: 20, wantReplic: "20%"},
		{name: "replicas kept when set", weight: 50, replicas: ptr(intstr.FromInt32(3)), wantExtra: true, wantReplic: "3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Rollout{Spec: RolloutSpec{Strategy: RolloutStrategy{Canary: &CanaryStrategy{Steps: []CanaryStep{{
				TrafficRoutingStrategy: TrafficRoutingStrategy{Weight: &tc.weight},
				Replicas:               tc.replicas,
			}}}}}}
			if tc.style != nil {
				r.Annotations = map[string]string{RollingStyleAnnotation: *tc.style}
			}
			hub := &v1beta1.Rollout{}
			if err := r.ConvertTo(hub); err != nil {
				t.Fatal(err)
			}
			c := hub.Spec.Strategy.Canary
			if c.EnableExtraWorkloadForCanary != tc.wantExtra {
				t.Errorf("enableExtraWorkloadForCanary = %v, want %v", c.EnableExtraWorkloadForCanary, tc.wantExtra)
			}
			if got := c.Steps[0].Replicas.String(); got != tc.wantReplic {
				t.Errorf("replicas = %s, want %s", got, tc.wantReplic)
			}
			if got := *c.Steps[0].Traffic; got != fmt.Sprintf("%d%%", tc.weight) {
				t.Errorf("traffic = %s", got)
			}
		})
	}
}

// A v1alpha1 client that reads and writes back a v1beta1-only object must
// not erase what v1alpha1 cannot show (Kruise loses it).
func TestV1beta1OnlyFieldsSurviveV1alpha1Clients(t *testing.T) {
	prefix := gatewayv1.PathMatchPathPrefix
	hub := &v1beta1.Rollout{Spec: v1beta1.RolloutSpec{Strategy: v1beta1.RolloutStrategy{Canary: &v1beta1.CanaryStrategy{
		Steps: []v1beta1.CanaryStep{{
			TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Matches: []v1beta1.HttpRouteMatch{{
				Path:        &gatewayv1.HTTPPathMatch{Type: &prefix, Value: ptr("/beta")},
				Headers:     []gatewayv1.HTTPHeaderMatch{{Name: "User-Agent", Value: "Andriod"}},
				QueryParams: []gatewayv1.HTTPQueryParamMatch{{Name: "canary", Value: "true"}},
			}}},
			Replicas: ptr(intstr.FromInt32(1)),
		}},
	}}}}
	old := &Rollout{}
	if err := old.ConvertFrom(hub); err != nil {
		t.Fatal(err)
	}
	if _, ok := old.Annotations[LossAnnotation]; !ok {
		t.Fatal("path and query matches must be kept in the annotation")
	}
	back := &v1beta1.Rollout{}
	if err := old.ConvertTo(back); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(hub.Spec, back.Spec) {
		t.Fatalf("spec changed: %+v", back.Spec.Strategy.Canary.Steps[0].Matches)
	}
	if _, ok := back.Annotations[LossAnnotation]; ok {
		t.Fatal("the annotation must not be stored on v1beta1")
	}

	// A v1alpha1 client that changes the headers owns the match again.
	old.Spec.Strategy.Canary.Steps[0].Matches[0].Headers[0].Value = "iOS"
	if err := old.ConvertTo(back); err != nil {
		t.Fatal(err)
	}
	if m := back.Spec.Strategy.Canary.Steps[0].Matches[0]; m.Path != nil || m.Headers[0].Value != "iOS" {
		t.Fatalf("edited match = %+v", m)
	}
}

// normalize clears what the conversion webhook, not the conversion, owns
// (apiVersion and kind) and what the random filler cannot serialise.
func normalize(tm *metav1.TypeMeta, om *metav1.ObjectMeta) {
	*tm = metav1.TypeMeta{}
	om.ManagedFields = nil
}

func ptr[T any](v T) *T { return &v }

// What the fuzz targets found lost in a round trip, each on the smallest
// object that shows it; every one now comes back as it was.
func TestRoundTripsKeepWhatTheOtherVersionCannotSay(t *testing.T) {
	canary := func(mut func(c *v1beta1.CanaryStrategy)) *v1beta1.Rollout {
		r := &v1beta1.Rollout{Spec: v1beta1.RolloutSpec{
			WorkloadRef: v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "echoserver"},
			Strategy: v1beta1.RolloutStrategy{Canary: &v1beta1.CanaryStrategy{
				Steps: []v1beta1.CanaryStep{{Replicas: ptr(intstr.FromString("50%")), TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: ptr("50%")}}},
			}},
		}}
		mut(r.Spec.Strategy.Canary)
		return r
	}
	betas := map[string]*v1beta1.Rollout{
		"partition style gained a rolling-style annotation": canary(func(c *v1beta1.CanaryStrategy) {}),
		"a rolling-style annotation left on v1beta1 was overwritten": func() *v1beta1.Rollout {
			r := canary(func(c *v1beta1.CanaryStrategy) { c.EnableExtraWorkloadForCanary = true })
			r.Annotations = map[string]string{RollingStyleAnnotation: "partition"}
			return r
		}(),
		"a trafficrouting annotation left on v1beta1 became the ref": func() *v1beta1.Rollout {
			r := canary(func(c *v1beta1.CanaryStrategy) {})
			r.Annotations = map[string]string{TrafficRoutingAnnotation: "tr"}
			return r
		}(),
		"traffic with spaces came back trimmed":       canary(func(c *v1beta1.CanaryStrategy) { c.Steps[0].Traffic = ptr(" 50% ") }),
		"traffic that is no number was dropped":       canary(func(c *v1beta1.CanaryStrategy) { c.Steps[0].Traffic = ptr("half") }),
		"traffic past int32 wrapped around":           canary(func(c *v1beta1.CanaryStrategy) { c.Steps[0].Traffic = ptr("4294967346%") }),
		"a step with traffic and no replicas got one": canary(func(c *v1beta1.CanaryStrategy) { c.Steps[0].Replicas = nil }),
		"blue-green beside canary was dropped": func() *v1beta1.Rollout {
			r := canary(func(c *v1beta1.CanaryStrategy) {})
			r.Spec.Strategy.BlueGreen = &v1beta1.BlueGreenStrategy{TrafficRoutingRef: "bg"}
			return r
		}(),
		"the top-level step was replaced by the canary status's": func() *v1beta1.Rollout {
			r := canary(func(c *v1beta1.CanaryStrategy) {})
			r.Status.CanaryStatus = &v1beta1.CanaryStatus{CommonStatus: v1beta1.CommonStatus{CurrentStepIndex: 2, CurrentStepState: v1beta1.CanaryStepStateCompleted}}
			r.Status.CurrentStepIndex, r.Status.CurrentStepState = 1, v1beta1.CanaryStepStateUpgrade
			return r
		}(),
	}
	for name, in := range betas {
		t.Run("v1beta1: "+name, func(t *testing.T) {
			mid, out := &Rollout{}, &v1beta1.Rollout{}
			if err := mid.ConvertFrom(in); err != nil {
				t.Fatal(err)
			}
			if err := mid.ConvertTo(out); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(in, out); d != "" {
				t.Fatalf("round trip changed the object (-before +after):\n%s", d)
			}
		})
	}

	alphas := map[string]*Rollout{
		"rolloutID was dropped":                 {Spec: RolloutSpec{DeprecatedRolloutID: "r1", ObjectRef: ObjectRef{WorkloadRef: &WorkloadRef{Name: "w"}}}},
		"a missing workloadRef came back empty": {},
		"a step without replicas got the weight's": {Spec: RolloutSpec{ObjectRef: ObjectRef{WorkloadRef: &WorkloadRef{Name: "w"}},
			Strategy: RolloutStrategy{Canary: &CanaryStrategy{Steps: []CanaryStep{{TrafficRoutingStrategy: TrafficRoutingStrategy{Weight: ptr(int32(20))}}}}}}},
	}
	for name, in := range alphas {
		t.Run("v1alpha1: "+name, func(t *testing.T) {
			hub, out := &v1beta1.Rollout{}, &Rollout{}
			if err := in.ConvertTo(hub); err != nil {
				t.Fatal(err)
			}
			if err := out.ConvertFrom(hub); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(in, out); d != "" {
				t.Fatalf("round trip changed the object (-before +after):\n%s", d)
			}
		})
	}
}

// A v1beta1 client that edits a step's traffic or replicas owns them: the
// kept values of the earlier version do not come back over the edit.
func TestKeptValuesYieldToEdits(t *testing.T) {
	in := &Rollout{Spec: RolloutSpec{ObjectRef: ObjectRef{WorkloadRef: &WorkloadRef{Name: "w"}},
		Strategy: RolloutStrategy{Canary: &CanaryStrategy{Steps: []CanaryStep{{TrafficRoutingStrategy: TrafficRoutingStrategy{Weight: ptr(int32(20))}}}}}}}
	hub := &v1beta1.Rollout{}
	if err := in.ConvertTo(hub); err != nil {
		t.Fatal(err)
	}
	hub.Spec.Strategy.Canary.Steps[0].Replicas = ptr(intstr.FromInt32(3))
	out := &Rollout{}
	if err := out.ConvertFrom(hub); err != nil {
		t.Fatal(err)
	}
	if got := out.Spec.Strategy.Canary.Steps[0].Replicas; got == nil || got.String() != "3" {
		t.Fatalf("replicas = %v, want the v1beta1 client's 3", got)
	}

	beta := &v1beta1.Rollout{Spec: v1beta1.RolloutSpec{Strategy: v1beta1.RolloutStrategy{Canary: &v1beta1.CanaryStrategy{
		Steps: []v1beta1.CanaryStep{{Replicas: ptr(intstr.FromInt32(1)), TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: ptr(" 50% ")}}}}}}}
	alpha := &Rollout{}
	if err := alpha.ConvertFrom(beta); err != nil {
		t.Fatal(err)
	}
	alpha.Spec.Strategy.Canary.Steps[0].Weight = ptr(int32(30))
	back := &v1beta1.Rollout{}
	if err := alpha.ConvertTo(back); err != nil {
		t.Fatal(err)
	}
	if got := *back.Spec.Strategy.Canary.Steps[0].Traffic; got != "30%" {
		t.Fatalf("traffic = %q, want the v1alpha1 client's 30%%", got)
	}
}
