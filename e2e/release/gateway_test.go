//go:build e2e

package release_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

// A release through a Gateway API HTTPRoute, driven by the controller: an
// A/B rule for the header, then weights, then the original rules back
// exactly.
func TestGatewayAPIRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 4*time.Minute)
	f.createEchoserver(4)
	if _, err := manifest.CreateFile(f.ctx, f.c, f.ns, filepath.Join(framework.RepoRoot(), "e2e", "traffic", "testdata", "httproute.yaml")); err != nil {
		t.Fatal(err)
	}
	f.create(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: gateway
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    canary:
      steps:
      - matches: [{headers: [{type: Exact, name: User-Agent, value: Andriod}]}]
        replicas: 1
        pause: {}
      - {traffic: 50%, replicas: 50%, pause: {}}
      - {traffic: 100%, replicas: 100%}
      trafficRoutings:
      - service: echoserver
        gracePeriodSeconds: 1
        gateway: {httpRouteName: echoserver}
`)
	f.waitHealthy("gateway")
	orig := f.httpRoute()
	f.setImage("echoserver", imageV2)

	f.waitStep("gateway", 1, v1beta1.CanaryStepStatePaused)
	rules := f.rules()
	if len(rules) != 3 {
		t.Fatalf("step 1: %d rules, want the 2 original ones and an A/B rule:\n%v", len(rules), rules)
	}
	if d := cmp.Diff(ruleAt(orig, 0), rules[0]); d != "" {
		t.Errorf("step 1 changed the stable rule (-orig +now):\n%s", d)
	}
	ab := rules[2]
	if got := fmt.Sprint(nested(ab, "backendRefs", 0, "name"), " ", nested(ab, "matches", 0, "headers", 0, "name"), "=", nested(ab, "matches", 0, "headers", 0, "value"), " ", nested(ab, "matches", 0, "path", "value")); got != "echoserver-canary User-Agent=Andriod /apis/echo" {
		t.Errorf("A/B rule %v", ab)
	}

	f.approve("gateway")
	f.waitStep("gateway", 2, v1beta1.CanaryStepStatePaused)
	rules = f.rules()
	refs := rules[0]["backendRefs"].([]any)
	if len(rules) != 2 || len(refs) != 2 || fmt.Sprint(nested(rules[0], "backendRefs", 0, "weight"), "/", nested(rules[0], "backendRefs", 1, "name"), ":", nested(rules[0], "backendRefs", 1, "weight")) != "50/echoserver-canary:50" {
		t.Errorf("step 2 rules %v", rules)
	}
	if d := cmp.Diff(ruleAt(orig, 1), rules[1]); d != "" {
		t.Errorf("the rule to another service changed (-orig +now):\n%s", d)
	}

	f.approve("gateway")
	f.waitCompleted("gateway")
	now := f.httpRoute()
	if d := cmp.Diff(orig.Object["spec"], now.Object["spec"]); d != "" {
		t.Errorf("HTTPRoute spec not restored (-orig +now):\n%s", d)
	}
	if d := cmp.Diff(orig.GetAnnotations(), now.GetAnnotations()); d != "" {
		t.Errorf("HTTPRoute annotations not restored (-orig +now):\n%s", d)
	}
	f.assertReleased(imageV2)
}

func (f *fixture) httpRoute() *unstructured.Unstructured {
	f.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("gateway.networking.k8s.io/v1")
	u.SetKind("HTTPRoute")
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver"}, u); err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *fixture) rules() []map[string]any {
	f.t.Helper()
	u := f.httpRoute()
	var out []map[string]any
	for i := range len(u.Object["spec"].(map[string]any)["rules"].([]any)) {
		out = append(out, ruleAt(u, i))
	}
	return out
}

func ruleAt(u *unstructured.Unstructured, i int) map[string]any {
	return u.Object["spec"].(map[string]any)["rules"].([]any)[i].(map[string]any)
}

// nested walks maps by key and lists by index; nil when absent.
func nested(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}
