package admission

import (
	"context"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// TemplatePath is where the template webhook is served.
const TemplatePath = "/validate-analysistemplate"

// +kubebuilder:webhook:path=/validate-analysistemplate,mutating=false,failurePolicy=fail,sideEffects=None,groups=analysis.sluice.dev,resources=analysistemplates;clusteranalysistemplates,verbs=create;update,versions=v1alpha1,name=analysistemplates.validate.sluice.dev,admissionReviewVersions=v1

// TemplateValidator is the validating webhook for AnalysisTemplates and
// ClusterAnalysisTemplates.
type TemplateValidator struct {
	Decoder admission.Decoder
}

var _ admission.Handler = &TemplateValidator{}

// Handle validates a created or updated template.
func (v *TemplateValidator) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	var spec *analysisv1alpha1.AnalysisTemplateSpec
	switch req.Kind.Kind {
	case "AnalysisTemplate":
		t := &analysisv1alpha1.AnalysisTemplate{}
		if err := v.Decoder.Decode(req, t); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		spec = &t.Spec
	case "ClusterAnalysisTemplate":
		t := &analysisv1alpha1.ClusterAnalysisTemplate{}
		if err := v.Decoder.Decode(req, t); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		spec = &t.Spec
	default:
		return admission.Allowed("")
	}
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	return InvalidResponse(gk, req.Name, ValidateTemplateSpec(spec, field.NewPath("spec")))
}

// InvalidResponse denies a request with the field errors, in the shape
// kubectl prints for built-in kinds ("X is invalid: spec.a: Invalid value:
// ..."), or allows it when there are none.
func InvalidResponse(gk schema.GroupKind, name string, errs field.ErrorList, warnings ...string) admission.Response {
	if len(errs) == 0 {
		return admission.Allowed("").WithWarnings(warnings...)
	}
	status := apierrors.NewInvalid(gk, name, errs).Status()
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
		Allowed:  false,
		Result:   &status,
		Warnings: warnings,
	}}
}
