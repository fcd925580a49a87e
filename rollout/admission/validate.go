// Package admission validates Rollouts at admission: every rule Kruise
// Rollout's webhook enforces, plus Sluice's analysis references. The rules
// that need no cluster state are pure functions of the object (validate.go);
// the ones that look at other objects live in handler.go.
package admission

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic"
)

// Options are the knobs of validation.
type Options struct {
	// PartitionPercentLimit is the largest percentage of replicas a
	// partition-style step may have when it also routes traffic (Kruise's
	// --partition-percent-limit, default 50). It applies to v1beta1 objects
	// only, as in Kruise.
	PartitionPercentLimit int
}

// DefaultOptions are Kruise Rollout's defaults.
var DefaultOptions = Options{PartitionPercentLimit: 50}

// Style is how a release replaces pods.
type Style string

// The rolling styles.
const (
	StylePartition Style = "Partition"
	StyleCanary    Style = "Canary"
	StyleBlueGreen Style = "BlueGreen"
)

// RollingStyle returns the style a Rollout releases with. Only a
// Deployment can use an extra canary workload; every other kind is
// partitioned whatever the flag says.
func RollingStyle(r *v1beta1.Rollout) Style {
	s := r.Spec.Strategy
	switch {
	case s.BlueGreen != nil:
		return StyleBlueGreen
	case s.Canary != nil && s.Canary.EnableExtraWorkloadForCanary && isDeployment(r.Spec.WorkloadRef):
		return StyleCanary
	default:
		return StylePartition
	}
}

// supportedWorkloads are the kinds Sluice can release, by group and kind.
var supportedWorkloads = map[schema.GroupKind]bool{
	{Group: "apps", Kind: "Deployment"}:            true,
	{Group: "apps", Kind: "StatefulSet"}:           true,
	{Group: "apps", Kind: "DaemonSet"}:             true,
	{Group: "apps.kruise.io", Kind: "CloneSet"}:    true,
	{Group: "apps.kruise.io", Kind: "StatefulSet"}: true,
	{Group: "apps.kruise.io", Kind: "DaemonSet"}:   true,
}

var blueGreenWorkloads = map[schema.GroupKind]bool{
	{Group: "apps", Kind: "Deployment"}:         true,
	{Group: "apps.kruise.io", Kind: "CloneSet"}: true,
}

func isDeployment(ref v1beta1.ObjectRef) bool {
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	return gv.Group == "apps" && ref.Kind == "Deployment"
}

// ValidateSpec checks a Rollout on its own. fromV1beta1 applies the rules
// Kruise enforces on v1beta1 objects only.
func ValidateSpec(r *v1beta1.Rollout, fromV1beta1 bool, o Options) field.ErrorList {
	spec := field.NewPath("spec")
	errs := validateWorkloadRef(r, spec.Child("workloadRef"))

	strategy := spec.Child("strategy")
	s := r.Spec.Strategy
	switch {
	case s.Canary == nil && s.BlueGreen == nil:
		return append(errs, field.Required(strategy, "set strategy.canary (or, in v1beta1, strategy.blueGreen)"))
	case s.Canary != nil && s.BlueGreen != nil:
		return append(errs, field.Forbidden(strategy.Child("blueGreen"), "canary and blueGreen cannot both be set: keep one"))
	}

	style := RollingStyle(r)
	var steps []v1beta1.CanaryStep
	var routings []v1beta1.TrafficRoutingRef
	var path *field.Path
	if s.Canary != nil {
		path = strategy.Child("canary")
		steps, routings = s.Canary.Steps, s.Canary.TrafficRoutings
		if s.Canary.EnableExtraWorkloadForCanary && !isDeployment(r.Spec.WorkloadRef) {
			errs = append(errs, field.Invalid(path.Child("enableExtraWorkloadForCanary"), true,
				"an extra canary workload works only for a Deployment; remove it for "+r.Spec.WorkloadRef.Kind))
		}
		if s.Canary.PatchPodTemplateMetadata != nil && style != StyleCanary {
			errs = append(errs, field.Forbidden(path.Child("patchPodTemplateMetadata"),
				"applies only to an extra canary Deployment: set enableExtraWorkloadForCanary: true or remove it"))
		}
		errs = append(errs, validateIntOrPercent(s.Canary.FailureThreshold, path.Child("failureThreshold"))...)
	} else {
		path = strategy.Child("blueGreen")
		steps, routings = s.BlueGreen.Steps, s.BlueGreen.TrafficRoutings
		errs = append(errs, validateIntOrPercent(s.BlueGreen.FailureThreshold, path.Child("failureThreshold"))...)
	}
	errs = append(errs, validateSteps(steps, style, fromV1beta1, o, path.Child("steps"))...)
	errs = append(errs, ValidateTrafficRoutings(routings, path.Child("trafficRoutings"))...)
	return errs
}

func validateWorkloadRef(r *v1beta1.Rollout, path *field.Path) field.ErrorList {
	ref := r.Spec.WorkloadRef
	if ref.APIVersion == "" || ref.Kind == "" || ref.Name == "" {
		return field.ErrorList{field.Required(path, "apiVersion, kind and name of the workload are all required")}
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return field.ErrorList{field.Invalid(path.Child("apiVersion"), ref.APIVersion, err.Error())}
	}
	gk := schema.GroupKind{Group: gv.Group, Kind: ref.Kind}
	if !supportedWorkloads[gk] {
		return field.ErrorList{field.NotSupported(path.Child("kind"), ref.Kind,
			[]string{"apps/v1 Deployment", "apps/v1 StatefulSet", "apps/v1 DaemonSet", "apps.kruise.io CloneSet", "apps.kruise.io StatefulSet", "apps.kruise.io DaemonSet"})}
	}
	if r.Spec.Strategy.BlueGreen != nil && !blueGreenWorkloads[gk] {
		return field.ErrorList{field.Invalid(path.Child("kind"), ref.Kind, "blue-green releases a Deployment or a CloneSet only; use canary for this kind")}
	}
	return nil
}

func validateSteps(steps []v1beta1.CanaryStep, style Style, fromV1beta1 bool, o Options, path *field.Path) field.ErrorList {
	if len(steps) == 0 {
		return field.ErrorList{field.Required(path, "a release needs at least one step")}
	}
	var errs field.ErrorList
	for i := range steps {
		s := &steps[i]
		p := path.Index(i)
		if s.Replicas == nil {
			errs = append(errs, field.Required(p.Child("replicas"), `every step needs replicas: a number of pods or a percentage such as "20%"`))
			continue
		}
		n, err := intstr.GetScaledValueFromIntOrPercent(s.Replicas, 100, true)
		if err != nil || n <= 0 || (s.Replicas.Type == intstr.String && n > 100) {
			errs = append(errs, field.Invalid(p.Child("replicas"), s.Replicas.String(), `must be a positive number, or a percentage with "0%" < replicas <= "100%"`))
			continue
		}
		if s.Traffic != nil {
			errs = append(errs, validateTraffic(*s.Traffic, style, p.Child("traffic"))...)
		}
		if fromV1beta1 && style == StylePartition && (s.Traffic != nil || len(s.Matches) > 0) &&
			s.Replicas.Type == intstr.String && n > o.PartitionPercentLimit && n < 100 {
			errs = append(errs, field.Invalid(p.Child("replicas"), s.Replicas.String(),
				fmt.Sprintf("a partition-style step that routes traffic may have at most %d%% of the replicas (or 100%%); lower it or set enableExtraWorkloadForCanary: true", o.PartitionPercentLimit)))
		}
		if s.Pause.Duration != nil && *s.Pause.Duration < 0 {
			errs = append(errs, field.Invalid(p.Child("pause", "duration"), *s.Pause.Duration, "must be >= 0 seconds; omit it to wait for approval"))
		}
		for j, m := range s.Matches {
			if m.Path == nil && len(m.Headers) == 0 && len(m.QueryParams) == 0 {
				errs = append(errs, field.Required(p.Child("matches").Index(j), "a match needs a path, headers or queryParams"))
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	for i := 1; i < len(steps); i++ {
		prev, cur := steps[i-1].Replicas, steps[i].Replicas
		if prev.Type != cur.Type {
			continue // a number and a percentage cannot be compared without the workload's size
		}
		a, _ := intstr.GetScaledValueFromIntOrPercent(prev, 100, true)
		b, _ := intstr.GetScaledValueFromIntOrPercent(cur, 100, true)
		if b < a {
			errs = append(errs, field.Invalid(path.Index(i).Child("replicas"), cur.String(),
				fmt.Sprintf("replicas must not decrease from one step to the next (step %d has %s)", i, prev.String())))
		}
	}
	return errs
}

func validateTraffic(traffic string, style Style, path *field.Path) field.ErrorList {
	t := strings.TrimSpace(traffic)
	if !strings.HasSuffix(t, "%") {
		return field.ErrorList{field.Invalid(path, traffic, `must be a percentage such as "20%"`)}
	}
	v := intstr.FromString(t)
	w, err := intstr.GetScaledValueFromIntOrPercent(&v, 100, true)
	low := 0
	msg := `must be a percentage with "0%" < traffic <= "100%"`
	if style == StyleBlueGreen {
		low = -1
		msg = `must be a percentage with "0%" <= traffic <= "100%"`
	}
	if err != nil || w <= low || w > 100 {
		return field.ErrorList{field.Invalid(path, traffic, msg)}
	}
	return nil
}

func validateIntOrPercent(v *intstr.IntOrString, path *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, 100, true)
	if err != nil || n < 0 || (v.Type == intstr.String && n > 100) {
		return field.ErrorList{field.Invalid(path, v.String(), `must be a number >= 0 or a percentage between "0%" and "100%"`)}
	}
	return nil
}

// ValidateTrafficRoutings checks trafficRoutings entries (a Rollout's, or a
// TrafficRouting's objectRef): at most one, each with a Service and one of
// ingress, gateway or customNetworkRefs, named.
func ValidateTrafficRoutings(routings []v1beta1.TrafficRoutingRef, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(routings) > 1 {
		errs = append(errs, field.TooMany(path, len(routings), 1))
	}
	for i, r := range routings {
		p := path.Index(i)
		if r.Service == "" {
			errs = append(errs, field.Required(p.Child("service"), "name the Service that selects the workload's pods"))
		}
		if r.GracePeriodSeconds < 0 {
			errs = append(errs, field.Invalid(p.Child("gracePeriodSeconds"), r.GracePeriodSeconds, "must be >= 0"))
		}
		if r.Ingress == nil && r.Gateway == nil && len(r.CustomNetworkRefs) == 0 {
			errs = append(errs, field.Required(p, "set one of ingress, gateway or customNetworkRefs"))
		}
		if r.Ingress != nil && r.Ingress.Name == "" {
			errs = append(errs, field.Required(p.Child("ingress", "name"), "name the Ingress that routes to the Service"))
		}
		if r.Gateway != nil && (r.Gateway.HTTPRouteName == nil || *r.Gateway.HTTPRouteName == "") {
			errs = append(errs, field.Required(p.Child("gateway", "httpRouteName"), "name the HTTPRoute that routes to the Service"))
		}
		for j, c := range r.CustomNetworkRefs {
			if c.APIVersion == "" || c.Kind == "" || c.Name == "" {
				errs = append(errs, field.Required(p.Child("customNetworkRefs").Index(j), "apiVersion, kind and name are all required"))
			}
		}
	}
	return errs
}

// Warnings are accepted but probably not what the user meant.
func Warnings(r *v1beta1.Rollout) []string {
	var out []string
	if r.Spec.Strategy.RoutesSteps() {
		// What a routing cannot express stops the release at that step.
		// Kruise Rollout accepts such a Rollout, so Sluice does too, and
		// says so now rather than mid-release.
		steps := strategyPath(r).Child("steps")
		for _, ref := range r.Spec.Strategy.Routings() {
			for _, e := range traffic.ValidateSteps(ref, r.Spec.Strategy.Steps(), steps) {
				out = append(out, fmt.Sprintf("%s: %s; a release would stop at this step with an error", e.Field, e.Detail))
			}
		}
		return out
	}
	why := "the strategy has no trafficRoutings"
	if name := r.Spec.Strategy.TrafficRoutingName(); name != "" {
		why += " (the TrafficRouting " + name + " routes by its own strategy)"
	}
	for i, s := range r.Spec.Strategy.Steps() {
		if s.Traffic != nil || len(s.Matches) > 0 || s.RequestHeaderModifier != nil {
			out = append(out, fmt.Sprintf("%s: routes traffic but %s, so only the replicas apply",
				strategyPath(r).Child("steps").Index(i), why))
		}
	}
	return out
}

// ValidateUpdate checks what may not change while a release is running:
// the workload, the traffic routing (its own and the TrafficRouting it
// names), the rolling style and the number of steps.
func ValidateUpdate(old, cur *v1beta1.Rollout) field.ErrorList {
	switch old.Status.Phase {
	case v1beta1.RolloutPhaseProgressing, v1beta1.RolloutPhaseTerminating:
	default:
		return nil
	}
	const why = "cannot change while a release is in progress; wait for it to finish, or disable the Rollout first"
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if old.Spec.WorkloadRef != cur.Spec.WorkloadRef {
		errs = append(errs, field.Forbidden(spec.Child("workloadRef"), why))
	}
	if !equality.Semantic.DeepEqual(old.Spec.Strategy.Routings(), cur.Spec.Strategy.Routings()) {
		errs = append(errs, field.Forbidden(strategyPath(cur).Child("trafficRoutings"), why))
	}
	if old.Spec.Strategy.TrafficRoutingName() != cur.Spec.Strategy.TrafficRoutingName() {
		// The release holds the TrafficRouting it joined until it ends.
		errs = append(errs, field.Forbidden(strategyPath(cur).Child("trafficRoutingRef"), why))
	}
	if RollingStyle(old) != RollingStyle(cur) {
		errs = append(errs, field.Forbidden(strategyPath(cur).Child("enableExtraWorkloadForCanary"), "the rolling style "+why))
	}
	if len(old.Spec.Strategy.Steps()) != len(cur.Spec.Strategy.Steps()) {
		errs = append(errs, field.Forbidden(strategyPath(cur).Child("steps"), "the number of steps "+why))
	}
	return errs
}

func strategyPath(r *v1beta1.Rollout) *field.Path {
	if r.Spec.Strategy.BlueGreen != nil {
		return field.NewPath("spec", "strategy", "blueGreen")
	}
	return field.NewPath("spec", "strategy", "canary")
}
