package v1alpha1

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/conversion"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// LossAnnotation keeps, on a v1alpha1 object, what v1beta1 says and
// v1alpha1 cannot (blue-green, path and query matches, traffic not written
// "N%", ...; see v1beta1Only), so that a v1alpha1 client reading and
// writing back an object does not erase it. Kruise Rollout drops them; we
// keep them.
const LossAnnotation = "conversion.sluice.dev/v1beta1-only"

// AlphaAnnotation keeps, on a v1beta1 object, what a v1alpha1 client said
// that v1beta1 cannot: the deprecated spec.rolloutID, a missing
// workloadRef, and the steps that had no replicas (Kruise's rule fills
// them from the weight). A v1alpha1 client reading back an object it
// wrote sees it as it wrote it.
const AlphaAnnotation = "conversion.sluice.dev/v1alpha1-only"

// v1alpha1Only is what AlphaAnnotation holds.
type v1alpha1Only struct {
	RolloutID     string `json:"rolloutID,omitempty"`
	NoWorkloadRef bool   `json:"noWorkloadRef,omitempty"`
	// StepsWithoutReplicas are the indexes of the steps whose replicas
	// were filled from their weight.
	StepsWithoutReplicas []int `json:"stepsWithoutReplicas,omitempty"`
	// Foreign is a value of AlphaAnnotation that the v1alpha1 object
	// itself had (the name is Sluice's, the object a user's).
	Foreign *string `json:"foreign,omitempty"`
}

// v1beta1Only is what LossAnnotation holds.
type v1beta1Only struct {
	BlueGreen       *v1beta1.BlueGreenStrategy `json:"blueGreen,omitempty"`
	BlueGreenStatus *v1beta1.BlueGreenStatus   `json:"blueGreenStatus,omitempty"`
	// StepMatches are the full matches of steps that use path or queryParams,
	// by step index.
	StepMatches map[int][]v1beta1.HttpRouteMatch `json:"stepMatches,omitempty"`
	// StepTraffic are the traffic values a weight does not write back as
	// they were (" 50%", "050%"), by step index.
	StepTraffic map[int]string `json:"stepTraffic,omitempty"`
	// StepsWithoutReplicas are the indexes of steps with traffic and no
	// replicas, which ConvertTo would otherwise fill from the weight.
	StepsWithoutReplicas []int `json:"stepsWithoutReplicas,omitempty"`
	// CurrentStepIndex and CurrentStepState are the top-level step fields
	// when they are not the canary or blue-green status's.
	CurrentStepIndex *int32                   `json:"currentStepIndex,omitempty"`
	CurrentStepState *v1beta1.CanaryStepState `json:"currentStepState,omitempty"`
	// Annotations are the v1beta1 object's own values of the annotations
	// ConvertFrom changed to carry the rolling style and the traffic
	// routing ref (nil: it had none), and the values it wrote (nil: it
	// removed the annotation), so that ConvertTo puts the object's own
	// back when a v1alpha1 client left them alone.
	Annotations map[string]changedAnnotation `json:"annotations,omitempty"`
	// Foreign is a value of LossAnnotation that the v1beta1 object itself
	// had.
	Foreign *string `json:"foreign,omitempty"`
}

// changedAnnotation is an annotation ConvertFrom changed.
type changedAnnotation struct {
	Was     *string `json:"was,omitempty"`
	Written *string `json:"written,omitempty"`
}

var _ conversion.Convertible = &Rollout{}

// ConvertTo converts this v1alpha1 Rollout to the v1beta1 hub:
//   - objectRef.workloadRef becomes workloadRef;
//   - weight N becomes traffic "N%", and replicas "N%" when replicas is unset;
//   - the rolling-style annotation becomes enableExtraWorkloadForCanary
//     (anything but "partition" means an extra canary workload, as in Kruise);
//   - the trafficrouting annotation becomes trafficRoutingRef;
//
// and what LossAnnotation kept comes back, while what v1beta1 cannot say
// goes into AlphaAnnotation.
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
	alpha := v1alpha1Only{RolloutID: src.Spec.DeprecatedRolloutID}
	if foreign, ok := dst.Annotations[AlphaAnnotation]; ok {
		alpha.Foreign = &foreign
	}

	if ref := src.Spec.ObjectRef.WorkloadRef; ref != nil {
		dst.Spec.WorkloadRef = v1beta1.ObjectRef{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name}
	} else {
		alpha.NoWorkloadRef = true
	}
	dst.Spec.Disabled = src.Spec.Disabled
	dst.Spec.Strategy = v1beta1.RolloutStrategy{
		Paused:                  src.Spec.Strategy.Paused,
		Analysis:                src.Spec.Strategy.Analysis.DeepCopy(),
		ProgressDeadlineSeconds: copyInt32(src.Spec.Strategy.ProgressDeadlineSeconds),
	}
	if c := src.Spec.Strategy.Canary; c != nil {
		dst.Spec.Strategy.Canary = &v1beta1.CanaryStrategy{
			Steps:                        stepsUp(c.Steps, only, &alpha),
			TrafficRoutings:              routingsUp(c.TrafficRoutings),
			FailureThreshold:             copyIntOrString(c.FailureThreshold),
			PatchPodTemplateMetadata:     c.PatchPodTemplateMetadata.DeepCopy(),
			EnableExtraWorkloadForCanary: !strings.EqualFold(src.Annotations[RollingStyleAnnotation], "partition"),
			TrafficRoutingRef:            src.Annotations[TrafficRoutingAnnotation],
			DisableGenerateCanaryService: c.DisableGenerateCanaryService,
		}
	}
	dst.Spec.Strategy.BlueGreen = only.BlueGreen
	restoreAnnotations(&dst.Annotations, only.Annotations)
	if only.Foreign != nil {
		setAnnotation(&dst.Annotations, LossAnnotation, *only.Foreign)
	}
	if err := putAnnotation(&dst.Annotations, AlphaAnnotation, alpha, alpha.RolloutID == "" && !alpha.NoWorkloadRef &&
		len(alpha.StepsWithoutReplicas) == 0 && alpha.Foreign == nil); err != nil {
		return err
	}
	if len(dst.Annotations) == 0 {
		dst.Annotations = nil // what JSON makes of an empty map
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
	if only.CurrentStepIndex != nil {
		dst.Status.CurrentStepIndex = *only.CurrentStepIndex
	}
	if only.CurrentStepState != nil {
		dst.Status.CurrentStepState = *only.CurrentStepState
	}
	return nil
}

// ConvertFrom converts the v1beta1 hub to this v1alpha1 Rollout, the inverse
// of ConvertTo. What v1alpha1 cannot express goes into LossAnnotation, and
// what AlphaAnnotation kept comes back.
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
	if foreign, ok := dst.Annotations[LossAnnotation]; ok {
		only.Foreign = &foreign
	}
	var alpha v1alpha1Only
	if err := takeAnnotation(dst.Annotations, AlphaAnnotation, &alpha); err != nil {
		return err
	}
	if alpha.Foreign != nil {
		setAnnotation(&dst.ObjectMeta.Annotations, AlphaAnnotation, *alpha.Foreign)
	}

	ref := src.Spec.WorkloadRef
	dst.Spec = RolloutSpec{
		ObjectRef:           ObjectRef{WorkloadRef: &WorkloadRef{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name}},
		DeprecatedRolloutID: alpha.RolloutID,
		Disabled:            src.Spec.Disabled,
		Strategy: RolloutStrategy{
			Paused:                  src.Spec.Strategy.Paused,
			Analysis:                src.Spec.Strategy.Analysis.DeepCopy(),
			ProgressDeadlineSeconds: copyInt32(src.Spec.Strategy.ProgressDeadlineSeconds),
		},
	}
	if alpha.NoWorkloadRef && ref == (v1beta1.ObjectRef{}) {
		dst.Spec.ObjectRef.WorkloadRef = nil
	}
	if c := src.Spec.Strategy.Canary; c != nil {
		steps := stepsDown(c.Steps, &only, alpha.StepsWithoutReplicas)
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
			changeAnnotation(&dst.ObjectMeta.Annotations, &only, RollingStyleAnnotation, &style)
		}
		// The annotation is the traffic routing ref: an empty ref is none.
		if ref, ok := dst.Annotations[TrafficRoutingAnnotation]; ref != c.TrafficRoutingRef && (ok || c.TrafficRoutingRef != "") {
			var want *string
			if c.TrafficRoutingRef != "" {
				want = &c.TrafficRoutingRef
			}
			changeAnnotation(&dst.ObjectMeta.Annotations, &only, TrafficRoutingAnnotation, want)
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
	// The top-level step fields are the canary or blue-green status's,
	// as ConvertTo sets them; others are kept.
	var index int32
	var state v1beta1.CanaryStepState
	if s := src.Status.CanaryStatus; s != nil {
		index, state = s.CurrentStepIndex, s.CurrentStepState
	} else if s := src.Status.BlueGreenStatus; s != nil {
		index, state = s.CurrentStepIndex, s.CurrentStepState
	}
	if src.Status.CurrentStepIndex != index {
		only.CurrentStepIndex = &src.Status.CurrentStepIndex
	}
	if src.Status.CurrentStepState != state {
		only.CurrentStepState = &src.Status.CurrentStepState
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
	if err := putLossAnnotation(&dst.ObjectMeta.Annotations, only); err != nil {
		return err
	}
	if len(dst.Annotations) == 0 {
		dst.Annotations = nil // what JSON makes of an empty map
	}
	return nil
}

func stepsUp(in []CanaryStep, only v1beta1Only, alpha *v1alpha1Only) []v1beta1.CanaryStep {
	if in == nil {
		return nil
	}
	kept, traffic := only.StepMatches, only.StepTraffic
	out := make([]v1beta1.CanaryStep, len(in))
	for i, s := range in {
		o := v1beta1.CanaryStep{
			Replicas: copyIntOrString(s.Replicas),
			Pause:    *s.Pause.DeepCopy(),
			Analysis: s.Analysis.DeepCopy(),
		}
		o.RequestHeaderModifier = s.RequestHeaderModifier.DeepCopy()
		if s.Weight != nil {
			t := fmt.Sprintf("%d%%", *s.Weight)
			o.Traffic = &t
			if o.Replicas == nil && !slices.Contains(only.StepsWithoutReplicas, i) {
				r := intstr.FromString(t)
				o.Replicas = &r
				alpha.StepsWithoutReplicas = append(alpha.StepsWithoutReplicas, i)
			}
		}
		// Restore a traffic value kept by ConvertFrom, unless a v1alpha1
		// client changed this step's weight meanwhile.
		if t, ok := traffic[i]; ok {
			if w, ok := weightOf(t); (ok && s.Weight != nil && *s.Weight == w) || (!ok && s.Weight == nil) {
				o.Traffic = &t
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

// stepsDown converts steps down, keeping in only what v1alpha1 cannot
// say; withoutReplicas are the steps a v1alpha1 client wrote without
// replicas (from AlphaAnnotation).
func stepsDown(in []v1beta1.CanaryStep, only *v1beta1Only, withoutReplicas []int) []CanaryStep {
	if in == nil {
		return nil
	}
	var kept map[int][]v1beta1.HttpRouteMatch
	var traffic map[int]string
	out := make([]CanaryStep, len(in))
	for i, s := range in {
		o := CanaryStep{
			Replicas: copyIntOrString(s.Replicas),
			Pause:    *s.Pause.DeepCopy(),
			Analysis: s.Analysis.DeepCopy(),
		}
		switch {
		case s.Replicas == nil && s.Traffic != nil:
			only.StepsWithoutReplicas = append(only.StepsWithoutReplicas, i)
		case s.Replicas != nil && s.Traffic != nil && slices.Contains(withoutReplicas, i) &&
			*s.Replicas == intstr.FromString(*s.Traffic):
			o.Replicas = nil // filled from the weight on the way up: unset again
		}
		o.RequestHeaderModifier = s.RequestHeaderModifier.DeepCopy()
		if s.Traffic != nil {
			w, ok := weightOf(*s.Traffic)
			if ok {
				o.Weight = &w
			}
			if !ok || fmt.Sprintf("%d%%", w) != *s.Traffic {
				if traffic == nil {
					traffic = map[int]string{}
				}
				traffic[i] = *s.Traffic
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
	only.StepMatches, only.StepTraffic = kept, traffic
	return out
}

// weightOf reads a traffic value ("20%", " 20% ") as a v1alpha1 weight.
func weightOf(traffic string) (int32, bool) {
	w, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(traffic), "%"), 10, 32)
	return int32(w), err == nil
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
	return only, takeAnnotation(annotations, LossAnnotation, &only)
}

// takeAnnotation reads the JSON annotation key into v and removes it.
func takeAnnotation(annotations map[string]string, key string, v any) error {
	raw, ok := annotations[key]
	if !ok {
		return nil
	}
	delete(annotations, key)
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		return fmt.Errorf("metadata.annotations[%s]: %w", key, err)
	}
	return nil
}

func putLossAnnotation(annotations *map[string]string, only v1beta1Only) error {
	return putAnnotation(annotations, LossAnnotation, only, only.BlueGreen == nil && only.BlueGreenStatus == nil &&
		len(only.StepMatches) == 0 && len(only.StepTraffic) == 0 && len(only.StepsWithoutReplicas) == 0 &&
		only.CurrentStepIndex == nil && only.CurrentStepState == nil && len(only.Annotations) == 0 && only.Foreign == nil)
}

// putAnnotation writes v as the JSON annotation key, unless it is empty.
func putAnnotation(annotations *map[string]string, key string, v any, empty bool) error {
	if empty {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	setAnnotation(annotations, key, string(raw))
	return nil
}

// changeAnnotation sets (or, with a nil value, removes) an annotation
// ConvertFrom needs, remembering in only what the object had.
func changeAnnotation(annotations *map[string]string, only *v1beta1Only, key string, value *string) {
	c := changedAnnotation{Written: value}
	if was, ok := (*annotations)[key]; ok {
		c.Was = &was
	}
	if only.Annotations == nil {
		only.Annotations = map[string]changedAnnotation{}
	}
	only.Annotations[key] = c
	if value == nil {
		delete(*annotations, key)
		return
	}
	setAnnotation(annotations, key, *value)
}

// restoreAnnotations puts back the annotations ConvertFrom changed, where
// they still hold what it wrote.
func restoreAnnotations(annotations *map[string]string, changed map[string]changedAnnotation) {
	for key, c := range changed {
		now, ok := (*annotations)[key]
		if (c.Written == nil && ok) || (c.Written != nil && (!ok || now != *c.Written)) {
			continue // a v1alpha1 client changed it: its value stands
		}
		if c.Was == nil {
			delete(*annotations, key)
		} else {
			setAnnotation(annotations, key, *c.Was)
		}
	}
}

func setAnnotation(annotations *map[string]string, key, value string) {
	if *annotations == nil {
		*annotations = map[string]string{}
	}
	(*annotations)[key] = value
}
