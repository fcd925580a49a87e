package admission

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	analysisadmission "github.com/sluicehq/sluice/analysis/admission"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// Path is where the Rollout webhook is served.
const Path = "/validate-rollout"

// +kubebuilder:webhook:path=/validate-rollout,mutating=false,failurePolicy=fail,sideEffects=None,groups=rollouts.kruise.io,resources=rollouts,verbs=create;update,versions=v1alpha1;v1beta1,name=rollouts.validate.sluice.dev,admissionReviewVersions=v1,matchPolicy=Exact
// +kubebuilder:rbac:groups=rollouts.kruise.io,resources=rollouts;trafficroutings,verbs=get;list;watch
// +kubebuilder:rbac:groups=analysis.sluice.dev,resources=analysistemplates;clusteranalysistemplates,verbs=get;list;watch

// Validator is the validating webhook for Rollouts of both versions.
type Validator struct {
	Client  client.Reader
	Decoder admission.Decoder
	Options Options
}

var _ admission.Handler = &Validator{}

// Handle validates a created or updated Rollout. A v1alpha1 object is
// validated as the v1beta1 object it is stored as, and the field paths are
// translated back so the user sees the fields they wrote.
func (v *Validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	cur, err := v.decode(req, false)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	var old *v1beta1.Rollout
	if req.Operation == admissionv1.Update {
		if old, err = v.decode(req, true); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		// Finalizer and label changes must never be blocked by rules
		// about the spec (for example while the Rollout is deleted).
		if cur.DeletionTimestamp != nil || equality.Semantic.DeepEqual(old.Spec, cur.Spec) {
			return admission.Allowed("")
		}
	}

	isV1beta1 := req.Kind.Version == v1beta1.GroupVersion.Version
	errs := ValidateSpec(cur, isV1beta1, v.Options)
	if old != nil {
		errs = append(errs, ValidateUpdate(old, cur)...)
	}
	if len(errs) == 0 {
		errs = append(errs, v.validateAgainstCluster(ctx, cur)...)
	}
	if !isV1beta1 {
		errs = toV1alpha1Paths(errs)
	}
	gk := schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	warnings := Warnings(cur)
	if !isV1beta1 {
		for i, w := range warnings {
			warnings[i] = v1alpha1Paths.Replace(w)
		}
	}
	if w := v.missingTrafficRouting(ctx, cur, isV1beta1); w != "" {
		warnings = append(warnings, w)
	}
	return analysisadmission.InvalidResponse(gk, req.Name, errs, warnings...)
}

// missingTrafficRouting warns of a trafficRoutingRef naming no
// TrafficRouting: it may be applied next, so it is no error, but a
// release waits for it.
func (v *Validator) missingTrafficRouting(ctx context.Context, r *v1beta1.Rollout, isV1beta1 bool) string {
	name := r.Spec.Strategy.TrafficRoutingName()
	if name == "" {
		return ""
	}
	err := v.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: name}, &v1alpha1.TrafficRouting{})
	if !apierrors.IsNotFound(err) {
		return ""
	}
	path := strategyPath(r).Child("trafficRoutingRef").String()
	if !isV1beta1 {
		path = "metadata.annotations[" + v1alpha1.TrafficRoutingAnnotation + "]"
	}
	return fmt.Sprintf("%s: TrafficRouting %s does not exist in namespace %s; a release waits for it", path, name, r.Namespace)
}

func (v *Validator) decode(req admission.Request, old bool) (*v1beta1.Rollout, error) {
	raw := req.Object
	if old {
		raw = req.OldObject
	}
	if req.Kind.Version == v1alpha1.GroupVersion.Version {
		in := &v1alpha1.Rollout{}
		if err := v.Decoder.DecodeRaw(raw, in); err != nil {
			return nil, err
		}
		out := &v1beta1.Rollout{}
		if err := in.ConvertTo(out); err != nil {
			return nil, err
		}
		return out, nil
	}
	out := &v1beta1.Rollout{}
	return out, v.Decoder.DecodeRaw(raw, out)
}

// validateAgainstCluster checks the rules that need other objects: one
// Rollout per workload, and the analysis templates the Rollout references.
func (v *Validator) validateAgainstCluster(ctx context.Context, r *v1beta1.Rollout) field.ErrorList {
	var errs field.ErrorList
	var others v1beta1.RolloutList
	if err := v.Client.List(ctx, &others, client.InNamespace(r.Namespace)); err != nil {
		return field.ErrorList{field.InternalError(field.NewPath("spec", "workloadRef"), err)}
	}
	for _, o := range others.Items {
		if o.Name != r.Name && o.Spec.WorkloadRef == r.Spec.WorkloadRef {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "workloadRef"),
				fmt.Sprintf("%s %s is already released by Rollout %q; a workload can have only one Rollout", r.Spec.WorkloadRef.Kind, r.Spec.WorkloadRef.Name, o.Name)))
		}
	}

	lookup := func(ref analysisv1alpha1.AnalysisTemplateRef) (*analysisv1alpha1.AnalysisTemplateSpec, error) {
		if ref.ClusterScope {
			t := &analysisv1alpha1.ClusterAnalysisTemplate{}
			err := v.Client.Get(ctx, client.ObjectKey{Name: ref.TemplateName}, t)
			return specOrNil(&t.Spec, err)
		}
		t := &analysisv1alpha1.AnalysisTemplate{}
		err := v.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: ref.TemplateName}, t)
		return specOrNil(&t.Spec, err)
	}
	strategy := field.NewPath("spec", "strategy")
	errs = append(errs, analysisadmission.ValidateRolloutAnalysis(r.Spec.Strategy.Analysis, lookup, strategy.Child("analysis"))...)
	for i, s := range r.Spec.Strategy.Steps() {
		errs = append(errs, analysisadmission.ValidateRolloutAnalysis(s.Analysis, lookup, strategyPath(r).Child("steps").Index(i).Child("analysis"))...)
	}
	return errs
}

func specOrNil(spec *analysisv1alpha1.AnalysisTemplateSpec, err error) (*analysisv1alpha1.AnalysisTemplateSpec, error) {
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return spec, nil
}

// v1alpha1Paths maps v1beta1 field paths to the v1alpha1 fields they come from.
var v1alpha1Paths = strings.NewReplacer(
	"spec.workloadRef", "spec.objectRef.workloadRef",
	"].traffic", "].weight",
	"spec.strategy.canary.enableExtraWorkloadForCanary", "metadata.annotations[rollouts.kruise.io/rolling-style]",
	"spec.strategy.canary.trafficRoutingRef", "metadata.annotations[rollouts.kruise.io/trafficrouting]",
)

func toV1alpha1Paths(errs field.ErrorList) field.ErrorList {
	for _, e := range errs {
		e.Field = v1alpha1Paths.Replace(e.Field)
	}
	return errs
}
