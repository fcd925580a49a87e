package admission

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

func spec(t *testing.T, y string) *analysisv1alpha1.AnalysisTemplateSpec {
	t.Helper()
	s := &analysisv1alpha1.AnalysisTemplateSpec{}
	if err := yaml.UnmarshalStrict([]byte(y), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidateTemplateSpec(t *testing.T) {
	cases := []struct {
		name, spec, wantField, wantText string
	}{
		{name: "valid, args in query and condition", spec: `
args: [{name: threshold}, {name: window, value: 5m}]
metrics:
- name: errors
  interval: 30s
  count: 3
  successCondition: default(result[0], 0) < {{ .args.threshold }}
  provider: {prometheus: {query: 'sum(rate(x{ns="{{ .namespace }}"}[{{ .args.window }}]))'}}`},
		{name: "condition with an undeclared arg", spec: `
metrics:
- name: errors
  successCondition: result[0] < {{ .args.limit }}
  provider: {prometheus: {query: up}}`, wantField: "spec.metrics[0].successCondition", wantText: `arg "limit" is not declared`},
		{name: "failure condition does not compile", spec: `
metrics:
- name: errors
  failureCondition: result[0] >>> 1
  provider: {prometheus: {query: up}}`, wantField: "spec.metrics[0].failureCondition", wantText: "does not compile"},
		{name: "built-in declared as an arg", spec: `
args: [{name: namespace}]
metrics:
- name: errors
  successCondition: "true"
  provider: {prometheus: {query: up}}`, wantField: "spec.args[0].name", wantText: "built-in"},
		{name: "no provider", spec: `
metrics:
- name: errors
  successCondition: "true"
  provider: {}`, wantField: "spec.metrics[0].provider.prometheus", wantText: "Required"},
		{name: "range with zero step", spec: `
metrics:
- name: errors
  successCondition: "true"
  provider: {prometheus: {query: up, range: {lookback: 5m, step: 0s}}}`, wantField: "spec.metrics[0].provider.prometheus.range.step"},
		{name: "baseline query that does not parse", spec: `
metrics:
- name: latency
  baseline: {query: 'rate(x[1m]'}
  provider: {prometheus: {query: up}}`, wantField: "spec.metrics[0].baseline.query", wantText: "does not parse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateTemplateSpec(spec(t, tc.spec), field.NewPath("spec"))
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

func TestValidateRolloutAnalysis(t *testing.T) {
	threshold := "0.1"
	templates := map[string]*analysisv1alpha1.AnalysisTemplateSpec{
		"errors": {Args: []analysisv1alpha1.Argument{{Name: "threshold"}, {Name: "window", Value: &threshold}}},
	}
	lookup := func(ref analysisv1alpha1.AnalysisTemplateRef) (*analysisv1alpha1.AnalysisTemplateSpec, error) {
		return templates[ref.TemplateName], nil
	}
	path := field.NewPath("spec", "strategy", "analysis")
	ok := &analysisv1alpha1.RolloutAnalysis{
		Templates: []analysisv1alpha1.AnalysisTemplateRef{{TemplateName: "errors"}},
		Args:      []analysisv1alpha1.Argument{{Name: "threshold", Value: &threshold}},
	}
	if errs := ValidateRolloutAnalysis(ok, lookup, path); len(errs) > 0 {
		t.Fatalf("want valid, got %v", errs)
	}
	missing := ok.DeepCopy()
	missing.Args = nil
	if errs := ValidateRolloutAnalysis(missing, lookup, path); len(errs) != 1 || !strings.Contains(errs[0].Error(), `needs arg "threshold"`) {
		t.Fatalf("got %v", errs)
	}
	unknown := ok.DeepCopy()
	unknown.Args = append(unknown.Args, analysisv1alpha1.Argument{Name: "typo", Value: &threshold})
	if errs := ValidateRolloutAnalysis(unknown, lookup, path); len(errs) != 1 || errs[0].Field != "spec.strategy.analysis.args[1].name" {
		t.Fatalf("got %v", errs)
	}
	gone := ok.DeepCopy()
	gone.Templates[0].TemplateName = "nope"
	if errs := ValidateRolloutAnalysis(gone, lookup, path); len(errs) != 1 || errs[0].Type != field.ErrorTypeNotFound {
		t.Fatalf("got %v", errs)
	}
}

// What building the run would find wrong is found at admission, on the
// field to fix: a value the template cannot take, args that resolve two
// ways, a metric defined twice.
func TestValidateRolloutAnalysisBuildsTheRun(t *testing.T) {
	str := func(s string) *string { return &s }
	templates := map[string]*analysisv1alpha1.AnalysisTemplateSpec{
		"limit": spec(t, `
args: [{name: limit}]
metrics:
- name: errors
  successCondition: result[0] < {{ .args.limit }}
  provider: {prometheus: {query: 'sum(rate(x[1m])) > {{ .args.limit }}'}}`),
		"codes": spec(t, `
args: [{name: codes, value: "5.."}, {name: window, value: 1m}]
metrics:
- name: codes
  successCondition: "true"
  provider: {prometheus: {query: 'sum(rate(x{code=~"{{ .args.codes }}"}[{{ .args.window }}]))'}}`),
		"window-5m": spec(t, `
args: [{name: window, value: 5m}]
metrics:
- name: latency
  successCondition: "true"
  provider: {prometheus: {query: 'rate(x[{{ .args.window }}])'}}`),
		"codes-again": spec(t, `
metrics:
- name: codes
  successCondition: "true"
  provider: {prometheus: {query: up}}`),
	}
	lookup := func(ref analysisv1alpha1.AnalysisTemplateRef) (*analysisv1alpha1.AnalysisTemplateSpec, error) {
		return templates[ref.TemplateName], nil
	}
	path := field.NewPath("spec", "strategy", "canary", "steps").Index(0).Child("analysis")
	refs := func(names ...string) []analysisv1alpha1.AnalysisTemplateRef {
		var out []analysisv1alpha1.AnalysisTemplateRef
		for _, n := range names {
			out = append(out, analysisv1alpha1.AnalysisTemplateRef{TemplateName: n})
		}
		return out
	}
	cases := []struct {
		name      string
		analysis  analysisv1alpha1.RolloutAnalysis
		wantField string
		wantText  string
	}{
		{name: "a number", analysis: analysisv1alpha1.RolloutAnalysis{Templates: refs("limit"), Args: []analysisv1alpha1.Argument{{Name: "limit", Value: str("0.05")}}}},
		{name: "an expression where the query wants a number", analysis: analysisv1alpha1.RolloutAnalysis{Templates: refs("limit"), Args: []analysisv1alpha1.Argument{{Name: "limit", Value: str("1 or vector(1)")}}},
			wantField: "spec.strategy.canary.steps[0].analysis.args[0].value", wantText: "stands outside quotes"},
		{name: "an expression where the condition wants a number", analysis: analysisv1alpha1.RolloutAnalysis{Templates: refs("limit"), Args: []analysisv1alpha1.Argument{{Name: "limit", Value: str("1 || true")}}},
			wantField: "spec.strategy.canary.steps[0].analysis.args[0].value", wantText: `template "limit", metric "errors", successCondition: {{.args.limit}} is "1 || true": is not a number`},
		{name: "a quote inside a matcher is only text", analysis: analysisv1alpha1.RolloutAnalysis{Templates: refs("codes"), Args: []analysisv1alpha1.Argument{{Name: "codes", Value: str(`5.."} or vector(1) #`)}}}},
		{name: "a regular expression that does not compile", analysis: analysisv1alpha1.RolloutAnalysis{Templates: refs("codes"), Args: []analysisv1alpha1.Argument{{Name: "codes", Value: str("5(")}}},
			wantField: "spec.strategy.canary.steps[0].analysis.args", wantText: "with the args given here, template \"codes\", metric \"codes\", provider.prometheus.query does not parse"},
		{name: "an arg without a value gives nothing", analysis: analysisv1alpha1.RolloutAnalysis{Templates: refs("limit"), Args: []analysisv1alpha1.Argument{{Name: "limit"}}},
			wantField: "spec.strategy.canary.steps[0].analysis.args", wantText: `needs arg "limit"`},
		{name: "two defaults for one arg", analysis: analysisv1alpha1.RolloutAnalysis{Templates: refs("codes", "window-5m")},
			wantField: "spec.strategy.canary.steps[0].analysis.args", wantText: `templates "codes" and "window-5m" give arg "window" different defaults ("1m" and "5m")`},
		{name: "two defaults, one value given", analysis: analysisv1alpha1.RolloutAnalysis{Templates: refs("codes", "window-5m"), Args: []analysisv1alpha1.Argument{{Name: "window", Value: str("2m")}}}},
		{name: "a metric defined twice", analysis: analysisv1alpha1.RolloutAnalysis{Templates: refs("codes", "codes-again")},
			wantField: "spec.strategy.canary.steps[0].analysis.templates[1].templateName", wantText: `metric "codes" is also defined by template "codes"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateRolloutAnalysis(&tc.analysis, lookup, path)
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
