//go:build e2e

package api_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
	"github.com/sluicehq/sluice/devenv/manifest"
)

// warnings collects the warnings the API server sends back (from the
// webhooks' admission responses), as kubectl prints them.
type warnings struct {
	mu   sync.Mutex
	text []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.text = append(w.text, text)
}

// take returns the warnings received since the last call.
func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.text
	w.text = nil
	return out
}

// A Rollout Kruise Rollout would accept is accepted, but what would stop a
// release halfway (a match the ingress cannot express, a TrafficRouting
// that does not exist, traffic on steps that nothing routes) comes back
// from kube-apiserver as a warning naming the field in the version the
// user wrote: v1alpha1 names its annotation where v1beta1 has a field.
func TestWarningsNameTheFieldInTheVersionWritten(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	got := &warnings{}
	cfg := rest.CopyConfig(env.ControlPlane.RESTConfig())
	cfg.WarningHandlerWithContext = got
	c, err := client.New(cfg, client.Options{Scheme: app.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	twoHeaders := `
      steps:
      - replicas: 1
        matches:
        - headers: [{name: a, value: "1"}]
        - headers: [{name: b, value: "1"}]`
	cases := []struct {
		name     string
		manifest string
		want     string // the start of the one warning; "" for none
	}{
		{"a plain canary warns of nothing", rolloutV1beta1("w1", "Deployment", `    canary:
      steps: [{replicas: 1, traffic: "20%"}]`+goodRouting), ""},
		{"two header matches on nginx (v1beta1)", rolloutV1beta1("w2", "Deployment", `    canary:`+twoHeaders+goodRouting),
			"spec.strategy.canary.steps[0].matches: "},
		{"two header matches on nginx (v1alpha1)", rolloutV1alpha1("w3", `      - replicas: 1
        matches:
        - headers: [{name: a, value: "1"}]
        - headers: [{name: b, value: "1"}]`), "spec.strategy.canary.steps[0].matches: "},
		{"traffic without trafficRoutings", rolloutV1beta1("w4", "Deployment", `    canary:
      steps: [{replicas: 1, traffic: "20%"}]`),
			"spec.strategy.canary.steps[0]: routes traffic but the strategy has no trafficRoutings"},
		{"trafficRoutingRef naming nothing (v1beta1)", rolloutV1beta1("w5", "Deployment", `    canary:
      steps: [{replicas: 1}]
      trafficRoutingRef: full-link`),
			"spec.strategy.canary.trafficRoutingRef: TrafficRouting full-link does not exist in namespace " + ns},
		{"the trafficrouting annotation naming nothing (v1alpha1)", `
apiVersion: rollouts.kruise.io/v1alpha1
kind: Rollout
metadata:
  name: w6
  annotations: {rollouts.kruise.io/trafficrouting: full-link}
spec:
  objectRef:
    workloadRef: {apiVersion: apps/v1, kind: Deployment, name: w6-app}
  strategy:
    canary:
      steps: [{replicas: 1}]`,
			"metadata.annotations[rollouts.kruise.io/trafficrouting]: TrafficRouting full-link does not exist in namespace " + ns},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got.take()
			if _, err := manifest.Create(ctx, c, ns, []byte(tc.manifest)); err != nil {
				t.Fatalf("rejected: %v", err)
			}
			ws := got.take()
			switch {
			case tc.want == "" && len(ws) > 0:
				t.Errorf("warnings %q, want none", ws)
			case tc.want != "" && (len(ws) != 1 || !strings.HasPrefix(ws[0], tc.want)):
				t.Errorf("warnings %q, want one starting %q", ws, tc.want)
			}
		})
	}
}
