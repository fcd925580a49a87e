package invariants

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// Views are the few facts the invariants read from each object, decoded
// once per event. Keeping only these bounds the memory per object and
// makes explicit what the checker looks at.

// meta is what every view keeps of an object's metadata.
type meta struct {
	Name        string
	UID         types.UID
	RV          uint64
	Generation  int64
	Labels      map[string]string
	Annotations map[string]string
	// Controller is the UID of the controlling owner, if any.
	Controller types.UID
	Deleting   bool
	// Written are the label ("l:" + key) and annotation ("a:" + key) keys
	// a concurrent writer owns (workloads, Services and Ingresses only;
	// see ConcurrentWriter).
	Written map[string]bool
}

func metaOf(u *unstructured.Unstructured) (meta, error) {
	rv, err := parseRV(u.GetResourceVersion())
	if err != nil {
		return meta{}, err
	}
	m := meta{
		Name: u.GetName(), UID: u.GetUID(), RV: rv, Generation: u.GetGeneration(),
		Labels: u.GetLabels(), Annotations: u.GetAnnotations(),
		Deleting: u.GetDeletionTimestamp() != nil,
	}
	for _, o := range u.GetOwnerReferences() {
		if o.Controller != nil && *o.Controller {
			m.Controller = o.UID
		}
	}
	return m, nil
}

type podView struct {
	meta
	Ready bool
	// Gone is true for a pod that no longer counts: being deleted, or
	// Succeeded/Failed.
	Gone bool
}

type replicaSetView struct {
	meta
	TemplateKey string
	Replicas    int32
}

// workloadView is a Deployment, StatefulSet, CloneSet or Advanced StatefulSet.
type workloadView struct {
	meta
	Kind     Kind
	Replicas int32
	Selector labels.Selector // nil when invalid
	// Template is spec.template; TemplateKey identifies it, ignoring the
	// pod-template-hash label (as the Deployment controller compares).
	Template    map[string]any
	TemplateKey string
	// Spec is spec without template and replicas, kept for the
	// restoration check.
	Spec               map[string]any
	ObservedGeneration int64
	StatusReplicas     int32
	Updated            int32
	Ready              int32
	Available          int32
	CurrentRevision    string
	UpdateRevision     string
	// Surge and Unavailable are the rolling update's limits as written;
	// NoPromise is true for a workload that promises no availability (a
	// Deployment with the Recreate strategy of its own).
	Surge, Unavailable *intstr.IntOrString
	NoPromise          bool
}

type serviceView struct {
	meta
	Selector map[string]string
	Spec     map[string]any
}

type endpointSliceView struct {
	meta
	Service string
	Ready   int
}

type ingressView struct {
	meta
	Backends []string // Service names
	Hosts    []string // "" for a rule without host
	Spec     map[string]any
}

type routeBackend struct {
	Name   string
	Weight int32
}

type routeRule struct {
	Backends []routeBackend
}

type httpRouteView struct {
	meta
	Rules []routeRule
	Spec  map[string]any
}

type analysisRunView struct {
	meta
	Rollout string
	// Step is the 1-based step judged, 0 for background analysis.
	Step      int32
	Phase     analysisv1alpha1.AnalysisPhase
	Terminate bool
}

// statusView is what a user sees of a Rollout's status: the phase, and the
// step index, step state and next step index of the release in progress.
// Sluice writes much more; the checker does not read it.
type statusView struct {
	Phase string
	Step  int32
	State string
	// Next is nextStepIndex, which a user patches to jump
	// (kubectl-kruise rollout undo --fast).
	Next int32
}

type rolloutView struct {
	meta
	Spec   v1beta1.RolloutSpec
	Status statusView
}

// decode turns an object of kind k into its view.
func decode(k Kind, u *unstructured.Unstructured) (any, error) {
	m, err := metaOf(u)
	if err != nil {
		return nil, err
	}
	switch k {
	case Pod:
		return decodePod(m, u)
	case ReplicaSet:
		rs := &appsv1.ReplicaSet{}
		if err := fromUnstructured(u.Object, rs); err != nil {
			return nil, err
		}
		key, err := templateKey(u.Object, "spec", "template")
		if err != nil {
			return nil, err
		}
		return &replicaSetView{meta: m, TemplateKey: key, Replicas: replicasOf(rs.Spec.Replicas)}, nil
	case Deployment, StatefulSet, CloneSet, AdvancedStatefulSet:
		return decodeWorkload(k, m, u)
	case Service:
		s := &corev1.Service{}
		if err := fromUnstructured(u.Object, s); err != nil {
			return nil, err
		}
		spec, _, _ := unstructured.NestedMap(u.Object, "spec")
		for _, allocated := range []string{"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"} {
			delete(spec, allocated)
		}
		return &serviceView{meta: m, Selector: s.Spec.Selector, Spec: spec}, nil
	case EndpointSlice:
		es := &discoveryv1.EndpointSlice{}
		if err := fromUnstructured(u.Object, es); err != nil {
			return nil, err
		}
		v := &endpointSliceView{meta: m, Service: es.Labels[discoveryv1.LabelServiceName]}
		for _, ep := range es.Endpoints {
			// A nil ready condition means ready (the API's convention).
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				v.Ready++
			}
		}
		return v, nil
	case Ingress:
		return decodeIngress(m, u)
	case HTTPRoute:
		return decodeHTTPRoute(m, u)
	case AnalysisRun:
		ar := &analysisv1alpha1.AnalysisRun{}
		if err := fromUnstructured(u.Object, ar); err != nil {
			return nil, err
		}
		v := &analysisRunView{meta: m, Rollout: ar.Spec.Rollout, Step: ar.Spec.StepIndex, Phase: ar.Status.Phase, Terminate: ar.Spec.Terminate}
		// The run's step label (analysis/run.LabelStep) is authoritative:
		// "background" or the 1-based step.
		switch s := m.Labels["sluice.dev/step"]; s {
		case "":
		case "background":
			v.Step = 0
		default:
			if n, err := strconv.Atoi(s); err == nil {
				v.Step = int32(n)
			}
		}
		return v, nil
	case Rollout:
		return decodeRollout(m, u)
	}
	return nil, fmt.Errorf("no view for kind %s", k)
}

func decodePod(m meta, u *unstructured.Unstructured) (*podView, error) {
	p := &corev1.Pod{}
	if err := fromUnstructured(u.Object, p); err != nil {
		return nil, err
	}
	v := &podView{meta: m}
	v.Gone = m.Deleting || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			v.Ready = true
		}
	}
	return v, nil
}

func decodeWorkload(k Kind, m meta, u *unstructured.Unstructured) (*workloadView, error) {
	obj := u.Object
	w := &workloadView{meta: m, Kind: k, Replicas: 1}
	if r, found, err := unstructured.NestedInt64(obj, "spec", "replicas"); err == nil && found {
		w.Replicas = int32(r)
	}
	if sel, found, _ := unstructured.NestedMap(obj, "spec", "selector"); found {
		ls := &metav1.LabelSelector{}
		if err := fromUnstructured(sel, ls); err == nil {
			if s, err := metav1.LabelSelectorAsSelector(ls); err == nil {
				w.Selector = s
			}
		}
	}
	w.Template, _, _ = unstructured.NestedMap(obj, "spec", "template")
	key, err := templateKey(obj, "spec", "template")
	if err != nil {
		return nil, err
	}
	w.TemplateKey = key
	w.Spec, _, _ = unstructured.NestedMap(obj, "spec")
	delete(w.Spec, "template")
	delete(w.Spec, "replicas")
	status, _, _ := unstructured.NestedMap(obj, "status")
	w.ObservedGeneration = nestedInt(status, "observedGeneration")
	w.StatusReplicas = int32(nestedInt(status, "replicas"))
	w.Updated = int32(nestedInt(status, "updatedReplicas"))
	w.Ready = int32(nestedInt(status, "readyReplicas"))
	w.Available = int32(nestedInt(status, "availableReplicas"))
	w.CurrentRevision, _, _ = unstructured.NestedString(status, "currentRevision")
	w.UpdateRevision, _, _ = unstructured.NestedString(status, "updateRevision")

	switch k {
	case Deployment:
		d := &appsv1.Deployment{}
		if err := fromUnstructured(obj, d); err != nil {
			return nil, err
		}
		w.Surge, w.Unavailable, w.NoPromise = deploymentLimits(d)
	case StatefulSet, AdvancedStatefulSet:
		if v, found, _ := unstructured.NestedFieldNoCopy(obj, "spec", "updateStrategy", "rollingUpdate", "maxUnavailable"); found && v != nil {
			w.Unavailable = intOrString(v)
		}
	case CloneSet:
		if v, found, _ := unstructured.NestedFieldNoCopy(obj, "spec", "updateStrategy", "maxUnavailable"); found && v != nil {
			w.Unavailable = intOrString(v)
		}
		if v, found, _ := unstructured.NestedFieldNoCopy(obj, "spec", "updateStrategy", "maxSurge"); found && v != nil {
			w.Surge = intOrString(v)
		}
	}
	return w, nil
}

// savedStrategyAnnotation holds a partition-style Deployment's rolling
// update while Sluice (or Kruise) drives it with the Recreate strategy:
// {"rollingStyle":"Partition","rollingUpdate":{"maxSurge":..,"maxUnavailable":..}}.
const savedStrategyAnnotation = "rollouts.kruise.io/deployment-strategy"

// deploymentLimits are the Deployment's maxSurge and maxUnavailable: from
// its RollingUpdate strategy, or from the saved strategy annotation while
// a release holds it in Recreate. A Deployment that is Recreate of its own
// promises no availability.
func deploymentLimits(d *appsv1.Deployment) (surge, unavailable *intstr.IntOrString, noPromise bool) {
	quarter := intstr.FromString("25%")
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		raw, ok := d.Annotations[savedStrategyAnnotation]
		if !ok {
			return nil, nil, true
		}
		var saved struct {
			RollingUpdate *appsv1.RollingUpdateDeployment `json:"rollingUpdate"`
		}
		if err := json.Unmarshal([]byte(raw), &saved); err != nil {
			return nil, nil, true
		}
		ru = saved.RollingUpdate
	}
	if ru == nil {
		return &quarter, &quarter, false
	}
	surge, unavailable = ru.MaxSurge, ru.MaxUnavailable
	if surge == nil {
		surge = &quarter
	}
	if unavailable == nil {
		unavailable = &quarter
	}
	return surge, unavailable, false
}

// The ingress canary annotations, under the prefixes of the classes
// Sluice writes (nginx and higress use nginx's keys; MSE adds its own).
var ingressPrefixes = []string{"nginx.ingress.kubernetes.io/", "alb.ingress.kubernetes.io/", "mse.ingress.kubernetes.io/"}

func decodeIngress(m meta, u *unstructured.Unstructured) (*ingressView, error) {
	ing := &networkingv1.Ingress{}
	if err := fromUnstructured(u.Object, ing); err != nil {
		return nil, err
	}
	v := &ingressView{meta: m}
	v.Spec, _, _ = unstructured.NestedMap(u.Object, "spec")
	add := func(b *networkingv1.IngressBackend) {
		if b != nil && b.Service != nil {
			v.Backends = append(v.Backends, b.Service.Name)
		}
	}
	add(ing.Spec.DefaultBackend)
	for _, r := range ing.Spec.Rules {
		v.Hosts = append(v.Hosts, r.Host)
		if r.HTTP != nil {
			for _, p := range r.HTTP.Paths {
				add(&p.Backend)
			}
		}
	}
	if len(ing.Spec.Rules) == 0 {
		v.Hosts = []string{""}
	}
	return v, nil
}

// canary reads an Ingress's canary annotations: whether it is a canary
// Ingress, its weight as a percentage of the total (canary-weight over
// canary-weight-total, default 100), and whether it routes by a match
// (header, cookie or query).
func (v *ingressView) canary() (isCanary bool, weight float64, match bool) {
	for _, p := range ingressPrefixes {
		if v.Annotations[p+"canary"] != "true" {
			continue
		}
		isCanary = true
		if w, err := strconv.ParseFloat(v.Annotations[p+"canary-weight"], 64); err == nil && w > 0 {
			total := 100.0
			if t, err := strconv.ParseFloat(v.Annotations[p+"canary-weight-total"], 64); err == nil && t > 0 {
				total = t
			}
			weight = max(weight, w*100/total)
		}
		for _, k := range []string{"canary-by-header", "canary-by-header-value", "canary-by-header-pattern", "canary-by-cookie", "canary-by-query", "canary-by-query-value", "canary-by-query-pattern"} {
			if v.Annotations[p+k] != "" {
				match = true
			}
		}
	}
	return isCanary, weight, match
}

func decodeHTTPRoute(m meta, u *unstructured.Unstructured) (*httpRouteView, error) {
	r := &gatewayv1.HTTPRoute{}
	if err := fromUnstructured(u.Object, r); err != nil {
		return nil, err
	}
	v := &httpRouteView{meta: m}
	v.Spec, _, _ = unstructured.NestedMap(u.Object, "spec")
	for _, rule := range r.Spec.Rules {
		var rr routeRule
		for _, b := range rule.BackendRefs {
			if b.Group != nil && *b.Group != "" || b.Kind != nil && *b.Kind != "Service" {
				continue
			}
			w := int32(1) // the Gateway API's default weight
			if b.Weight != nil {
				w = *b.Weight
			}
			rr.Backends = append(rr.Backends, routeBackend{Name: string(b.Name), Weight: w})
		}
		v.Rules = append(v.Rules, rr)
	}
	return v, nil
}

func decodeRollout(m meta, u *unstructured.Unstructured) (*rolloutView, error) {
	// Only spec and metadata are decoded whole; of the status only the
	// fields a user sees (kubectl get's columns, kubectl-kruise's patches).
	specOnly := map[string]any{"spec": u.Object["spec"]}
	r := &v1beta1.Rollout{}
	if err := fromUnstructured(specOnly, r); err != nil {
		return nil, err
	}
	st, _, _ := unstructured.NestedMap(u.Object, "status")
	v := &rolloutView{meta: m, Spec: r.Spec}
	v.Status.Phase, _, _ = unstructured.NestedString(st, "phase")
	v.Status.Step = int32(nestedInt(st, "currentStepIndex"))
	v.Status.State, _, _ = unstructured.NestedString(st, "currentStepState")
	// The release's own sub-status is the one kubectl-kruise patches; the
	// top-level fields mirror it for the printer columns.
	for _, sub := range []string{"canaryStatus", "blueGreenStatus"} {
		if s, found, _ := unstructured.NestedMap(st, sub); found && s != nil {
			v.Status.Step = int32(nestedInt(s, "currentStepIndex"))
			v.Status.State, _, _ = unstructured.NestedString(s, "currentStepState")
			v.Status.Next = int32(nestedInt(s, "nextStepIndex"))
			break
		}
	}
	return v, nil
}

// steps returns the Rollout's steps, canary or blue-green.
func (r *rolloutView) steps() []v1beta1.CanaryStep {
	switch s := r.Spec.Strategy; {
	case s.Canary != nil:
		return s.Canary.Steps
	case s.BlueGreen != nil:
		return s.BlueGreen.Steps
	}
	return nil
}

// routing returns the Rollout's traffic routing, if any.
func (r *rolloutView) routing() (tr *v1beta1.TrafficRoutingRef, disableCanaryService bool) {
	switch s := r.Spec.Strategy; {
	case s.Canary != nil && len(s.Canary.TrafficRoutings) > 0:
		return &s.Canary.TrafficRoutings[0], s.Canary.DisableGenerateCanaryService
	case s.BlueGreen != nil && len(s.BlueGreen.TrafficRoutings) > 0:
		return &s.BlueGreen.TrafficRoutings[0], s.BlueGreen.DisableGenerateCanaryService
	}
	return nil, false
}

// canaryStyle is a Deployment released through an extra canary Deployment.
func (r *rolloutView) canaryStyle() bool {
	c := r.Spec.Strategy.Canary
	return c != nil && c.EnableExtraWorkloadForCanary
}

// templateKey identifies a pod template: its JSON with the
// pod-template-hash label removed (encoding/json sorts map keys).
func templateKey(obj map[string]any, path ...string) (string, error) {
	t, found, err := unstructured.NestedMap(obj, path...)
	if err != nil || !found {
		return "", err
	}
	return keyOf(t)
}

func keyOf(template map[string]any) (string, error) {
	t := maps.Clone(template)
	if md, ok := t["metadata"].(map[string]any); ok {
		md = maps.Clone(md)
		if l, ok := md["labels"].(map[string]any); ok {
			l = maps.Clone(l)
			delete(l, appsv1.DefaultDeploymentUniqueLabelKey)
			md["labels"] = l
		}
		delete(md, "creationTimestamp")
		t["metadata"] = md
	}
	b, err := json.Marshal(t)
	return string(b), err
}

func fromUnstructured(obj map[string]any, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(obj, into)
}

func nestedInt(obj map[string]any, path ...string) int64 {
	v, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if err != nil || !found {
		return 0
	}
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case int32:
		return int64(n)
	case int:
		return int64(n)
	}
	return 0
}

func intOrString(v any) *intstr.IntOrString {
	var x intstr.IntOrString
	switch n := v.(type) {
	case string:
		x = intstr.FromString(n)
	case int64:
		x = intstr.FromInt(int(n))
	case float64:
		x = intstr.FromInt(int(n))
	case int32:
		x = intstr.FromInt32(n)
	case int:
		x = intstr.FromInt(n)
	default:
		return nil
	}
	return &x
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// percent parses a step's traffic, "20%" → 20; nil or invalid → 0.
func percent(s *string) float64 {
	if s == nil {
		return 0
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(*s), "%")), 64)
	if err != nil {
		return 0
	}
	return v
}
