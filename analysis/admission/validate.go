// Package admission validates AnalysisTemplates and the analysis that a
// Rollout asks for, at admission: conditions must compile, queries must
// render and parse as PromQL, args must be declared and given, templates
// must exist. Each error names the field and says what to do.
package admission

import (
	"fmt"
	"net/url"
	"sort"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluicehq/sluice/analysis/condition"
	"github.com/sluicehq/sluice/analysis/query"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// ValidateTemplateSpec checks an AnalysisTemplate or ClusterAnalysisTemplate spec.
func ValidateTemplateSpec(spec *analysisv1alpha1.AnalysisTemplateSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	declared := map[string]string{}
	for i, a := range spec.Args {
		if query.IsBuiltin(a.Name) {
			errs = append(errs, field.Invalid(path.Child("args").Index(i).Child("name"), a.Name,
				"is a built-in arg, always set by Sluice: remove it and write {{ ."+a.Name+" }} in queries"))
		}
		declared[a.Name] = ""
		if a.Value != nil {
			declared[a.Name] = *a.Value
		}
	}
	if len(spec.Metrics) == 0 {
		errs = append(errs, field.Required(path.Child("metrics"), "a template needs at least one metric"))
	}
	for i := range spec.Metrics {
		errs = append(errs, validateMetric(&spec.Metrics[i], declared, path.Child("metrics").Index(i))...)
	}
	return errs
}

func validateMetric(m *analysisv1alpha1.Metric, declared map[string]string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if m.Interval != nil && m.Interval.Duration <= 0 {
		errs = append(errs, field.Invalid(path.Child("interval"), m.Interval.Duration.String(), "must be a positive duration such as 30s"))
	}
	if m.InitialDelay != nil && m.InitialDelay.Duration < 0 {
		errs = append(errs, field.Invalid(path.Child("initialDelay"), m.InitialDelay.Duration.String(), "must not be negative"))
	}
	if m.Count != nil && *m.Count > 1 && m.Interval == nil {
		errs = append(errs, field.Required(path.Child("interval"), fmt.Sprintf("count is %d: set the interval between measurements", *m.Count)))
	}

	prom := m.Provider.Prometheus
	if prom == nil {
		return append(errs, field.Required(path.Child("provider", "prometheus"), "set a provider: prometheus is the one Sluice supports"))
	}
	pp := path.Child("provider", "prometheus")
	if prom.Address != "" {
		if u, err := url.Parse(prom.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, field.Invalid(pp.Child("address"), prom.Address, "must be an http:// or https:// URL, e.g. http://prometheus.monitoring:9090"))
		}
	}
	if err := query.Check(prom.Query, declared); err != nil {
		errs = append(errs, field.Invalid(pp.Child("query"), prom.Query, err.Error()))
	}
	if r := prom.Range; r != nil {
		if r.Lookback.Duration <= 0 {
			errs = append(errs, field.Invalid(pp.Child("range", "lookback"), r.Lookback.Duration.String(), "must be a positive duration such as 5m"))
		}
		if r.Step.Duration <= 0 {
			errs = append(errs, field.Invalid(pp.Child("range", "step"), r.Step.Duration.String(), "must be a positive duration such as 15s"))
		}
	}
	if prom.Timeout != nil && prom.Timeout.Duration <= 0 {
		errs = append(errs, field.Invalid(pp.Child("timeout"), prom.Timeout.Duration.String(), "must be a positive duration such as 30s"))
	}

	if b := m.Baseline; b != nil {
		bp := path.Child("baseline")
		if m.SuccessCondition != "" || m.FailureCondition != "" {
			errs = append(errs, field.Forbidden(bp, "a baseline comparison is judged by the Mann-Whitney test: remove successCondition and failureCondition"))
		}
		if prom.Range != nil {
			errs = append(errs, field.Forbidden(pp.Child("range"), "a baseline comparison sets its window with baseline.window and baseline.step: remove range"))
		}
		if err := query.Check(b.Query, declared); err != nil {
			errs = append(errs, field.Invalid(bp.Child("query"), b.Query, err.Error()))
		}
		if b.Window != nil && b.Window.Duration <= 0 {
			errs = append(errs, field.Invalid(bp.Child("window"), b.Window.Duration.String(), "must be a positive duration such as 5m"))
		}
		if b.Step != nil && b.Step.Duration <= 0 {
			errs = append(errs, field.Invalid(bp.Child("step"), b.Step.Duration.String(), "must be a positive duration such as 15s"))
		}
		return errs
	}

	if m.SuccessCondition == "" && m.FailureCondition == "" {
		errs = append(errs, field.Required(path.Child("successCondition"),
			"set successCondition, failureCondition or baseline: a metric without a rule would pass silently"))
	}
	for name, src := range map[string]string{"successCondition": m.SuccessCondition, "failureCondition": m.FailureCondition} {
		if src == "" {
			continue
		}
		// Conditions may use args too ("result[0] < {{ .args.threshold }}").
		builtins, args := query.Placeholders(declared, "1")
		rendered, err := query.RenderCondition(src, builtins, args)
		if err == nil {
			_, err = condition.Compile(rendered)
			if err != nil {
				err = fmt.Errorf("does not compile: %w", err)
			}
		}
		if err != nil {
			errs = append(errs, field.Invalid(path.Child(name), src, err.Error()))
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	return errs
}

// TemplateLookup finds the spec of a referenced template; a nil spec with
// a nil error means it does not exist.
type TemplateLookup func(ref analysisv1alpha1.AnalysisTemplateRef) (*analysisv1alpha1.AnalysisTemplateSpec, error)

// ValidateRolloutAnalysis checks the analysis a Rollout asks for: the
// templates exist, every arg they need is given, every arg given is
// used by some template; then that the run can be built from them as the
// controller will build it (see validateRun).
func ValidateRolloutAnalysis(a *analysisv1alpha1.RolloutAnalysis, lookup TemplateLookup, path *field.Path) field.ErrorList {
	if a == nil {
		return nil
	}
	var errs field.ErrorList
	given := map[string]bool{}
	for i, arg := range a.Args {
		if query.IsBuiltin(arg.Name) {
			errs = append(errs, field.Invalid(path.Child("args").Index(i).Child("name"), arg.Name, "is a built-in arg, set by Sluice: remove it"))
		}
		// An arg without a value gives nothing: the template's default
		// applies, as when the run is built.
		given[arg.Name] = arg.Value != nil
	}
	declared := map[string]bool{}
	var specs []analysisv1alpha1.AnalysisTemplateSpec
	if len(a.Templates) == 0 {
		errs = append(errs, field.Required(path.Child("templates"), "name at least one AnalysisTemplate"))
	}
	for i, ref := range a.Templates {
		p := path.Child("templates").Index(i).Child("templateName")
		spec, err := lookup(ref)
		switch {
		case err != nil:
			errs = append(errs, field.InternalError(p, err))
			continue
		case spec == nil && ref.ClusterScope:
			errs = append(errs, field.NotFound(p, ref.TemplateName+": no ClusterAnalysisTemplate of that name; create it first"))
			continue
		case spec == nil:
			errs = append(errs, field.NotFound(p, ref.TemplateName+": no AnalysisTemplate of that name in this namespace; create it first (or set clusterScope: true for a ClusterAnalysisTemplate)"))
			continue
		}
		specs = append(specs, *spec)
		for _, arg := range spec.Args {
			declared[arg.Name] = true
			if arg.Value == nil && !given[arg.Name] {
				errs = append(errs, field.Required(path.Child("args"),
					fmt.Sprintf("template %q needs arg %q, which has no default: add {name: %s, value: ...}", ref.TemplateName, arg.Name, arg.Name)))
			}
		}
	}
	for i, arg := range a.Args {
		if !declared[arg.Name] && !query.IsBuiltin(arg.Name) && len(errs) == 0 {
			errs = append(errs, field.Invalid(path.Child("args").Index(i).Child("name"), arg.Name, "no referenced template declares this arg: fix the name or remove it"))
		}
	}
	if len(errs) == 0 {
		errs = validateRun(a, specs, path)
	}
	return errs
}
