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
	for i, s := range steps {
		errs = append(errs, ValidateRoute(ref, s.TrafficRoutingStrategy, stepsPath.Index(i))...)
	}
	return errs
}

// ValidateRoute reports what ref's routing can never express of one
// route s (a step's, or a TrafficRouting's strategy); path is where s is
// written, and the errors name its traffic, matches or
// requestHeaderModifier.
func ValidateRoute(ref v1beta1.TrafficRoutingRef, s v1beta1.TrafficRoutingStrategy, path *field.Path) field.ErrorList {
	var annotate ingress.Annotator
	if ref.Ingress != nil {
		class := ref.Ingress.ClassType
		if class == "" {
			class = ingress.DefaultClassType
		}
		annotate, _ = ingress.BuiltinClass(class)
	}
	r, err := route.FromStep(s)
	if err != nil {
		return field.ErrorList{field.Invalid(path.Child("traffic"), *s.Traffic, err.Error())}
	}
	if annotate == nil {
		return nil
	}
	// Matches first, then the header modifier, so each error names its field.
	withoutModifier := r
	withoutModifier.RequestHeaderModifier = nil
	if _, err := annotate(nil, withoutModifier); err != nil {
		return field.ErrorList{field.Invalid(path.Child("matches"), len(s.Matches), err.Error())}
	} else if _, err := annotate(nil, r); err != nil {
		return field.ErrorList{field.Invalid(path.Child("requestHeaderModifier"), "", err.Error())}
	}
	return nil
}
