//go:build e2e

package traffic_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/traffic"
	"github.com/sluicehq/sluice/traffic/route"
	"github.com/sluicehq/sluice/traffic/script"
)

func guide(name string) string {
	return filepath.Join(framework.RepoRoot(), "docs", "examples", "guide", name)
}

// createKinds creates the objects of a manifest whose kind is listed.
func createKinds(t *testing.T, ns, path string, kinds ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.Objects(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		for _, k := range kinds {
			if o.GetKind() == k {
				o.SetNamespace(ns)
				if err := cli.Create(t.Context(), o); err != nil {
					t.Fatalf("creating %s %s: %v", o.GetKind(), o.GetName(), err)
				}
			}
		}
	}
}

// createRollout reads a guide Rollout (v1alpha1, as the user writes it),
// converts it with Sluice's conversion, lets edit change it and creates it
// as v1beta1, so created objects have a real owner.
func createRollout(t *testing.T, ns, file string, edit func(*v1beta1.Rollout)) *v1beta1.Rollout {
	t.Helper()
	b, err := os.ReadFile(guide(file))
	if err != nil {
		t.Fatal(err)
	}
	old := &v1alpha1.Rollout{}
	if err := yaml.Unmarshal(b, old); err != nil {
		t.Fatal(err)
	}
	ro := &v1beta1.Rollout{}
	if err := old.ConvertTo(ro); err != nil {
		t.Fatal(err)
	}
	ro.Namespace = ns
	ro.ResourceVersion = ""
	if edit != nil {
		edit(ro)
	}
	if err := cli.Create(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
	return ro
}

// newRouting builds the Services and provider of a Rollout the way the
// engine does, afresh at every call: no state survives between calls.
func newRouting(t *testing.T, ro *v1beta1.Rollout, scriptNamespace string) (traffic.Services, traffic.Provider) {
	t.Helper()
	o, ok := traffic.ForRollout(ro, traffic.PodTemplateHashLabel, scriptsIn(scriptNamespace))
	if !ok {
		t.Fatal("the rollout routes no traffic")
	}
	p, err := traffic.NewProvider(cli, o)
	if err != nil {
		t.Fatal(err)
	}
	return traffic.NewServices(cli, o), p
}

// until calls f, as the engine would after each grace period, until done.
func until(t *testing.T, what string, f func(context.Context) (bool, error)) {
	t.Helper()
	for i := 0; i < 5; i++ {
		done, err := f(t.Context())
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if done {
			return
		}
	}
	t.Fatalf("%s: not done after 5 calls", what)
}

func stepRoute(t *testing.T, s v1beta1.CanaryStep) route.Route {
	t.Helper()
	r, err := route.FromStep(s.TrafficRoutingStrategy)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func get(t *testing.T, ns, name string, obj client.Object) {
	t.Helper()
	if err := cli.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
}

func gone(t *testing.T, ns, name string, obj client.Object) {
	t.Helper()
	err := cli.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, obj)
	if err == nil && obj.GetDeletionTimestamp() == nil {
		t.Errorf("%s still exists", name)
	} else if client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
}

func getUnstructured(t *testing.T, ns, apiVersion, kind, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	get(t, ns, name, u)
	return u
}

// scriptsIn reads user scripts from sluice-configuration in ns (the tests
// use their own namespace as the manager's).
func scriptsIn(ns string) script.Source {
	return script.ConfigMaps{Reader: cli, Namespace: ns}
}
