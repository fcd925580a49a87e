//go:build e2e

package api_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

func guide(name string) string {
	return filepath.Join(framework.RepoRoot(), "docs", "examples", "guide", name)
}

// The four examples of the Kruise guide, applied verbatim with their
// Deployment, Service and Ingress, are accepted; read back as v1beta1 they
// carry the converted fields, and read back as v1alpha1 they are what the
// user wrote.
func TestGuideExamplesAreAcceptedAndConverted(t *testing.T) {
	cases := []struct {
		name      string
		ingress   string
		rollout   string
		classType string // "" when the Rollout routes no traffic
		steps     []wantStep
	}{
		{name: "example 1: nginx", ingress: "example1-ingress.yaml", rollout: "example1-rollout.yaml", classType: "nginx",
			steps: []wantStep{{replicas: "1", header: "User-Agent=Andriod"}, {replicas: "50%", traffic: "50%", pause: 60}, {replicas: "100%", traffic: "100%", pause: 60}}},
		{name: "example 2: aliyun-alb", ingress: "example2-ingress.yaml", rollout: "example2-rollout.yaml", classType: "aliyun-alb",
			steps: []wantStep{{replicas: "1", header: "User-Agent=Andriod"}, {replicas: "50%", traffic: "50%", pause: 60}, {replicas: "100%", traffic: "100%", pause: 60}}},
		{name: "example 3: mse", ingress: "example3-ingress.yaml", rollout: "example1-rollout.yaml", classType: "nginx",
			steps: []wantStep{{replicas: "1", header: "User-Agent=Andriod"}, {replicas: "50%", traffic: "50%", pause: 60}, {replicas: "100%", traffic: "100%", pause: 60}}},
		{name: "example 4: batches without traffic routing", rollout: "example4-rollout.yaml",
			steps: []wantStep{{replicas: "1"}, {replicas: "50%", pause: 60}, {replicas: "100%", traffic: "100%", pause: 60}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ns := env.Namespace(t)
			files := []string{"echoserver.yaml", tc.rollout}
			if tc.ingress != "" {
				files = []string{"echoserver.yaml", tc.ingress, tc.rollout}
			}
			for _, f := range files {
				if _, err := manifest.CreateFile(ctx, env.Client, ns, guide(f)); err != nil {
					t.Fatalf("%s was rejected: %v", f, err)
				}
			}

			key := client.ObjectKey{Namespace: ns, Name: "rollouts-demo"}
			r := &v1beta1.Rollout{}
			if err := env.Client.Get(ctx, key, r); err != nil {
				t.Fatal(err)
			}
			if r.Spec.WorkloadRef != (v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "echoserver"}) {
				t.Errorf("workloadRef = %+v", r.Spec.WorkloadRef)
			}
			c := r.Spec.Strategy.Canary
			if c == nil {
				t.Fatal("no canary strategy")
			}
			if c.EnableExtraWorkloadForCanary {
				t.Error("rolling-style: partition must read as enableExtraWorkloadForCanary=false")
			}
			if len(c.Steps) != len(tc.steps) {
				t.Fatalf("%d steps, want %d", len(c.Steps), len(tc.steps))
			}
			for i, want := range tc.steps {
				want.check(t, i, c.Steps[i])
			}
			if tc.classType != "" {
				if len(c.TrafficRoutings) != 1 {
					t.Fatalf("trafficRoutings = %+v", c.TrafficRoutings)
				}
				tr := c.TrafficRoutings[0]
				if tr.Service != "echoserver" || tr.Ingress == nil || tr.Ingress.Name != "echoserver" || tr.Ingress.ClassType != tc.classType {
					t.Errorf("trafficRoutings[0] = %+v ingress %+v, want service and ingress echoserver, classType %s", tr, tr.Ingress, tc.classType)
				}
				if tr.GracePeriodSeconds != 3 {
					t.Errorf("gracePeriodSeconds = %d, want the default 3", tr.GracePeriodSeconds)
				}
			}

			// Read as v1alpha1, the object is what the guide wrote.
			submitted := &v1alpha1.Rollout{}
			objs, _ := manifest.Objects(mustRead(t, guide(tc.rollout)))
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(objs[0].Object, submitted); err != nil {
				t.Fatal(err)
			}
			old := &v1alpha1.Rollout{}
			if err := env.Client.Get(ctx, key, old); err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(withDefaults(submitted.Spec), old.Spec) {
				t.Errorf("v1alpha1 spec changed on the way through v1beta1:\nsubmitted %+v\nread back %+v", submitted.Spec.Strategy.Canary, old.Spec.Strategy.Canary)
			}
		})
	}
}

type wantStep struct {
	replicas, traffic, header string
	pause                     int32
}

func (w wantStep) check(t *testing.T, i int, s v1beta1.CanaryStep) {
	t.Helper()
	if s.Replicas == nil || s.Replicas.String() != w.replicas {
		t.Errorf("steps[%d].replicas = %v, want %s", i, s.Replicas, w.replicas)
	}
	switch {
	case w.traffic == "" && s.Traffic != nil:
		t.Errorf("steps[%d].traffic = %s, want none", i, *s.Traffic)
	case w.traffic != "" && (s.Traffic == nil || *s.Traffic != w.traffic):
		t.Errorf("steps[%d].traffic = %v, want %s", i, s.Traffic, w.traffic)
	}
	if w.header != "" {
		if len(s.Matches) != 1 || len(s.Matches[0].Headers) != 1 ||
			string(s.Matches[0].Headers[0].Name)+"="+s.Matches[0].Headers[0].Value != w.header {
			t.Errorf("steps[%d].matches = %+v, want header %s", i, s.Matches, w.header)
		}
	}
	if w.pause == 0 && s.Pause.Duration != nil {
		t.Errorf("steps[%d].pause.duration = %d, want manual approval", i, *s.Pause.Duration)
	}
	if w.pause != 0 && (s.Pause.Duration == nil || *s.Pause.Duration != w.pause) {
		t.Errorf("steps[%d].pause.duration = %v, want %d", i, s.Pause.Duration, w.pause)
	}
}

// withDefaults applies the CRD's defaults to a submitted spec.
func withDefaults(s v1alpha1.RolloutSpec) v1alpha1.RolloutSpec {
	for i := range s.Strategy.Canary.TrafficRoutings {
		tr := &s.Strategy.Canary.TrafficRoutings[i]
		if tr.GracePeriodSeconds == 0 {
			tr.GracePeriodSeconds = 3
		}
		if tr.Ingress != nil && tr.Ingress.ClassType == "" {
			tr.Ingress.ClassType = "nginx"
		}
	}
	return s
}
