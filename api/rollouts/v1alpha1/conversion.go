package v1alpha1

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/conversion"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// LossAnnotation keeps, on a v1alpha1 object, the v1beta1 fields that
// v1alpha1 cannot express (blue-green, path and query matches), so that a
// v1alpha1 client reading and writing back an object does not erase them.
// Kruise Rollout drops them; we keep them.
const LossAnnotation = "conversion.sluice.dev/v1beta1-only"

// v1beta1Only is what LossAnnotation holds.
type v1beta1Only struct {
	BlueGreen       *v1beta1.BlueGreenStrategy `json:"blueGreen,omitempty"`
	BlueGreenStatus *v1beta1.BlueGreenStatus   `json:"blueGreenStatus,omitempty"`
	// StepMatches are the full matches of steps that use path or queryParams,
	// by step index.
	StepMatches map[int][]v1beta1.HttpRouteMatch `json:"stepMatches,omitempty"`
}

var _ conversion.Convertible = &Rollout{}

// ConvertTo converts this v1alpha1 Rollout to the v1beta1 hub:
//   - objectRef.workloadRef becomes workloadRef;
//   - weight N becomes traffic "N%", and replicas "N%" when replicas is unset;
//   - the rolling-style annotation becomes enableExtraWorkloadForCanary
//     (anything but "partition" means an extra canary workload, as in Kruise);
//   - the trafficrouting annotation becomes trafficRoutingRef.
func (src *Rollout) ConvertTo(hubRaw conversion.Hub) error {
	dst, ok := hubRaw.(*v1beta1.Rollout)
	if !ok {
		return fmt.Errorf("unexpected hub type %T", hubRaw)
	}
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	only, err := takeLossAnnotation(dst.Annotations)
	if err != nil {
		return err
	}

	if ref := src.Spec.ObjectRef.WorkloadRef; ref != nil {
		dst.Spec.WorkloadRef = v1beta1.ObjectRef{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name}
	}
	dst.Spec.Disabled = src.Spec.Disabled
	dst.Spec.Strategy = v1beta1.RolloutStrategy{
		Paused:                  src.Spec.Strategy.Paused,
		Analysis:                src.Spec.Strategy.Analysis.DeepCopy(),
		ProgressDeadlineSeconds: copyInt32(src.Spec.Strategy.ProgressDeadlineSeconds),
	}
	if c := src.Spec.Strategy.Canary; c != nil {
		dst.Spec.Strategy.Canary = &v1beta1.CanaryStrategy{
			Steps:                        stepsUp(c.Steps, only.StepMatches),
			TrafficRoutings:              routingsUp(c.TrafficRoutings),
			FailureThreshold:             copyIntOrString(c.FailureThreshold),
			PatchPodTemplateMetadata:     c.PatchPodTemplateMetadata.DeepCopy(),
			EnableExtraWorkloadForCanary: !strings.EqualFold(src.Annotations[RollingStyleAnnotation], "partition"),
			TrafficRoutingRef:            src.Annotations[TrafficRoutingAnnotation],
			DisableGenerateCanaryService: c.DisableGenerateCanaryService,
		}
	} else if only.BlueGreen != nil {
		dst.Spec.Strategy.BlueGreen = only.BlueGreen
	}

	dst.Status = v1beta1.RolloutStatus{
		ObservedGeneration: src.Status.ObservedGeneration,
		Conditions:         copyConditions(src.Status.Conditions),
		Phase:              src.Status.Phase,
		Message:            src.Status.Message,
		Analysis:           src.Status.Analysis.DeepCopy(),
		Release:            src.Status.Release.DeepCopy(),
		LastRelease:        src.Status.LastRelease.DeepCopy(),
		BlueGreenStatus:    only.BlueGreenStatus,
	}
	if s := src.Status.CanaryStatus; s != nil {
		dst.Status.CanaryStatus = &v1beta1.CanaryStatus{
			CommonStatus: v1beta1.CommonStatus{
				ObservedWorkloadGeneration: s.ObservedWorkloadGeneration,
				ObservedRolloutID:          s.ObservedRolloutID,
				RolloutHash:                s.RolloutHash,
				StableRevision:             s.StableRevision,
				PodTemplateHash:            s.PodTemplateHash,
				CurrentStepIndex:           s.CurrentStepIndex,
				NextStepIndex:              s.NextStepIndex,
				FinalisingStep:             s.FinalisingStep,
				CurrentStepState:           s.CurrentStepState,
				Message:                    s.Message,
				LastUpdateTime:             s.LastUpdateTime.DeepCopy(),
			},
			CanaryRevision:      s.CanaryRevision,
			CanaryReplicas:      s.CanaryReplicas,
			CanaryReadyReplicas: s.CanaryReadyReplicas,
		}
		dst.Status.CurrentStepIndex = s.CurrentStepIndex
		dst.Status.CurrentStepState = s.CurrentStepState
	} else if s := only.BlueGreenStatus; s != nil {
		dst.Status.CurrentStepIndex = s.CurrentStepIndex
		dst.Status.CurrentStepState = s.CurrentStepState
	}
	return nil
}

// ConvertFrom converts the v1beta1 hub to this v1alpha1 Rollout, the inverse
// of ConvertTo. What v1alpha1 cannot express goes into LossAnnotation.
func (dst *Rollout) ConvertFrom(hubRaw conversion.Hub) error {
	src, ok := hubRaw.(*v1beta1.Rollout)
	if !ok {
		return fmt.Errorf("unexpected hub type %T", hubRaw)
	}
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	only := v1beta1Only{
		BlueGreen:       src.Spec.Strategy.BlueGreen.DeepCopy(),
		BlueGreenStatus: src.Status.BlueGreenStatus.DeepCopy(),
	}

	ref := src.Spec.WorkloadRef
	dst.Spec = RolloutSpec{
		ObjectRef: ObjectRef{WorkloadRef: &WorkloadRef{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name}},
		Disabled:  src.Spec.Disabled,
		Strategy: RolloutStrategy{
			Paused:                  src.Spec.Strategy.Paused,
			Analysis:                src.Spec.Strategy.Analysis.DeepCopy(),
			ProgressDeadlineSeconds: copyInt32(src.Spec.Strategy.ProgressDeadlineSeconds),
		},
	}
	if c := src.Spec.Strategy.Canary; c != nil {
		var steps []CanaryStep
		steps, only.StepMatches = stepsDown(c.Steps)
		dst.Spec.Strategy.Canary = &CanaryStrategy{
			Steps:                        steps,
			TrafficRoutings:              routingsDown(c.TrafficRoutings),
			FailureThreshold:             copyIntOrString(c.FailureThreshold),
			PatchPodTemplateMetadata:     c.PatchPodTemplateMetadata.DeepCopy(),
			DisableGenerateCanaryService: c.DisableGenerateCanaryService,
		}
		// Without the annotation v1alpha1 means an extra canary workload;
		// write it only where that reading would be wrong.
		if impliedExtra := !strings.EqualFold(dst.Annotations[RollingStyleAnnotation], "partition"); impliedExtra != c.EnableExtraWorkloadForCanary {
			style := "partition"
			if c.EnableExtraWorkloadForCanary {
				style = "canary"
			}
			setAnnotation(&dst.ObjectMeta.Annotations, RollingStyleAnnotation, style)
		}
		if c.TrafficRoutingRef != "" {
			setAnnotation(&dst.ObjectMeta.Annotations, TrafficRoutingAnnotation, c.TrafficRoutingRef)
		}
	}

	dst.Status = RolloutStatus{
		ObservedGeneration: src.Status.ObservedGeneration,
		Conditions:         copyConditions(src.Status.Conditions),
		Phase:              src.Status.Phase,
		Message:            src.Status.Message,
		Analysis:           src.Status.Analysis.DeepCopy(),
		Release:            src.Status.Release.DeepCopy(),
		LastRelease:        src.Status.LastRelease.DeepCopy(),
	}
	if s := src.Status.CanaryStatus; s != nil {
		dst.Status.CanaryStatus = &CanaryStatus{
			ObservedWorkloadGeneration: s.ObservedWorkloadGeneration,
			ObservedRolloutID:          s.ObservedRolloutID,
			RolloutHash:                s.RolloutHash,
			StableRevision:             s.StableRevision,
			CanaryRevision:             s.CanaryRevision,
			PodTemplateHash:            s.PodTemplateHash,
			CanaryReplicas:             s.CanaryReplicas,
			CanaryReadyReplicas:        s.CanaryReadyReplicas,
			NextStepIndex:              s.NextStepIndex,
			CurrentStepIndex:           s.CurrentStepIndex,
			CurrentStepState:           s.CurrentStepState,
			Message:                    s.Message,
			LastUpdateTime:             s.LastUpdateTime.DeepCopy(),
			FinalisingStep:             s.FinalisingStep,
		}
	}
	return putLossAnnotation(&dst.ObjectMeta.Annotations, only)
}

func stepsUp(in []CanaryStep, kept map[int][]v1beta1.HttpRouteMatch) []v1beta1.CanaryStep {
	if in == nil {
		return nil
	}
	out := make([]v1beta1.CanaryStep, len(in))
	for i, s := range in {
		o := v1beta1.CanaryStep{
			Replicas: copyIntOrString(s.Replicas),
			Pause:    *s.Pause.DeepCopy(),
			Analysis: s.Analysis.DeepCopy(),
		}
		o.RequestHeaderModifier = s.RequestHeaderModifier.DeepCopy()
		if s.Weight != nil {
			traffic := fmt.Sprintf("%d%%", *s.Weight)
			o.Traffic = &traffic
			if o.Replicas == nil {
				r := intstr.FromString(traffic)
				o.Replicas = &r
			}
		}
		for _, m := range s.Matches {
			o.Matches = append(o.Matches, v1beta1.HttpRouteMatch{Headers: copyHeaders(m.Headers)})
		}
		// Restore path and query matches kept by ConvertFrom, unless a
		// v1alpha1 client changed this step's header matches meanwhile.
		if full, ok := kept[i]; ok && sameHeaders(full, o.Matches) {
			o.Matches = full
		}
		out[i] = o
	}
	return out
}

func stepsDown(in []v1beta1.CanaryStep) ([]CanaryStep, map[int][]v1beta1.HttpRouteMatch) {
	if in == nil {
		return nil, nil
	}
	var kept map[int][]v1beta1.HttpRouteMatch
	out := make([]CanaryStep, len(in))
	for i, s := range in {
		o := CanaryStep{
			Replicas: copyIntOrString(s.Replicas),
			Pause:    *s.Pause.DeepCopy(),
			Analysis: s.Analysis.DeepCopy(),
		}
		o.RequestHeaderModifier = s.RequestHeaderModifier.DeepCopy()
		if s.Traffic != nil {
			if w, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(*s.Traffic), "%")); err == nil {
				w32 := int32(w)
				o.Weight = &w32
			}
		}
		lossy := false
		for _, m := range s.Matches {
			o.Matches = append(o.Matches, HttpRouteMatch{Headers: copyHeaders(m.Headers)})
			lossy = lossy || m.Path != nil || len(m.QueryParams) > 0
		}
		if lossy {
			if kept == nil {
				kept = map[int][]v1beta1.HttpRouteMatch{}
			}
			for _, m := range s.Matches {
				kept[i] = append(kept[i], *m.DeepCopy())
			}
		}
		out[i] = o
	}
	return out, kept
}

func sameHeaders(full, headersOnly []v1beta1.HttpRouteMatch) bool {
	if len(full) != len(headersOnly) {
		return false
	}
	for i := range full {
		if !equality.Semantic.DeepEqual(full[i].Headers, headersOnly[i].Headers) {
			return false
		}
	}
	return true
}

func routingsUp(in []TrafficRoutingRef) []v1beta1.TrafficRoutingRef {
	if in == nil {
		return nil
	}
	out := make([]v1beta1.TrafficRoutingRef, len(in))
	for i, r := range in {
		out[i] = v1beta1.TrafficRoutingRef{
			Service:            r.Service,
			GracePeriodSeconds: r.GracePeriodSeconds,
			Ingress:            r.Ingress.DeepCopy(),
			Gateway:            r.Gateway.DeepCopy(),
			CustomNetworkRefs:  append([]v1beta1.ObjectRef(nil), r.CustomNetworkRefs...),
		}
	}
	return out
}

func routingsDown(in []v1beta1.TrafficRoutingRef) []TrafficRoutingRef {
	if in == nil {
		return nil
	}
	out := make([]TrafficRoutingRef, len(in))
	for i, r := range in {
		out[i] = TrafficRoutingRef{
			Service:            r.Service,
			GracePeriodSeconds: r.GracePeriodSeconds,
			Ingress:            r.Ingress.DeepCopy(),
			Gateway:            r.Gateway.DeepCopy(),
			CustomNetworkRefs:  append([]v1beta1.ObjectRef(nil), r.CustomNetworkRefs...),
		}
	}
	return out
}

func takeLossAnnotation(annotations map[string]string) (v1beta1Only, error) {
	var only v1beta1Only
	raw, ok := annotations[LossAnnotation]
	if !ok {
		return only, nil
	}
	delete(annotations, LossAnnotation)
	if err := json.Unmarshal([]byte(raw), &only); err != nil {
		return only, fmt.Errorf("metadata.annotations[%s]: %w", LossAnnotation, err)
	}
	return only, nil
}

func putLossAnnotation(annotations *map[string]string, only v1beta1Only) error {
	if only.BlueGreen == nil && only.BlueGreenStatus == nil && len(only.StepMatches) == 0 {
		return nil
	}
	raw, err := json.Marshal(only)
	if err != nil {
		return err
	}
	setAnnotation(annotations, LossAnnotation, string(raw))
	return nil
}

func setAnnotation(annotations *map[string]string, key, value string) {
	if *annotations == nil {
		*annotations = map[string]string{}
	}
	(*annotations)[key] = value
}
