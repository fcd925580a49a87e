package invariants

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// scenario plays a namespace to a Model as the watches would: one object
// snapshot at a time, each with the next revision, at a controlled time.
type scenario struct {
	t    *testing.T
	m    *Model
	rv   uint64
	now  time.Time
	seen map[string]bool
	got  []Violation
	// hold, when set, collects the events instead of applying them.
	hold *[]Event
}

func newScenario(t *testing.T) *scenario {
	return &scenario{
		t: t, m: NewModel(Bounds{Lag: 5 * time.Second, Release: 10 * time.Minute}),
		now: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC), seen: map[string]bool{},
	}
}

// put writes an object (created or modified) with the next revision.
func (s *scenario) put(k Kind, obj runtime.Object) {
	s.t.Helper()
	s.rv++
	acc, err := metaAccessor(obj)
	if err != nil {
		s.t.Fatal(err)
	}
	acc.SetResourceVersion(fmt.Sprint(s.rv))
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		s.t.Fatal(err)
	}
	key := fmt.Sprintf("%s/%s", k, acc.GetName())
	typ := Modified
	if !s.seen[key] {
		typ, s.seen[key] = Added, true
	}
	s.apply(Event{Kind: k, Type: typ, Object: &unstructured.Unstructured{Object: u}, RV: s.rv, Time: s.now})
}

func (s *scenario) remove(k Kind, name string) {
	s.t.Helper()
	s.rv++
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetName(name)
	u.SetResourceVersion(fmt.Sprint(s.rv))
	delete(s.seen, fmt.Sprintf("%s/%s", k, name))
	s.apply(Event{Kind: k, Type: Deleted, Object: u, RV: s.rv, Time: s.now})
}

func (s *scenario) apply(e Event) {
	s.t.Helper()
	if s.hold != nil {
		*s.hold = append(*s.hold, e)
		return
	}
	vs, err := s.m.Apply(e)
	if err != nil {
		s.t.Fatal(err)
	}
	s.got = append(s.got, vs...)
}

// wait lets time pass and evaluates the timed invariants.
func (s *scenario) wait(d time.Duration) {
	s.now = s.now.Add(d)
	s.got = append(s.got, s.m.Tick(s.now)...)
}

// expect asserts that exactly the given invariants were violated (in any
// order, each once) since the last expect, and returns the violations.
func (s *scenario) expect(want ...Invariant) []Violation {
	s.t.Helper()
	got := s.got
	s.got = nil
	var names []string
	for _, v := range got {
		names = append(names, string(v.Invariant))
	}
	var wantNames []string
	for _, w := range want {
		wantNames = append(wantNames, string(w))
	}
	slices.Sort(names)
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		var b strings.Builder
		for _, v := range got {
			b.WriteString("\n" + v.Report())
		}
		s.t.Fatalf("violations %v, want %v%s", names, wantNames, b.String())
	}
	return got
}

func metaAccessor(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

// app is a Deployment released by a Rollout, with its ReplicaSets and
// pods, driven the way Sluice and the Deployment controller would leave
// them (or, in the tests, break them).
type app struct {
	s       *scenario
	d       *appsv1.Deployment
	ro      *v1beta1.Rollout
	rs      map[string]*appsv1.ReplicaSet // by image
	pods    map[string][]*corev1.Pod      // by image
	ready   map[string]int                // ready pods by image
	svc     *corev1.Service
	image   string // the current template's
	counter int
}

const (
	v1 = "demo:1"
	v2 = "demo:2"
	v3 = "demo:3"
)

// newApp creates a 10-replica Deployment at rest on v1 (maxSurge and
// maxUnavailable 25%) and a Rollout with steps 1, 50% and 100%, each
// waiting for approval.
func newApp(s *scenario, rollout string) *app {
	a := &app{s: s, rs: map[string]*appsv1.ReplicaSet{}, pods: map[string][]*corev1.Pod{}, ready: map[string]int{}, image: v1}
	quarter := intstr.FromString("25%")
	a.d = &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "uid-web", Generation: 1, Labels: map[string]string{"app": "web"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(10)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(v1),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &quarter, MaxUnavailable: &quarter}},
		},
	}
	a.ro = &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "uid-rollout"}}
	if err := yaml.Unmarshal([]byte(rollout), &a.ro.Spec); err != nil {
		s.t.Fatal(err)
	}
	a.ro.Status.Phase = v1beta1.RolloutPhaseHealthy
	s.put(Rollout, a.ro)
	a.svc = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}}
	s.put(Service, a.svc)
	a.putDeployment()
	a.scale(v1, 10, 10)
	a.settle()
	return a
}

const threeSteps = `
workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
strategy:
  canary:
    steps:
    - {replicas: 1, pause: {}}
    - {replicas: 50%, pause: {}}
    - {replicas: 100%}
`

func template(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
	}
}

func hashOf(image string) string { return strings.NewReplacer("demo:", "h").Replace(image) }

func (a *app) putDeployment() { a.s.put(Deployment, a.d.DeepCopy()) }

func (a *app) putRollout() { a.s.put(Rollout, a.ro.DeepCopy()) }

// scale sets the pods of image to n, of which ready are ready, through the
// image's ReplicaSet (created when missing).
func (a *app) scale(image string, n, ready int) {
	rs := a.rs[image]
	if rs == nil {
		t := template(image)
		t.Labels["pod-template-hash"] = hashOf(image)
		rs = &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "web-" + hashOf(image), UID: types.UID("uid-rs-" + hashOf(image)),
				OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", UID: a.d.UID, Controller: ptr.To(true)}}},
			Spec: appsv1.ReplicaSetSpec{Template: t},
		}
		a.rs[image] = rs
	}
	rs.Spec.Replicas = ptr.To(int32(n))
	a.s.put(ReplicaSet, rs.DeepCopy())
	for len(a.pods[image]) > n {
		last := a.pods[image][len(a.pods[image])-1]
		a.pods[image] = a.pods[image][:len(a.pods[image])-1]
		a.s.remove(Pod, last.Name)
	}
	for len(a.pods[image]) < n {
		a.counter++
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("web-%s-%d", hashOf(image), a.counter), UID: types.UID(fmt.Sprintf("uid-pod-%d", a.counter)),
			Labels:          map[string]string{"app": "web", "pod-template-hash": hashOf(image)},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}},
		}}
		a.pods[image] = append(a.pods[image], p)
		a.s.put(Pod, p.DeepCopy())
	}
	for i, p := range a.pods[image] {
		want := i < ready
		if podIsReady(p) != want {
			st := corev1.ConditionFalse
			if want {
				st = corev1.ConditionTrue
			}
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
			a.s.put(Pod, p.DeepCopy())
		}
	}
	a.ready[image] = ready
}

func podIsReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// settle writes the Deployment status its controller would: observed,
// and counting the current template's pods.
func (a *app) settle() {
	all, updated, available := 0, len(a.pods[a.image]), a.ready[a.image]
	for img, ps := range a.pods {
		all += len(ps)
		if img != a.image {
			available += a.ready[img]
		}
	}
	a.d.Status = appsv1.DeploymentStatus{ObservedGeneration: a.d.Generation, Replicas: int32(all), UpdatedReplicas: int32(updated), AvailableReplicas: int32(available), ReadyReplicas: int32(available)}
	a.putDeployment()
}

// release applies a new image as a user would, frozen the way Sluice's
// webhook and Prepare do (paused, Recreate with the rolling update saved,
// in-progressing), and the Rollout starts step 1.
func (a *app) release(image string) {
	a.image = image
	a.d.Generation++
	a.d.Spec.Template = template(image)
	a.d.Spec.Paused = true
	a.d.Annotations = map[string]string{inProgressingAnnotation: `{"rolloutName":"web"}`}
	a.putDeployment()
	a.d.Annotations[savedStrategyAnnotation] = `{"rollingStyle":"Partition","rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"}}`
	a.d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	a.d.Generation++
	a.putDeployment()
	a.settle()
}

// status writes the Rollout's status as Sluice would.
func (a *app) status(phase v1beta1.RolloutPhase, step int32, state v1beta1.CanaryStepState) {
	a.ro.Status.Phase = phase
	a.ro.Status.CurrentStepIndex, a.ro.Status.CurrentStepState = step, state
	next := step + 1
	if int(step) >= len(a.ro.Spec.Strategy.Canary.Steps) {
		next = -1
	}
	a.ro.Status.CanaryStatus = &v1beta1.CanaryStatus{CommonStatus: v1beta1.CommonStatus{CurrentStepIndex: step, CurrentStepState: state, NextStepIndex: next}}
	a.putRollout()
}

// finish gives the Deployment back (strategy restored, resumed, marks
// removed) with every pod on the current image, and the Rollout Healthy.
func (a *app) finish() {
	quarter := intstr.FromString("25%")
	a.d.Spec.Paused = false
	a.d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &quarter, MaxUnavailable: &quarter}}
	a.d.Annotations = nil
	a.d.Generation++
	a.putDeployment()
	a.scale(a.image, 10, 10)
	for img := range a.pods {
		if img != a.image {
			a.scale(img, 0, 0)
		}
	}
	a.settle()
	a.status(v1beta1.RolloutPhaseHealthy, int32(len(a.ro.Spec.Strategy.Canary.Steps)), v1beta1.CanaryStepStateCompleted)
}

// run writes an AnalysisRun of the Rollout for a step (0: background).
func (a *app) run(name string, step int32, phase analysisv1alpha1.AnalysisPhase) {
	label := "background"
	if step > 0 {
		label = fmt.Sprint(step)
	}
	a.s.put(AnalysisRun, &analysisv1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"sluice.dev/step": label, "sluice.dev/rollout": "web"}},
		Spec:       analysisv1alpha1.AnalysisRunSpec{Rollout: "web", StepIndex: step},
		Status:     analysisv1alpha1.AnalysisRunStatus{Phase: phase},
	})
}

// endpoints writes the EndpointSlice of a Service with ready endpoints.
func (s *scenario) endpoints(service string, ready int) {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: service + "-slice", Labels: map[string]string{discoveryv1.LabelServiceName: service}}}
	for i := 0; i < ready; i++ {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.0.0.%d", i+1)}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	s.put(EndpointSlice, es)
}

// ingress writes an Ingress to service, a canary one when annotations say so.
func (s *scenario) ingress(name, service string, annotations map[string]string) {
	s.put(Ingress, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: service, Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
		}}}}},
	})
}

func canaryWeight(w string) map[string]string {
	return map[string]string{"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": w}
}

// cloneSet is an OpenKruise CloneSet (unstructured: its Go module is not
// available), with uid "uid-<name>".
func cloneSet(name string, replicas int64, maxUnavailable string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
		"spec": map[string]any{"replicas": replicas, "updateStrategy": map[string]any{}},
		"status": map[string]any{"replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas,
			"currentRevision": name + "-abc", "updateRevision": name + "-abc"},
	}}
	if maxUnavailable != "" {
		_ = unstructured.SetNestedField(u.Object, maxUnavailable, "spec", "updateStrategy", "maxUnavailable")
	}
	u.SetName(name)
	u.SetUID(types.UID("uid-" + name))
	return u
}

// httpRoute routes to the stable Service web and the canary web-canary
// with the given weights.
func httpRoute(name string, stable, canary int32) *gatewayv1.HTTPRoute {
	ref := func(svc string, w int32) gatewayv1.HTTPBackendRef {
		return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(svc)}, Weight: ptr.To(w)}}
	}
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       gatewayv1.HTTPRouteSpec{Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{ref("web", stable), ref("web-canary", canary)}}}},
	}
}
