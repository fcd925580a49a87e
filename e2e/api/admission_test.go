//go:build e2e

package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

// rolloutV1beta1 is a valid v1beta1 Rollout with the given strategy body
// (indented as the canary/blueGreen key under strategy).
func rolloutV1beta1(name, workloadKind, strategy string) string {
	return fmt.Sprintf(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: %s
spec:
  workloadRef: {apiVersion: apps/v1, kind: %s, name: %s-app}
  strategy:
%s`, name, workloadKind, name, strategy)
}

const goodRouting = `
      trafficRoutings:
      - service: echoserver
        ingress: {name: echoserver}`

func rolloutV1alpha1(name, steps string) string {
	return fmt.Sprintf(`
apiVersion: rollouts.kruise.io/v1alpha1
kind: Rollout
metadata:
  name: %s
spec:
  objectRef:
    workloadRef: {apiVersion: apps/v1, kind: Deployment, name: %s-app}
  strategy:
    canary:
      steps:
%s
      trafficRoutings:
      - service: echoserver
        ingress: {name: echoserver}`, name, name, steps)
}

func template(kind, name, metric string) string {
	return fmt.Sprintf(`
apiVersion: analysis.sluice.dev/v1alpha1
kind: %s
metadata:
  name: %s
spec:
  args:
  - name: window
    value: 1m
  - name: threshold
  metrics:
%s`, kind, name, "  "+strings.ReplaceAll(metric, "\n", "\n  "))
}

const promQuery = `sum(rate(http_requests_total{namespace="{{ .namespace }}",code=~"5..",pod_template_hash="{{ .canaryRevision }}"}[1m]))`

// Every object here is invalid; each must be rejected, and the message
// must name the field at fault (and, where it helps, say what to do).
func TestInvalidObjectsAreRejectedWithTheField(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := env.Namespace(t)

	// Fixtures the cases refer to: a valid template, and a Rollout that
	// already releases workload "taken-app".
	fixtures := template("AnalysisTemplate", "error-rate", `- name: error-rate
  successCondition: result[0] < 0.05
  provider:
    prometheus:
      query: '`+promQuery+`'`)
	fixtures += "\n---\n" + rolloutV1beta1("taken", "Deployment", `    canary:
      steps: [{replicas: 1}]`)
	if _, err := manifest.Create(ctx, env.Client, ns, []byte(fixtures)); err != nil {
		t.Fatalf("fixtures: %v", err)
	}

	cases := []struct {
		name     string
		manifest string
		want     []string // substrings of the error: the field path first
	}{
		{"canary and blueGreen both set", rolloutV1beta1("r1", "Deployment", `    canary: {steps: [{replicas: 1}]}
    blueGreen: {steps: [{replicas: 1}]}`), []string{"spec.strategy", "exactly one of canary or blueGreen"}},
		{"neither canary nor blueGreen", rolloutV1beta1("r2", "Deployment", `    paused: false`),
			[]string{"spec.strategy", "exactly one of canary or blueGreen"}},
		{"no steps", rolloutV1beta1("r3", "Deployment", `    canary: {steps: []}`),
			[]string{"spec.strategy.canary.steps"}},
		{"step without replicas", rolloutV1beta1("r4", "Deployment", `    canary: {steps: [{pause: {}}]}`),
			[]string{"spec.strategy.canary.steps[0].replicas", "every step needs replicas"}},
		{"replicas 0%", rolloutV1beta1("r5", "Deployment", `    canary: {steps: [{replicas: "0%"}]}`),
			[]string{"spec.strategy.canary.steps[0].replicas", `"0%" < replicas`}},
		{"replicas 150%", rolloutV1beta1("r6", "Deployment", `    canary: {steps: [{replicas: "150%"}]}`),
			[]string{"spec.strategy.canary.steps[0].replicas"}},
		{"replicas decrease", rolloutV1beta1("r7", "Deployment", `    canary: {steps: [{replicas: "50%"}, {replicas: "20%"}]}`),
			[]string{"spec.strategy.canary.steps[1].replicas", "must not decrease"}},
		{"traffic 0% in a canary", rolloutV1beta1("r8", "Deployment", `    canary:
      steps: [{replicas: 1, traffic: "0%"}]`+goodRouting), []string{"spec.strategy.canary.steps[0].traffic", `"0%" < traffic`}},
		{"traffic not a percentage", rolloutV1beta1("r9", "Deployment", `    canary:
      steps: [{replicas: 1, traffic: "fifty"}]`+goodRouting), []string{"spec.strategy.canary.steps[0].traffic", "percentage"}},
		{"v1alpha1 weight 0 names the weight field", rolloutV1alpha1("r10", `      - weight: 0
        replicas: 1`), []string{"spec.strategy.canary.steps[0].weight"}},
		{"two trafficRoutings", rolloutV1beta1("r11", "Deployment", `    canary:
      steps: [{replicas: 1}]
      trafficRoutings:
      - {service: a, ingress: {name: a}}
      - {service: b, ingress: {name: b}}`), []string{"spec.strategy.canary.trafficRoutings", "must have at most 1"}},
		{"trafficRouting without ingress, gateway or custom refs", rolloutV1beta1("r12", "Deployment", `    canary:
      steps: [{replicas: 1}]
      trafficRoutings: [{service: echoserver}]`), []string{"spec.strategy.canary.trafficRoutings[0]", "ingress, gateway or customNetworkRefs"}},
		{"ingress without name", rolloutV1beta1("r13", "Deployment", `    canary:
      steps: [{replicas: 1}]
      trafficRoutings: [{service: echoserver, ingress: {classType: nginx}}]`), []string{"spec.strategy.canary.trafficRoutings[0].ingress.name", "Required"}},
		{"gateway without httpRouteName", rolloutV1beta1("r14", "Deployment", `    canary:
      steps: [{replicas: 1}]
      trafficRoutings: [{service: echoserver, gateway: {}}]`), []string{"spec.strategy.canary.trafficRoutings[0].gateway.httpRouteName"}},
		{"unsupported workload kind", rolloutV1beta1("r15", "Job", `    canary: {steps: [{replicas: 1}]}`),
			[]string{"spec.workloadRef.kind", "Unsupported value"}},
		{"v1alpha1 names objectRef.workloadRef", strings.Replace(rolloutV1alpha1("r16", `      - replicas: 1`), "kind: Deployment", "kind: CronJob", 1),
			[]string{"spec.objectRef.workloadRef.kind"}},
		{"blue-green on a StatefulSet", rolloutV1beta1("r17", "StatefulSet", `    blueGreen: {steps: [{replicas: 1}]}`),
			[]string{"spec.workloadRef.kind", "blue-green"}},
		{"a second Rollout for the same workload", strings.Replace(rolloutV1beta1("r18", "Deployment", `    canary: {steps: [{replicas: 1}]}`), "name: r18-app", "name: taken-app", 1),
			[]string{"spec.workloadRef", `already released by Rollout "taken"`}},
		{"partition step with traffic above 50% (v1beta1)", rolloutV1beta1("r19", "Deployment", `    canary:
      steps: [{replicas: "80%", traffic: "80%"}]`+goodRouting), []string{"spec.strategy.canary.steps[0].replicas", "at most 50%"}},
		{"analysis template that does not exist", rolloutV1beta1("r20", "Deployment", `    canary:
      steps:
      - replicas: 1
        analysis: {templates: [{templateName: nope}]}`), []string{"spec.strategy.canary.steps[0].analysis.templates[0].templateName", "create it first"}},
		{"analysis arg that the template needs is missing", rolloutV1beta1("r21", "Deployment", `    canary:
      steps:
      - replicas: 1
        analysis: {templates: [{templateName: latency}]}`), []string{"spec.strategy.canary.steps[0].analysis.args", `needs arg "threshold"`}},
		{"verdict policy not in the enum", rolloutV1beta1("r22", "Deployment", `    canary:
      steps:
      - replicas: 1
        analysis: {templates: [{templateName: error-rate}], onFailed: Explode}`), []string{"spec.strategy.canary.steps[0].analysis.onFailed", "Unsupported value"}},
		{"condition that does not compile", template("AnalysisTemplate", "t1", `- name: m
  successCondition: result[0] <
  provider: {prometheus: {query: up}}`), []string{"spec.metrics[0].successCondition", "does not compile"}},
		{"query that does not parse", template("AnalysisTemplate", "t2", `- name: m
  successCondition: result[0] < 1
  provider: {prometheus: {query: 'sum(rate(x[1m])'}}`), []string{"spec.metrics[0].provider.prometheus.query", "does not parse as PromQL"}},
		{"query using an undeclared arg", template("AnalysisTemplate", "t3", `- name: m
  successCondition: result[0] < 1
  provider: {prometheus: {query: 'up{job="{{ .args.job }}"}'}}`), []string{"spec.metrics[0].provider.prometheus.query", `arg "job" is not declared`}},
		{"metric without a rule", template("AnalysisTemplate", "t4", `- name: m
  provider: {prometheus: {query: up}}`), []string{"spec.metrics[0].successCondition", "would pass silently"}},
		{"noData policy not in the enum", template("AnalysisTemplate", "t5", `- name: m
  successCondition: result[0] < 1
  noData: Ignore
  provider: {prometheus: {query: up}}`), []string{"spec.metrics[0].noData", "Unsupported value"}},
		{"count without interval", template("AnalysisTemplate", "t6", `- name: m
  successCondition: result[0] < 1
  count: 3
  provider: {prometheus: {query: up}}`), []string{"spec.metrics[0].interval", "count is 3"}},
		{"baseline with a condition", template("AnalysisTemplate", "t7", `- name: m
  successCondition: result[0] < 1
  baseline: {query: up}
  provider: {prometheus: {query: up}}`), []string{"spec.metrics[0]", "remove successCondition"}},
		{"bad Prometheus address", template("ClusterAnalysisTemplate", "t8", `- name: m
  successCondition: result[0] < 1
  provider: {prometheus: {address: "prometheus:9090", query: up}}`), []string{"spec.metrics[0].provider.prometheus.address", "http://"}},
	}
	// The latency template needs "threshold" without a default.
	latency := template("AnalysisTemplate", "latency", `- name: p99
  successCondition: result[0] < 1
  provider: {prometheus: {query: 'x > {{ .args.threshold }}'}}`)
	if _, err := manifest.Create(ctx, env.Client, ns, []byte(latency)); err != nil {
		t.Fatalf("latency template: %v", err)
	}

	if len(cases) < 20 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := manifest.Create(ctx, env.Client, ns, []byte(tc.manifest))
			if err == nil {
				t.Fatalf("accepted; want a rejection naming %s", tc.want[0])
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// While a release is in progress, the workload, the routing, the style and
// the number of steps cannot change.
func TestFieldsImmutableWhileProgressing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	if _, err := manifest.Create(ctx, env.Client, ns, []byte(rolloutV1beta1("busy", "Deployment", `    canary:
      steps: [{replicas: 1}, {replicas: 2}]`+goodRouting))); err != nil {
		t.Fatal(err)
	}
	r := &v1beta1.Rollout{}
	key := client.ObjectKey{Namespace: ns, Name: "busy"}
	// The controller writes the Rollout too (its finalizer, its status):
	// each write here is retried on a conflict, on a fresh copy.
	if err := retry.RetryOnConflict(framework.ConflictRetry, func() error {
		if err := env.Client.Get(ctx, key, r); err != nil {
			return err
		}
		r.Status.Phase = v1beta1.RolloutPhaseProgressing
		return env.Client.Status().Update(ctx, r)
	}); err != nil {
		t.Fatal(err)
	}
	err := retry.RetryOnConflict(framework.ConflictRetry, func() error {
		if err := env.Client.Get(ctx, key, r); err != nil {
			return err
		}
		r.Spec.Strategy.Canary.Steps = r.Spec.Strategy.Canary.Steps[:1]
		r.Spec.WorkloadRef.Name = "other"
		return env.Client.Update(ctx, r)
	})
	if err == nil {
		t.Fatal("changing a Progressing Rollout's steps and workload was accepted")
	}
	for _, w := range []string{"spec.workloadRef", "spec.strategy.canary.steps", "release is in progress"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q: %v", w, err)
		}
	}
}
