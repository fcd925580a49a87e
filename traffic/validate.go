package traffic

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic/ingress"
	"github.com/sluicehq/sluice/traffic/route"
)

// ValidateSteps reports, for admission, the steps that ref's routing can
// never express, so a Rollout fails when it is applied rather than halfway
// through a release. Only what is known without reading the cluster is
// checked: the traffic values, and the matches and header modifiers of the
// built-in ingress classes (a Lua classType is judged at run time).
// stepsPath is the path of the steps, e.g. spec.strategy.canary.steps.
func ValidateSteps(ref v1beta1.TrafficRoutingRef, steps []v1beta1.CanaryStep, stepsPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	var annotate ingress.Annotator
	if ref.Ingress != nil {
		class := ref.Ingress.ClassType
		if class == "" {
			class = ingress.DefaultClassType
		}
		annotate, _ = ingress.BuiltinClass(class)
	}
	for i, s := range steps {
		p := stepsPath.Index(i)
		r, err := route.FromStep(s.TrafficRoutingStrategy)
		if err != nil {
			errs = append(errs, field.Invalid(p.Child("traffic"), *s.Traffic, err.Error()))
			continue
		}
		if annotate == nil {
			continue
		}
		// Matches first, then the header modifier, so each error names its field.
		withoutModifier := r
		withoutModifier.RequestHeaderModifier = nil
		if _, err := annotate(nil, withoutModifier); err != nil {
			errs = append(errs, field.Invalid(p.Child("matches"), len(s.Matches), err.Error()))
		} else if _, err := annotate(nil, r); err != nil {
			errs = append(errs, field.Invalid(p.Child("requestHeaderModifier"), "", err.Error()))
		}
	}
	return errs
}
