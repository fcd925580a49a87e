package trafficrouting

import (
	"context"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	analysisadmission "github.com/sluicehq/sluice/analysis/admission"
	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	rolloutadmission "github.com/sluicehq/sluice/rollout/admission"
	"github.com/sluicehq/sluice/traffic"
)

// AdmissionPath is where the TrafficRouting webhook is served.
const AdmissionPath = "/validate-trafficrouting"

// +kubebuilder:webhook:path=/validate-trafficrouting,mutating=false,failurePolicy=fail,sideEffects=None,groups=rollouts.kruise.io,resources=trafficroutings,verbs=create;update,versions=v1alpha1,name=trafficroutings.validate.sluice.dev,admissionReviewVersions=v1,matchPolicy=Exact

// Validator is the validating webhook for TrafficRoutings. Kruise has
// none: a TrafficRouting it cannot apply fails only when a release starts.
type Validator struct {
	Decoder admission.Decoder
}

var _ admission.Handler = &Validator{}

// Handle validates a created or updated TrafficRouting.
func (v *Validator) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	cur := &v1alpha1.TrafficRouting{}
	if err := v.Decoder.DecodeRaw(req.Object, cur); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	var errs field.ErrorList
	if req.Operation == admissionv1.Update {
		old := &v1alpha1.TrafficRouting{}
		if err := v.Decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		// Finalizers (Rollouts joining and leaving) and status are never
		// blocked by rules about the spec.
		if cur.DeletionTimestamp != nil || equality.Semantic.DeepEqual(old.Spec, cur.Spec) {
			return admission.Allowed("")
		}
		errs = ValidateUpdate(old, cur)
	}
	errs = append(errs, ValidateSpec(cur)...)
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	return analysisadmission.InvalidResponse(gk, req.Name, errs)
}

// ValidateSpec checks a TrafficRouting on its own: one objectRef that
// names what to change (the Rollout's rules for trafficRoutings), and a
// strategy that routes something the routing can express.
func ValidateSpec(tr *v1alpha1.TrafficRouting) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	ref, ok := tr.Spec.V1beta1Ref()
	if !ok {
		errs = append(errs, field.Required(spec.Child("objectRef"), "name the Service and the ingress, gateway or customNetworkRefs to change"))
	} else {
		errs = append(errs, rolloutadmission.ValidateTrafficRoutings(tr.Spec.V1beta1Refs(), spec.Child("objectRef"))...)
	}

	p := spec.Child("strategy")
	s := tr.Spec.Strategy
	if s.Weight != nil && (*s.Weight < 0 || *s.Weight > 100) {
		errs = append(errs, field.Invalid(p.Child("weight"), *s.Weight, "must be a percentage between 0 and 100"))
	}
	for j, m := range s.Matches {
		if len(m.Headers) == 0 {
			errs = append(errs, field.Required(p.Child("matches").Index(j).Child("headers"), "a match needs at least one header"))
		}
	}
	if (s.Weight == nil || *s.Weight == 0) && len(s.Matches) == 0 {
		errs = append(errs, field.Required(p, "set matches (the requests to route, by header) or a weight: without either the TrafficRouting changes nothing"))
	}
	if len(errs) > 0 || !ok {
		return errs
	}
	// What the Ingress class cannot express fails now, not when a release starts.
	for _, e := range traffic.ValidateRoute(ref, s.V1beta1Strategy(), p) {
		if e.Field == p.Child("traffic").String() {
			e.Field = p.Child("weight").String()
		}
		errs = append(errs, e)
	}
	return errs
}

// ValidateUpdate keeps objectRef while a Rollout holds the TrafficRouting
// or its routing is being restored: the routing objects changed are the
// ones that must be restored.
func ValidateUpdate(old, cur *v1alpha1.TrafficRouting) field.ErrorList {
	held := len(old.HoldingRollouts()) > 0 || old.Status.Phase == v1alpha1.TrafficRoutingPhaseProgressing || old.Status.Phase == v1alpha1.TrafficRoutingPhaseFinalizing
	if !held || equality.Semantic.DeepEqual(old.Spec.ObjectRef, cur.Spec.ObjectRef) {
		return nil
	}
	return field.ErrorList{field.Forbidden(field.NewPath("spec", "objectRef"),
		"cannot change while Rollouts hold the TrafficRouting ("+holders(old)+") or its routing is being restored; change it once it is Healthy")}
}

func holders(tr *v1alpha1.TrafficRouting) string {
	if names := tr.HoldingRollouts(); len(names) > 0 {
		return "held by " + strings.Join(names, ", ")
	}
	return "held by none"
}
