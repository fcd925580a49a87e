package admission

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluicehq/sluice/analysis/condition"
	"github.com/sluicehq/sluice/analysis/query"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// validateRun checks what building the AnalysisRun would find wrong (see
// analysis/run.Build), so that a Rollout admitted is one whose analysis
// can run: every arg resolves to one value, no two templates define the
// same metric, and every query and condition, filled with the args given
// here, renders, parses and compiles. specs are the templates of
// a.Templates, in order, all found.
func validateRun(a *analysisv1alpha1.RolloutAnalysis, specs []analysisv1alpha1.AnalysisTemplateSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	given := map[string]int{} // arg name -> index in a.Args
	for i, arg := range a.Args {
		if arg.Value != nil {
			given[arg.Name] = i
		}
	}
	type origin struct{ value, template string }
	resolved := map[string]origin{}
	metrics := map[string]string{} // metric name -> template
	builtins, _ := query.Placeholders(nil, "")
	for i, spec := range specs {
		name := a.Templates[i].TemplateName
		tp := path.Child("templates").Index(i).Child("templateName")
		args := map[string]string{}
		for _, d := range spec.Args {
			v := ""
			if j, ok := given[d.Name]; ok {
				v = *a.Args[j].Value
			} else if d.Value != nil {
				v = *d.Value
			}
			if prev, dup := resolved[d.Name]; dup && prev.value != v {
				errs = append(errs, field.Invalid(path.Child("args"), d.Name, fmt.Sprintf(
					"templates %q and %q give arg %q different defaults (%q and %q): give it one value here", prev.template, name, d.Name, prev.value, v)))
			}
			resolved[d.Name] = origin{v, name}
			args[d.Name] = v
		}
		for _, m := range spec.Metrics {
			if other, dup := metrics[m.Name]; dup {
				errs = append(errs, field.Invalid(tp, name, fmt.Sprintf("metric %q is also defined by template %q; a run measures each metric once", m.Name, other)))
				continue
			}
			metrics[m.Name] = name
			for _, f := range renderedFields(&m) {
				if err := f.check(f.text, builtins, args); err != nil {
					errs = append(errs, argError(a, given, tp, path, fmt.Sprintf("template %q, metric %q, %s", name, m.Name, f.name), err))
				}
			}
		}
	}
	return errs
}

// renderedField is a templated field of a metric and how it is checked.
type renderedField struct {
	name, text string
	check      func(text string, builtins, args map[string]string) error
}

func renderedFields(m *analysisv1alpha1.Metric) []renderedField {
	var out []renderedField
	for _, f := range []struct{ name, text string }{{"successCondition", m.SuccessCondition}, {"failureCondition", m.FailureCondition}} {
		if f.text != "" {
			out = append(out, renderedField{f.name, f.text, checkCondition})
		}
	}
	if p := m.Provider.Prometheus; p != nil && p.Query != "" {
		out = append(out, renderedField{"provider.prometheus.query", p.Query, checkQuery})
	}
	if b := m.Baseline; b != nil && b.Query != "" {
		out = append(out, renderedField{"baseline.query", b.Query, checkQuery})
	}
	return out
}

func checkQuery(text string, builtins, args map[string]string) error {
	rendered, err := query.Render(text, builtins, args)
	if err != nil {
		return err
	}
	if err := query.Parse(rendered); err != nil {
		return fmt.Errorf("does not parse as PromQL: %w (rendered: %s)", err, rendered)
	}
	return nil
}

func checkCondition(text string, builtins, args map[string]string) error {
	rendered, err := query.RenderCondition(text, builtins, args)
	if err != nil {
		return err
	}
	if _, err := condition.Compile(rendered); err != nil {
		return fmt.Errorf("does not compile: %w (rendered: %s)", err, rendered)
	}
	return nil
}

// argError places a rendering error: on the value of the arg given here
// that the template could not take, else on the args as a whole (the
// template with these args does not work), or, when no arg is involved,
// on the template.
func argError(a *analysisv1alpha1.RolloutAnalysis, given map[string]int, template, path *field.Path, what string, err error) *field.Error {
	var ve *query.ValueError
	if errors.As(err, &ve) {
		if i, ok := given[ve.Arg]; ok {
			return field.Invalid(path.Child("args").Index(i).Child("value"), ve.Value, fmt.Sprintf("%s: %s", what, err))
		}
		return field.Invalid(template, ve.Value, fmt.Sprintf("%s: %s", what, err))
	}
	if len(given) > 0 {
		return field.Invalid(path.Child("args"), field.OmitValueType{}, fmt.Sprintf("with the args given here, %s %s", what, err))
	}
	return field.Invalid(template, field.OmitValueType{}, fmt.Sprintf("%s %s", what, err))
}
