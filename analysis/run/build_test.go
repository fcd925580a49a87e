package run

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

func str(s string) *string { return &s }

func target() Target {
	return Target{Namespace: "shop", Rollout: "web", Workload: "web", Service: "web-svc", Ingress: "web-ing",
		StableRevision: "5d8f", CanaryRevision: "7c9b", StepIndex: 2,
		Owner: &metav1.OwnerReference{APIVersion: "rollouts.kruise.io/v1beta1", Kind: "Rollout", Name: "web", UID: "u1"}}
}

func errorRate() v1alpha1.AnalysisTemplateSpec {
	return v1alpha1.AnalysisTemplateSpec{
		Args: []v1alpha1.Argument{{Name: "threshold", Value: str("0.05")}, {Name: "job"}},
		Metrics: []v1alpha1.Metric{{
			Name:             "error-rate",
			SuccessCondition: "result[0] < {{ .args.threshold }}",
			Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusProvider{
				Query: `sum(rate(x{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}",job="{{ .args.job }}"}[1m]))`}},
		}},
	}
}

func TestBuild(t *testing.T) {
	latency := v1alpha1.AnalysisTemplateSpec{Metrics: []v1alpha1.Metric{{
		Name:     "latency",
		Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusProvider{Query: `q{h="{{ .canaryRevision }}"}`}},
		Baseline: &v1alpha1.BaselineComparison{Query: `q{h="{{ .stableRevision }}",s="{{ .step }}"}`},
	}}}
	a := &v1alpha1.RolloutAnalysis{
		Templates: []v1alpha1.AnalysisTemplateRef{{TemplateName: "error-rate"}, {TemplateName: "latency"}},
		Args:      []v1alpha1.Argument{{Name: "job", Value: str(`a"b`)}},
	}
	run, err := Build(target(), []v1alpha1.AnalysisTemplateSpec{errorRate(), latency}, a)
	if err != nil {
		t.Fatal(err)
	}
	if run.Name != "web-7c9b-2" || run.Namespace != "shop" || run.Labels[LabelRollout] != "web" || run.Labels[LabelRevision] != "7c9b" || run.Labels[LabelStep] != "2" {
		t.Errorf("identity: %s/%s %v", run.Namespace, run.Name, run.Labels)
	}
	if len(run.OwnerReferences) != 1 || run.OwnerReferences[0].UID != "u1" {
		t.Errorf("owner %v", run.OwnerReferences)
	}
	if run.Spec.Rollout != "web" || run.Spec.Revision != "7c9b" || run.Spec.StepIndex != 2 {
		t.Errorf("spec identity %+v", run.Spec)
	}
	m := run.Spec.Metrics
	if got := m[0].Provider.Prometheus.Query; got != `sum(rate(x{namespace="shop",pod_template_hash="7c9b",job="a\"b"}[1m]))` {
		t.Errorf("query %s", got)
	}
	if m[0].SuccessCondition != "result[0] < 0.05" {
		t.Errorf("condition %s", m[0].SuccessCondition)
	}
	if m[1].Provider.Prometheus.Query != `q{h="7c9b"}` || m[1].Baseline.Query != `q{h="5d8f",s="2"}` {
		t.Errorf("baseline queries %s / %s", m[1].Provider.Prometheus.Query, m[1].Baseline.Query)
	}
	args := map[string]string{}
	for _, a := range run.Spec.Args {
		args[a.Name] = *a.Value
	}
	if len(args) != 10 || args["job"] != `a"b` || args["threshold"] != "0.05" || args["stableRevision"] != "5d8f" || args["step"] != "2" {
		t.Errorf("args %v", args)
	}
	// The templates are not modified.
	if errorRate().Metrics[0].SuccessCondition != "result[0] < {{ .args.threshold }}" {
		t.Error("template modified")
	}
}

func TestBuildErrors(t *testing.T) {
	refs := []v1alpha1.AnalysisTemplateRef{{TemplateName: "error-rate"}, {TemplateName: "other"}}
	for _, tc := range []struct {
		name      string
		templates []v1alpha1.AnalysisTemplateSpec
		args      []v1alpha1.Argument
		want      string
	}{
		{"missing arg", []v1alpha1.AnalysisTemplateSpec{errorRate()}, nil, `template "error-rate": arg "job" has no value`},
		{"unknown arg", []v1alpha1.AnalysisTemplateSpec{errorRate()}, []v1alpha1.Argument{{Name: "job", Value: str("j")}, {Name: "nope", Value: str("x")}}, `arg "nope" is not declared`},
		{"duplicate metric", []v1alpha1.AnalysisTemplateSpec{errorRate(), errorRate()}, []v1alpha1.Argument{{Name: "job", Value: str("j")}}, `template "other": metric "error-rate" is also defined`},
		{"undeclared in query", []v1alpha1.AnalysisTemplateSpec{{Metrics: []v1alpha1.Metric{{Name: "m",
			Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusProvider{Query: "{{ .args.x }}"}}}}}}, nil, `metric "m": provider.prometheus.query: arg "x" is not declared`},
	} {
		_, err := Build(target(), tc.templates, &v1alpha1.RolloutAnalysis{Templates: refs, Args: tc.args})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestName(t *testing.T) {
	tg := target()
	tg.StepIndex, tg.Attempt = 0, 0
	if n := Name(tg); n != "web-7c9b-bg" || Labels(tg)[LabelStep] != "background" {
		t.Errorf("background: %s %v", n, Labels(tg))
	}
	tg.StepIndex, tg.Attempt = 3, 2
	if n := Name(tg); n != "web-7c9b-3-r2" {
		t.Errorf("retry: %s", n)
	}
	tg.Rollout = strings.Repeat("a", 300)
	if n := Name(tg); len(n) > 253 || !strings.HasSuffix(n, "-7c9b-3-r2") {
		t.Errorf("long: %d %s", len(n), n)
	}
	if l := Labels(tg)[LabelRollout]; len(l) > 63 {
		t.Errorf("label %d", len(l))
	}
}
