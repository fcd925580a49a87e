package admission

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/analysis/admission/admissiontest"
	"github.com/sluicehq/sluice/analysis/condition"
	"github.com/sluicehq/sluice/analysis/query"
	"github.com/sluicehq/sluice/analysis/run"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// FuzzAdmissionAgreesWithRun checks that admission and the run agree: a
// template whose query and condition (with one arg, with or without a
// default, given a value by the Rollout or not) pass ValidateTemplateSpec
// and ValidateRolloutAnalysis builds into an AnalysisRun (run.Build)
// whose query parses and whose condition compiles and evaluates without
// a panic. Every rejection on the way names a field. The seeds are the
// templates of docs/, the e2e tests and the unit tests.
func FuzzAdmissionAgreesWithRun(f *testing.F) {
	const errorRate = `sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}",code=~"5.."}[10s])) / sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}"}[10s]))`
	for _, s := range []struct {
		query, cond, def string
		hasDefault       bool
		value            string
	}{
		{errorRate, "result[0] < 0.05", "", false, ""},
		{`histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}"}[10s])))`, "result[0] < 0.25", "", false, ""},
		{`sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}",code=~"5.."}[{{ .args.a }}]))`, "default(result[0], 0) < 0.05", "1m", true, "5m"},
		{`sum(rate(x{ns="{{ .namespace }}"}[1m]))`, "default(result[0], 0) < {{ .args.a }}", "", false, "0.1"},
		{`x > {{ .args.a }}`, "result[0] < 1", "", false, "1"},
		{`up{job="{{ .args.a }}"}`, "true", "", false, `a"b`},
		{`q{h="{{ .stableRevision }}",s="{{ .step }}"}`, "len(result) > 0 && result[0] > 1", "x", true, ""},
		{`x > {{ .args.a }}`, "result[0] < 1", "", false, "1 or vector(1)"},
		{`up{job='{{ .args.a }}'}`, "result[0] < {{ .args.a }}", "0", true, "1 || true"},
	} {
		f.Add(s.query, s.cond, s.def, s.hasDefault, s.value)
	}
	target := run.Target{Namespace: "shop", Rollout: "rollouts-demo", Workload: "echoserver", Service: "echoserver", Ingress: "echoserver",
		StableRevision: "78855c7996", CanaryRevision: "756ff5f57c", StepIndex: 1}
	limits := condition.DefaultLimits
	limits.MaxDuration = 100 * time.Millisecond
	f.Fuzz(func(t *testing.T, promql, cond, def string, hasDefault bool, value string) {
		spec := &analysisv1alpha1.AnalysisTemplateSpec{
			Args: []analysisv1alpha1.Argument{{Name: "a"}},
			Metrics: []analysisv1alpha1.Metric{{Name: "m", SuccessCondition: cond,
				Provider: analysisv1alpha1.MetricProvider{Prometheus: &analysisv1alpha1.PrometheusProvider{Query: promql}}}},
		}
		if hasDefault {
			spec.Args[0].Value = &def
		}
		if errs := ValidateTemplateSpec(spec, field.NewPath("spec")); len(errs) > 0 {
			requireFields(t, errs, "spec.")
			return
		}
		a := &analysisv1alpha1.RolloutAnalysis{Templates: []analysisv1alpha1.AnalysisTemplateRef{{TemplateName: "t"}}}
		if value != "" || !hasDefault {
			a.Args = []analysisv1alpha1.Argument{{Name: "a", Value: &value}}
		}
		lookup := func(analysisv1alpha1.AnalysisTemplateRef) (*analysisv1alpha1.AnalysisTemplateSpec, error) {
			return spec, nil
		}
		if errs := ValidateRolloutAnalysis(a, lookup, field.NewPath("spec", "strategy", "analysis")); len(errs) > 0 {
			requireFields(t, errs, "spec.strategy.analysis.")
			return
		}
		r, err := run.Build(target, []analysisv1alpha1.AnalysisTemplateSpec{*spec}, a)
		if err != nil {
			t.Fatalf("admitted, but the run cannot be built: %v", err)
		}
		m := r.Spec.Metrics[0]
		if err := query.Parse(m.Provider.Prometheus.Query); err != nil {
			t.Fatalf("admitted, but the run's query %q does not parse: %v", m.Provider.Prometheus.Query, err)
		}
		if m.SuccessCondition == "" {
			return
		}
		p, err := limits.Compile(m.SuccessCondition)
		if err != nil {
			t.Fatalf("admitted, but the run's condition %q does not compile: %v", m.SuccessCondition, err)
		}
		for _, result := range []any{[]float64{0.01}, []float64{}, 0.5, nil} {
			_, _ = p.Eval(result) // errors are verdicts (Error); a panic fails the fuzz
		}
	})
}

// requireFields fails unless every error names a field under prefix.
func requireFields(t *testing.T, errs field.ErrorList, prefix string) {
	t.Helper()
	for _, e := range errs {
		if !strings.HasPrefix(e.Field, prefix) {
			t.Fatalf("error without a field path under %s: %v", prefix, e)
		}
	}
}

// FuzzTemplateValidatorHandle sends the template webhook requests whose
// object is fuzzed JSON, as an AnalysisTemplate or a
// ClusterAnalysisTemplate, created, updated or deleted: each is allowed,
// refused as undecodable with a message, or denied with causes that name
// fields; never a panic. The seeds are the templates of docs/.
func FuzzTemplateValidatorHandle(f *testing.F) {
	b, err := os.ReadFile("../../docs/examples/error-rate-template.yaml")
	if err != nil {
		f.Fatal(err)
	}
	errorRate, err := yaml.YAMLToJSON(b)
	if err != nil {
		f.Fatal(err)
	}
	for sel := range uint8(6) {
		f.Add(errorRate, sel)
	}
	f.Add([]byte(`{"spec":{"args":[{"name":"namespace"}],"metrics":[{"name":"m","successCondition":"result[0] < {{ .args.x }}","provider":{"prometheus":{"query":"up{a='{{ .namespace }}'}"}}}]}}`), uint8(0))
	f.Add([]byte(`{"spec":{"metrics":[{"name":"m","baseline":{"query":"x"},"provider":{}}]}}`), uint8(1))
	f.Add([]byte(`{"spec":`), uint8(0))

	scheme := runtime.NewScheme()
	if err := analysisv1alpha1.AddToScheme(scheme); err != nil {
		f.Fatal(err)
	}
	v := &TemplateValidator{Decoder: admission.NewDecoder(scheme)}
	kinds := []string{"AnalysisTemplate", "ClusterAnalysisTemplate"}
	ops := []admissionv1.Operation{admissionv1.Create, admissionv1.Update, admissionv1.Delete}
	f.Fuzz(func(t *testing.T, object []byte, sel uint8) {
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID:       "fuzz",
			Kind:      metav1.GroupVersionKind{Group: analysisv1alpha1.GroupVersion.Group, Version: "v1alpha1", Kind: kinds[sel%2]},
			Namespace: "default", Name: "error-rate",
			Operation: ops[(sel/2)%3],
			Object:    runtime.RawExtension{Raw: object},
		}}
		admissiontest.CheckResponse(t, v.Handle(context.Background(), req))
	})
}
