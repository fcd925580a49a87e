package invariants

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// A release that follows the rules: each step's pods come after the
// status says the step, pods only grow, everything is put back.
func TestARegularReleaseViolatesNothing(t *testing.T) {
	s := newScenario(t)
	a := newApp(s, threeSteps)
	a.release(v2)
	a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStateUpgrade)
	a.scale(v2, 1, 1)
	a.scale(v1, 9, 9)
	a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStatePaused)
	a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStateUpgrade)
	a.scale(v2, 4, 1) // 4 ≤ step 2's 5 + surge 3
	a.scale(v2, 4, 4)
	a.scale(v1, 7, 7)
	a.scale(v2, 5, 5)
	a.scale(v1, 5, 5)
	a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStatePaused)
	a.status(v1beta1.RolloutPhaseProgressing, 3, v1beta1.CanaryStepStateUpgrade)
	a.scale(v2, 8, 8)
	a.scale(v1, 2, 2)
	a.scale(v2, 10, 10)
	a.scale(v1, 0, 0)
	a.status(v1beta1.RolloutPhaseProgressing, 3, v1beta1.CanaryStepStateCompleted)
	a.finish()
	s.wait(time.Minute)
	s.expect()
	if open := s.m.Open(); len(open) != 0 {
		t.Errorf("open releases %v, want none", open)
	}
}

// Invariant 1, worked numbers: 10 replicas, maxSurge 25% → 3. At step 1
// the next step (50% → 5) allows 5 + 3 = 8 new pods; the 9th is a
// violation at once.
func TestStepAllowance(t *testing.T) {
	s := newScenario(t)
	a := newApp(s, threeSteps)
	a.release(v2)
	a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStatePaused)
	a.scale(v2, 8, 8)
	s.expect() // within the next step's allowance: StatusLag's to judge
	a.scale(v2, 9, 9)
	vs := s.expect(StepAllowance)
	if msg := vs[0].Message; !strings.Contains(msg, "9 new-version pods") || !strings.Contains(msg, "maxSurge 3 = 8") {
		t.Errorf("message %q, want the count and the arithmetic", msg)
	}
	if len(vs[0].Timeline) == 0 || !strings.Contains(vs[0].Timeline[len(vs[0].Timeline)-1].String(), "Pod/") {
		t.Errorf("the timeline must end with the event that broke it: %v", vs[0].Timeline)
	}
}

// Before the Rollout shows the release (still Healthy from the last one),
// step 1 is the most one reconcile can have acted for.
func TestStepAllowanceBeforeTheStatusShowsTheRelease(t *testing.T) {
	s := newScenario(t)
	a := newApp(s, threeSteps)
	a.release(v2)
	a.scale(v2, 4, 4) // step 1: 1 + surge 3
	s.expect()
	a.scale(v2, 5, 5)
	s.expect(StepAllowance)
}

// Invariant 4, worked numbers: at step 1 the status allows 1 + 3 = 4 new
// pods; 5 are legitimate for at most the lag bound (5s), the time for the
// status to say step 2.
func TestStatusLag(t *testing.T) {
	t.Run("the status catches up within the bound", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.release(v2)
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStatePaused)
		a.scale(v2, 5, 5)
		s.wait(4 * time.Second)
		a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStateUpgrade)
		s.wait(time.Minute)
		s.expect()
	})
	t.Run("the status stays behind", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.release(v2)
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStatePaused)
		a.scale(v2, 5, 5)
		s.wait(5 * time.Second)
		s.expect()
		s.wait(time.Second)
		vs := s.expect(StatusLag)
		if !strings.Contains(vs[0].Message, "claims step 1") || !strings.Contains(vs[0].Message, "for 6s") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
	t.Run("finalising may release every pod", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.release(v2)
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStatePaused)
		a.ro.Annotations = map[string]string{analysisv1alpha1.PromoteAnnotation: "now"}
		a.putRollout()
		a.scale(v2, 10, 10)
		s.wait(time.Minute)
		s.expect()
	})
}

// Invariant 2: 5 new pods at step 2 must not become 2.
func TestForwardOnly(t *testing.T) {
	atStep2 := func(t *testing.T) (*scenario, *app) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.release(v2)
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStatePaused)
		a.scale(v2, 1, 1)
		a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStatePaused)
		a.scale(v2, 5, 5)
		a.scale(v1, 5, 5)
		s.expect()
		return s, a
	}
	t.Run("caught", func(t *testing.T) {
		s, a := atStep2(t)
		a.scale(v2, 4, 4) // 9 ready: still available, but backwards
		vs := s.expect(ForwardOnly)
		if !strings.Contains(vs[0].Message, "went down from 5 to 4") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
	t.Run("an abort", func(t *testing.T) {
		s, a := atStep2(t)
		a.ro.Annotations = map[string]string{analysisv1alpha1.AbortAnnotation: "now"}
		a.putRollout()
		a.scale(v1, 8, 8)
		a.scale(v2, 2, 2)
		s.expect()
	})
	t.Run("a retry after an abort is forward again", func(t *testing.T) {
		s, a := atStep2(t)
		a.ro.Annotations = map[string]string{analysisv1alpha1.AbortAnnotation: "a"}
		a.putRollout()
		a.scale(v1, 10, 10)
		a.scale(v2, 0, 0)
		a.ro.Annotations[analysisv1alpha1.RetryAnnotation] = "b"
		a.putRollout()
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStateUpgrade) // the restart, not a jump
		a.scale(v2, 1, 1)
		s.expect()
		a.scale(v2, 0, 0)
		s.expect(ForwardOnly)
	})
	t.Run("a jump back with nextStepIndex", func(t *testing.T) {
		s, a := atStep2(t)
		a.ro.Status.CanaryStatus.NextStepIndex = 1 // kubectl-kruise rollout undo --fast
		a.putRollout()
		a.scale(v1, 9, 9)
		a.scale(v2, 1, 1)
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStateUpgrade)
		s.expect()
		// Forward again from step 2 on, from 1 pod.
		a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStateUpgrade)
		a.scale(v2, 5, 5)
		a.scale(v2, 3, 3)
		s.expect(ForwardOnly)
	})
	t.Run("a cancel", func(t *testing.T) {
		s, a := atStep2(t)
		a.image = v1
		a.d.Spec.Template = template(v1)
		a.d.Generation++
		a.putDeployment()
		a.scale(v1, 10, 10)
		a.scale(v2, 0, 0)
		s.expect()
	})
	t.Run("a failed analysis with policy Rollback", func(t *testing.T) {
		s, a := atStep2(t)
		a.run("web-h2-2", 2, analysisv1alpha1.AnalysisRunning)
		a.run("web-h2-2", 2, analysisv1alpha1.AnalysisFailed)
		a.scale(v1, 10, 10)
		a.scale(v2, 0, 0)
		s.expect()
	})
	t.Run("a new template begins a new release", func(t *testing.T) {
		s, a := atStep2(t)
		a.release(v3)
		a.scale(v1, 10, 10)
		a.scale(v2, 0, 0)
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStateUpgrade)
		a.scale(v3, 1, 1)
		s.expect()
		// The new release's own pods must not shrink: 3 then 1 is the
		// replayed-step defect.
		a.scale(v3, 3, 3)
		a.scale(v3, 1, 1)
		s.expect(ForwardOnly)
	})
	t.Run("the workload scaled", func(t *testing.T) {
		s, a := atStep2(t)
		a.d.Spec.Replicas = ptr.To(int32(4))
		a.d.Generation++
		a.putDeployment()
		a.scale(v1, 2, 2)
		a.scale(v2, 2, 2)
		s.expect()
	})
}

// Invariant 3, worked numbers per kind.
func TestAvailability(t *testing.T) {
	t.Run("Deployment: 10 replicas, maxUnavailable 25% → 2", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.scale(v1, 10, 8)
		s.expect()
		a.scale(v1, 10, 7)
		vs := s.expect(Availability)
		if !strings.Contains(vs[0].Message, "7 ready pods, below replicas 10 − maxUnavailable 2 = 8") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
	t.Run("not while the workload is created or scaled up", func(t *testing.T) {
		s := newScenario(t)
		a := &app{s: s, rs: map[string]*appsv1.ReplicaSet{}, pods: map[string][]*corev1.Pod{}, ready: map[string]int{}, image: v1}
		quarter := intstr.FromString("25%")
		a.d = &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "uid-web", Generation: 1},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(10)), Template: template(v1),
				Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &quarter, MaxUnavailable: &quarter}}},
		}
		a.ro = &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1beta1.RolloutSpec{WorkloadRef: v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}}}
		a.putRollout()
		a.putDeployment()
		a.scale(v1, 10, 3)
		a.scale(v1, 10, 10)
		a.d.Spec.Replicas = ptr.To(int32(20))
		a.putDeployment()
		a.scale(v1, 20, 10)
		s.expect()
		a.scale(v1, 20, 20)
		a.scale(v1, 20, 14) // 20 − 5 = 15
		s.expect(Availability)
	})
	t.Run("StatefulSet: default maxUnavailable 1", func(t *testing.T) {
		s := newScenario(t)
		s.put(Rollout, &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: v1beta1.RolloutSpec{WorkloadRef: v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}}})
		sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", UID: "uid-db"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(int32(3))}}
		s.put(StatefulSet, sts)
		pods := statefulPods(s, sts, "db-rev1", 3)
		setReady(s, pods[0], false)
		s.expect()
		setReady(s, pods[1], false)
		s.expect(Availability)
	})
	t.Run("CloneSet: default maxUnavailable 20%, rounded up without surge", func(t *testing.T) {
		// 3 replicas: 20% → ceil(0.6) = 1, so 2 must be ready; with the
		// Deployment's rounding down it would be 0 and 3 required.
		s := newScenario(t)
		s.put(Rollout, &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "cs"}, Spec: v1beta1.RolloutSpec{WorkloadRef: v1beta1.ObjectRef{APIVersion: "apps.kruise.io/v1alpha1", Kind: "CloneSet", Name: "cs"}}})
		s.put(CloneSet, cloneSet("cs", 3, ""))
		pods := statefulPods(s, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "cs", UID: "uid-cs"}}, "cs-abc", 3)
		setReady(s, pods[0], false)
		s.expect()
		setReady(s, pods[1], false)
		vs := s.expect(Availability)
		if !strings.Contains(vs[0].Message, "replicas 3 − maxUnavailable 1 = 2") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
}

// Invariant 5: the canary Service gets no request without a ready endpoint;
// the stable Service, once serving, always selects a ready pod.
func TestTrafficReady(t *testing.T) {
	routed := threeSteps + `
    trafficRoutings:
    - service: web
      ingress: {name: web}
`
	setup := func(t *testing.T) (*scenario, *app) {
		s := newScenario(t)
		a := newApp(s, routed)
		s.ingress("web", "web", nil)
		s.expect()
		return s, a
	}
	t.Run("canary weight without endpoints", func(t *testing.T) {
		s, _ := setup(t)
		s.put(Service, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-canary"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web", "pod-template-hash": "h2"}}})
		s.ingress("web-canary", "web-canary", canaryWeight("0"))
		s.expect() // weight 0, no match: no traffic
		s.ingress("web-canary", "web-canary", canaryWeight("20"))
		vs := s.expect(TrafficReady)
		if vs[0].Subject != "Service web-canary" {
			t.Errorf("subject %q", vs[0].Subject)
		}
	})
	t.Run("a header match is traffic too", func(t *testing.T) {
		s, _ := setup(t)
		s.ingress("web-canary", "web-canary", map[string]string{"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-by-header": "User-Agent", "nginx.ingress.kubernetes.io/canary-by-header-value": "Andriod"})
		s.expect(TrafficReady)
	})
	t.Run("canary weight with a ready endpoint", func(t *testing.T) {
		s, _ := setup(t)
		s.endpoints("web-canary", 1)
		s.ingress("web-canary", "web-canary", canaryWeight("20"))
		s.expect()
		s.endpoints("web-canary", 0)
		s.expect(TrafficReady)
	})
	t.Run("the stable selector selects nothing", func(t *testing.T) {
		s, a := setup(t)
		a.svc.Spec.Selector = map[string]string{"app": "web", "pod-template-hash": "web-h1"} // a revision name, not the hash
		s.put(Service, a.svc)
		vs := s.expect(TrafficReady)
		if vs[0].Subject != "Service web" || !strings.Contains(vs[0].Message, "selects no ready pod") {
			t.Errorf("%s", vs[0])
		}
	})
	t.Run("not before the stable Service first served", func(t *testing.T) {
		s := newScenario(t)
		s.put(Rollout, &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1beta1.RolloutSpec{
			WorkloadRef: v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Strategy:    v1beta1.RolloutStrategy{Canary: &v1beta1.CanaryStrategy{TrafficRoutings: []v1beta1.TrafficRoutingRef{{Service: "web", Ingress: &v1beta1.IngressTrafficRouting{Name: "web"}}}}},
		}})
		s.put(Service, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}})
		s.ingress("web", "web", nil)
		s.expect()
	})
	t.Run("the stable Service unrouted by a 100% canary", func(t *testing.T) {
		s, a := setup(t)
		s.endpoints("web-canary", 3)
		s.ingress("web-canary", "web-canary", canaryWeight("100"))
		a.svc.Spec.Selector = map[string]string{"app": "nothing"}
		s.put(Service, a.svc)
		s.expect()
	})
	t.Run("HTTPRoute weights", func(t *testing.T) {
		s := newScenario(t)
		newApp(s, threeSteps+`
    trafficRoutings:
    - service: web
      gateway: {httpRouteName: web}
`)
		s.put(HTTPRoute, httpRoute("web", 80, 20))
		vs := s.expect(TrafficReady)
		if !strings.Contains(vs[0].Message, "weight 20 of 100") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
}

// Invariant 6a, worked numbers: steps with traffic 20% and 50%.
func TestTrafficWithinStep(t *testing.T) {
	steps := `
workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
strategy:
  canary:
    steps:
    - {replicas: 1, traffic: 20%, pause: {}}
    - {replicas: 50%, traffic: 50%, pause: {}}
    - {replicas: 100%, traffic: 100%}
    trafficRoutings:
    - service: web
      gateway: {httpRouteName: web}
`
	setup := func(t *testing.T) (*scenario, *app) { return pausedAt20Percent(t, steps) }
	t.Run("step 2's weight for longer than the lag bound", func(t *testing.T) {
		s, _ := setup(t)
		s.put(HTTPRoute, httpRoute("web", 50, 50))
		s.wait(4 * time.Second)
		s.expect()
		s.wait(2 * time.Second)
		s.expect(TrafficWithinStep)
	})
	t.Run("beyond the next step at once", func(t *testing.T) {
		s, _ := setup(t)
		s.put(HTTPRoute, httpRoute("web", 30, 70)) // 70 / 100 = 70% > 50%
		vs := s.expect(TrafficWithinStep)
		if !strings.Contains(vs[0].Message, "canary weight 70%") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
	t.Run("a new version mid-release: the replaced release's weight until it is reset", func(t *testing.T) {
		s, a := setup(t)
		a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStatePaused)
		s.put(HTTPRoute, httpRoute("web", 50, 50))
		a.release(v3) // step 1 allows 20%; the 50% still goes to v2's pods
		s.wait(2 * time.Second)
		s.put(HTTPRoute, httpRoute("web", 100, 0))
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStateUpgrade)
		s.wait(time.Minute)
		s.expect()
		s.put(HTTPRoute, httpRoute("web", 30, 70)) // the new release's own: above step 2's 50%
		s.expect(TrafficWithinStep)
	})
	t.Run("finalising sends everything to the new version", func(t *testing.T) {
		s, a := setup(t)
		a.status(v1beta1.RolloutPhaseProgressing, 3, v1beta1.CanaryStepStateCompleted)
		s.put(HTTPRoute, httpRoute("web", 0, 100))
		s.wait(time.Minute)
		s.expect()
	})
}

// A routed step followed by one without a route (Kruise's finalising: the
// weight back to 0 before the last batch): the routed step's weight is
// within its step, and stays allowed after the status moves on for no
// longer than the lag bound.
func TestTrafficWithinStepBeforeAStepWithoutRoute(t *testing.T) {
	steps := `
workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
strategy:
  canary:
    steps:
    - {replicas: 1, traffic: 20%, pause: {}}
    - {replicas: 100%}
    trafficRoutings:
    - service: web
      gateway: {httpRouteName: web}
`
	setup := func(t *testing.T) (*scenario, *app) {
		s, a := pausedAt20Percent(t, steps)
		s.wait(time.Minute)
		s.expect() // 20% at step 1, whose next step routes nothing
		a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStateUpgrade)
		return s, a
	}
	t.Run("finalised within the lag bound", func(t *testing.T) {
		s, _ := setup(t)
		s.wait(4 * time.Second)
		s.put(HTTPRoute, httpRoute("web", 100, 0))
		s.wait(time.Minute)
		s.expect()
	})
	t.Run("step 1's weight for longer than the lag bound", func(t *testing.T) {
		s, _ := setup(t)
		s.wait(6 * time.Second)
		s.expect(TrafficWithinStep)
	})
	t.Run("above step 1's weight at once", func(t *testing.T) {
		s, _ := setup(t)
		s.put(HTTPRoute, httpRoute("web", 70, 30))
		vs := s.expect(TrafficWithinStep)
		if !strings.Contains(vs[0].Message, "canary weight 30%") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
}

// pausedAt20Percent is a release of web paused at step 1 of steps (one new
// pod, 20% of the requests through the HTTPRoute web), violating nothing.
func pausedAt20Percent(t *testing.T, steps string) (*scenario, *app) {
	s := newScenario(t)
	a := newApp(s, steps)
	s.endpoints("web-canary", 1)
	a.release(v2)
	a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStatePaused)
	a.scale(v2, 1, 1)
	s.put(HTTPRoute, httpRoute("web", 80, 20))
	s.expect()
	return s, a
}

// Invariant 6b: a verdict causes what its policy allows, nothing else.
func TestAnalysisVerdict(t *testing.T) {
	setup := func(t *testing.T, analysis string) (*scenario, *app) {
		s := newScenario(t)
		a := newApp(s, `
workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
strategy:
  canary:
    steps:
    - {replicas: 1, pause: {}, analysis: `+analysis+`}
    - {replicas: 50%, pause: {}}
    - {replicas: 100%}
`)
		a.release(v2)
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStateMetricsAnalysis)
		a.scale(v2, 1, 1)
		a.run("web-h2-1", 1, analysisv1alpha1.AnalysisRunning)
		s.expect()
		return s, a
	}
	const defaults = `{templates: [{templateName: t}]}`
	t.Run("Failed, then an advance", func(t *testing.T) {
		s, a := setup(t, defaults)
		a.run("web-h2-1", 1, analysisv1alpha1.AnalysisFailed)
		a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStateUpgrade)
		vs := s.expect(AnalysisVerdict)
		if !strings.Contains(vs[0].Message, "ended Failed, whose policy is Rollback") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
	t.Run("Error (Pause), approved, then an advance", func(t *testing.T) {
		s, a := setup(t, defaults)
		a.run("web-h2-1", 1, analysisv1alpha1.AnalysisError)
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStateReady) // kubectl-kruise rollout approve
		a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStateUpgrade)
		s.expect()
	})
	t.Run("Error (Pause), then an advance without approval", func(t *testing.T) {
		s, a := setup(t, defaults)
		a.run("web-h2-1", 1, analysisv1alpha1.AnalysisError)
		a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStateUpgrade)
		s.expect(AnalysisVerdict)
	})
	t.Run("Error (Pause), then a rollback", func(t *testing.T) {
		s, a := setup(t, defaults)
		a.run("web-h2-1", 1, analysisv1alpha1.AnalysisError)
		a.scale(v2, 0, 0)
		vs := s.expect(AnalysisVerdict, ForwardOnly)
		if !strings.Contains(vs[0].Message+vs[1].Message, "a rollback the policy does not allow") {
			t.Errorf("messages %q / %q", vs[0].Message, vs[1].Message)
		}
	})
	t.Run("Inconclusive (Pause) at the last step, approved: traffic back to stable is the end", func(t *testing.T) {
		for _, approved := range []bool{true, false} {
			s := newScenario(t)
			a := newApp(s, `
workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
strategy:
  canary:
    steps:
    - {replicas: 1, traffic: 20%, pause: {duration: 0}}
    - {replicas: 100%, traffic: 100%, analysis: {templates: [{templateName: t}]}}
    trafficRoutings:
    - service: web
      ingress: {name: web}
`)
			s.ingress("web", "web", nil)
			a.release(v2)
			a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStateMetricsAnalysis)
			a.scale(v2, 10, 10)
			s.endpoints("web-canary", 10)
			s.ingress("web-canary", "web-canary", canaryWeight("100"))
			a.run("web-h2-2", 2, analysisv1alpha1.AnalysisInconclusive)
			if approved {
				a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStateReady) // kubectl-kruise rollout approve
			}
			s.remove(Ingress, "web-canary") // finalising, or a rollback without approval
			if approved {
				s.expect()
			} else {
				s.expect(AnalysisVerdict)
			}
		}
	})
	t.Run("Error with onError Continue advances", func(t *testing.T) {
		s, a := setup(t, `{templates: [{templateName: t}], onError: Continue}`)
		a.run("web-h2-1", 1, analysisv1alpha1.AnalysisError)
		a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStateUpgrade)
		s.expect()
	})
	t.Run("Failed with onFailed Pause holds, a person aborts", func(t *testing.T) {
		s, a := setup(t, `{templates: [{templateName: t}], onFailed: Pause}`)
		a.run("web-h2-1", 1, analysisv1alpha1.AnalysisFailed)
		a.ro.Annotations = map[string]string{analysisv1alpha1.AbortAnnotation: "now"}
		a.putRollout()
		a.scale(v2, 0, 0)
		s.expect()
	})
	t.Run("a terminated run decides nothing", func(t *testing.T) {
		s, a := setup(t, defaults)
		s.put(AnalysisRun, &analysisv1alpha1.AnalysisRun{
			ObjectMeta: metav1.ObjectMeta{Name: "web-h2-1", Labels: map[string]string{"sluice.dev/step": "1"}},
			Spec:       analysisv1alpha1.AnalysisRunSpec{Rollout: "web", StepIndex: 1, Terminate: true},
			Status:     analysisv1alpha1.AnalysisRunStatus{Phase: analysisv1alpha1.AnalysisInconclusive},
		})
		a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStateUpgrade)
		s.expect()
	})
}

// Invariant 7a: a release ends within the bound, or rolls back.
func TestReleaseEnds(t *testing.T) {
	t.Run("stuck", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.release(v2)
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStatePaused)
		a.scale(v2, 1, 1)
		s.wait(9 * time.Minute)
		s.expect()
		s.wait(2 * time.Minute)
		s.expect(ReleaseEnds)
		if open := s.m.Open(); len(open) != 1 || !strings.Contains(open[0], "Deployment/web") {
			t.Errorf("open %v", open)
		}
	})
	t.Run("rolled back after an abort", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.release(v2)
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStatePaused)
		a.scale(v2, 1, 1)
		a.ro.Annotations = map[string]string{analysisv1alpha1.AbortAnnotation: "now"}
		a.putRollout()
		a.scale(v2, 0, 0)
		s.wait(20 * time.Minute)
		s.expect()
	})
}

// A gap in the history (a watch that listed again) makes the model judge
// the release it overlaps in part: the Rollout's steps 1 and 2 were never
// seen, so pods at step 3 are not held against step 1; the time bound
// still holds, and a release opening after the gap is judged whole.
func TestGap(t *testing.T) {
	t.Run("without it the lost steps look like a violation", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.release(v2)
		a.scale(v2, 10, 10)
		s.expect(StepAllowance)
	})
	t.Run("across it the release is judged in part", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.release(v2)
		// The Rollout's watch broke here; its list, when the pods are at
		// step 3, finds the gap.
		s.m.Gap(Gap{Kind: Rollout, After: s.rv, Listed: s.rv + 30})
		a.scale(v2, 10, 10)
		a.status(v1beta1.RolloutPhaseProgressing, 3, v1beta1.CanaryStepStateCompleted)
		a.scale(v2, 5, 5)
		s.expect()
		if n := s.m.Unseen(); n != 1 {
			t.Errorf("releases judged in part: %d, want 1", n)
		}
		s.wait(11 * time.Minute)
		s.expect(ReleaseEnds)
	})
	t.Run("a violation found before the gap was known names it", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.release(v2)
		a.scale(v2, 10, 10)
		vs := s.expect(StepAllowance)
		if vs[0].Unseen() != "" {
			t.Fatalf("unseen before any gap: %q", vs[0].Unseen())
		}
		s.m.Gap(Gap{Kind: Rollout, After: 1, Listed: s.rv})
		if why := vs[0].Unseen(); !strings.Contains(why, "listed again") {
			t.Errorf("unseen %q, want the gap", why)
		}
	})
	t.Run("a release opening after it is judged whole", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		s.m.Gap(Gap{Kind: Rollout, After: 1, Listed: s.rv})
		s.rv++
		a.release(v2)
		a.scale(v2, 10, 10)
		s.expect(StepAllowance)
	})
	t.Run("a release opening before its end is judged in part", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		s.m.Gap(Gap{Kind: Rollout, After: s.rv, Listed: s.rv + 5})
		a.release(v2)
		a.scale(v2, 10, 10)
		s.expect()
	})
}

// Invariant 7b: what a release must put back.
func TestRestoration(t *testing.T) {
	release := func(t *testing.T) (*scenario, *app) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.release(v2)
		a.status(v1beta1.RolloutPhaseProgressing, 3, v1beta1.CanaryStepStateCompleted)
		return s, a
	}
	t.Run("everything put back", func(t *testing.T) {
		s, a := release(t)
		a.finish()
		s.expect()
	})
	t.Run("left paused with a mark", func(t *testing.T) {
		s, a := release(t)
		a.d.Labels["rollouts.kruise.io/stable-revision"] = "h1"
		a.finish()
		// The Deployment controller reports it rolled, yet it was resumed
		// with the stable-revision label left on it.
		vs := s.expect(Restoration)
		if !strings.Contains(vs[0].Message, "rollouts.kruise.io/stable-revision") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
	t.Run("the strategy not restored", func(t *testing.T) {
		s, a := release(t)
		a.d.Spec.Paused = false
		a.d.Annotations = nil
		a.d.Generation++
		a.putDeployment() // resumed, but still Recreate
		a.scale(v2, 10, 10)
		a.scale(v1, 0, 0)
		a.settle()
		a.status(v1beta1.RolloutPhaseHealthy, 3, v1beta1.CanaryStepStateCompleted)
		vs := s.expect(Restoration)
		if !strings.Contains(vs[0].Message, "Recreate") || !strings.Contains(vs[0].Message, "spec") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
	t.Run("the canary Service left behind", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps+`
    trafficRoutings:
    - service: web
      ingress: {name: web}
`)
		s.ingress("web", "web", nil)
		a.release(v2)
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStatePaused)
		s.put(Service, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-canary"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web", "pod-template-hash": "h2"}}})
		a.status(v1beta1.RolloutPhaseProgressing, 3, v1beta1.CanaryStepStateCompleted)
		a.finish()
		vs := s.expect(Restoration)
		if !strings.Contains(vs[0].Message, "Service web-canary is left behind") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
	t.Run("the user's own change in the same write is kept", func(t *testing.T) {
		s, a := release(t)
		a.d.Annotations[inProgressingAnnotation] = `{"rolloutName":"web"}`
		a.finish()
		s.expect()
		a.image = v3
		a.d.Spec.Template = template(v3)
		a.d.Spec.MinReadySeconds = 5
		a.d.Annotations = map[string]string{"team": "blue", inProgressingAnnotation: "{}"}
		a.d.Spec.Paused = true
		a.d.Generation++
		a.putDeployment()
		a.status(v1beta1.RolloutPhaseProgressing, 3, v1beta1.CanaryStepStateCompleted)
		a.d.Spec.Paused = false
		a.d.Annotations = map[string]string{"team": "blue"}
		a.d.Generation++
		a.putDeployment()
		a.scale(v3, 10, 10)
		a.scale(v2, 0, 0)
		a.settle()
		a.status(v1beta1.RolloutPhaseHealthy, 3, v1beta1.CanaryStepStateCompleted)
		vs := s.expect(Restoration)
		// minReadySeconds is a release-owned field (blue-green changes it):
		// expected as at rest, so the user's change there is reported; the
		// annotation is the user's and is not.
		if strings.Contains(vs[0].Message, "team") || !strings.Contains(vs[0].Message, "minReadySeconds") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
}

// A concurrent writer's labels and annotations (ConcurrentWriter) are its
// own: changed during a release, they are not the release's to restore;
// taken over by another manager, they are compared again.
func TestRestorationWithConcurrentWriter(t *testing.T) {
	owned := func(manager, key string) []metav1.ManagedFieldsEntry {
		return []metav1.ManagedFieldsEntry{{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1",
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{"f:` + key + `":{}}}}`)}}}
	}
	run := func(t *testing.T, declared bool, manager string) *scenario {
		s := newScenario(t)
		if declared {
			s.m.SetConcurrentWriters([]string{"chaos-writer"})
		}
		a := newApp(s, threeSteps)
		a.release(v2)
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStatePaused)
		a.d.Labels["touched"] = "7"
		a.d.ManagedFields = owned(manager, "touched")
		a.putDeployment()
		a.status(v1beta1.RolloutPhaseProgressing, 3, v1beta1.CanaryStepStateCompleted)
		a.finish()
		return s
	}
	t.Run("declared", func(t *testing.T) { run(t, true, "chaos-writer").expect() })
	t.Run("not declared", func(t *testing.T) {
		vs := run(t, false, "chaos-writer").expect(Restoration)
		if !strings.Contains(vs[0].Message, "touched") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
	t.Run("owned by another manager", func(t *testing.T) { run(t, true, "sluice-controller").expect(Restoration) })
}

func statefulPods(s *scenario, owner *appsv1.StatefulSet, revision string, n int) []*corev1.Pod {
	var out []*corev1.Pod
	for i := 0; i < n; i++ {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: owner.Name + "-" + string(rune('0'+i)), Labels: map[string]string{"controller-revision-hash": revision},
				OwnerReferences: []metav1.OwnerReference{{Kind: "StatefulSet", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}},
			},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
		s.put(Pod, p)
		out = append(out, p)
	}
	return out
}

func setReady(s *scenario, p *corev1.Pod, ready bool) {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	s.put(Pod, p)
}

// Which pods are the new version's, per workload style.
func TestNewVersionPods(t *testing.T) {
	t.Run("canary-style Deployment: the canary Deployment's pods", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps+`
    enableExtraWorkloadForCanary: true
    patchPodTemplateMetadata: {labels: {track: canary}}
`)
		a.image = v2
		a.d.Spec.Template = template(v2)
		a.d.Spec.Paused = true
		a.d.Generation++
		a.putDeployment()
		a.settle()
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStatePaused)
		canary := func(name, image string, pods int) {
			tmpl := template(image)
			tmpl.Labels["track"] = "canary"
			c := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{canaryDeploymentLabel: "web"}},
				Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(int32(pods)), Template: tmpl},
			}
			s.put(Deployment, c)
			rsTmpl := *tmpl.DeepCopy()
			rsTmpl.Labels["pod-template-hash"] = name
			rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name + "-rs", UID: types.UID("uid-rs-" + name),
				OwnerReferences: []metav1.OwnerReference{{UID: c.UID, Controller: ptr.To(true)}}}, Spec: appsv1.ReplicaSetSpec{Template: rsTmpl}}
			s.put(ReplicaSet, rs)
			for i := 0; i < pods; i++ {
				s.put(Pod, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", name, i), OwnerReferences: []metav1.OwnerReference{{UID: rs.UID, Controller: ptr.To(true)}}},
					Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
				})
			}
		}
		canary("web-old", v1, 9) // a canary of another template: not the new version
		s.expect()
		canary("web-new", v2, 9) // step 2 allows 5 + 3
		vs := s.expect(StepAllowance)
		if !strings.Contains(vs[0].Message, "9 new-version pods") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
	t.Run("StatefulSet: controller-revision-hash of status.updateRevision, once observed", func(t *testing.T) {
		s := newScenario(t)
		s.put(Rollout, &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: v1beta1.RolloutSpec{
			WorkloadRef: v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"},
			Strategy:    v1beta1.RolloutStrategy{Canary: &v1beta1.CanaryStrategy{Steps: []v1beta1.CanaryStep{{Replicas: ptr.To(intstr.FromInt(1))}, {Replicas: ptr.To(intstr.FromInt(2))}, {Replicas: ptr.To(intstr.FromString("100%"))}}}},
		}, Status: v1beta1.RolloutStatus{Phase: v1beta1.RolloutPhaseHealthy}})
		sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", UID: "uid-db", Generation: 1},
			Spec:   appsv1.StatefulSetSpec{Replicas: ptr.To(int32(4)), Template: template(v1)},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: 4, UpdatedReplicas: 4, ReadyReplicas: 4, CurrentRevision: "db-1", UpdateRevision: "db-1"}}
		s.put(StatefulSet, sts)
		pods := statefulPods(s, sts, "db-1", 4)
		// The release: the status still names the old revision (all 4 pods
		// would count as new); the checker waits for it to catch up.
		sts.Spec.Template = template(v2)
		sts.Generation = 2
		sts.Annotations = map[string]string{inProgressingAnnotation: "{}"}
		s.put(StatefulSet, sts)
		s.put(Rollout, &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: v1beta1.RolloutSpec{
			WorkloadRef: v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"},
			Strategy:    v1beta1.RolloutStrategy{Canary: &v1beta1.CanaryStrategy{Steps: []v1beta1.CanaryStep{{Replicas: ptr.To(intstr.FromInt(1))}, {Replicas: ptr.To(intstr.FromInt(2))}, {Replicas: ptr.To(intstr.FromString("100%"))}}}},
		}, Status: v1beta1.RolloutStatus{Phase: v1beta1.RolloutPhaseProgressing, CurrentStepIndex: 1, CurrentStepState: v1beta1.CanaryStepStatePaused}})
		s.wait(time.Minute)
		s.expect()
		sts.Status.ObservedGeneration, sts.Status.UpdateRevision, sts.Status.UpdatedReplicas = 2, "db-2", 0
		s.put(StatefulSet, sts)
		s.expect()
		for i := 3; i >= 1; i-- { // ordinals 3, 2, 1 updated: 3 > step 2's 2 + surge 0
			pods[i].Labels["controller-revision-hash"] = "db-2"
			s.put(Pod, pods[i])
		}
		vs := s.expect(StepAllowance)
		if !strings.Contains(vs[0].Message, "3 new-version pods") || !strings.Contains(vs[0].Message, "maxSurge 0 = 2") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
}

// The defects issue 10 reports, replayed as the objects showed them: the
// checker must name each.
func TestIssueDefects(t *testing.T) {
	cloneSetApp := func(t *testing.T, routed bool) (*scenario, *unstructured.Unstructured, []*corev1.Pod) {
		s := newScenario(t)
		spec := `
workloadRef: {apiVersion: apps.kruise.io/v1alpha1, kind: CloneSet, name: web}
strategy:
  canary:
    steps:
    - {replicas: 1, pause: {}}
    - {replicas: 50%, pause: {}}
    - {replicas: 100%}
`
		if routed {
			spec = strings.Replace(spec, "    - {replicas: 1, pause: {}}", "    - {replicas: 1, traffic: 10%, pause: {}}", 1) + `
    trafficRoutings:
    - service: web
      ingress: {name: web}
`
		}
		ro := &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Status: v1beta1.RolloutStatus{Phase: v1beta1.RolloutPhaseHealthy}}
		if err := yaml.Unmarshal([]byte(spec), &ro.Spec); err != nil {
			t.Fatal(err)
		}
		s.put(Rollout, ro)
		s.put(Service, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}})
		s.ingress("web", "web", nil)
		cs := cloneSet("web", 10, "")
		s.put(CloneSet, cs)
		// OpenKruise's labels: the short hash on pod-template-hash, the
		// revision name on controller-revision-hash.
		var pods []*corev1.Pod
		for i := 0; i < 10; i++ {
			p := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i),
					Labels:          map[string]string{"app": "web", "pod-template-hash": "abc", "controller-revision-hash": "web-abc"},
					OwnerReferences: []metav1.OwnerReference{{UID: "uid-web", Controller: ptr.To(true)}}},
				Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
			}
			s.put(Pod, p)
			pods = append(pods, p)
		}
		s.expect()
		return s, cs, pods
	}
	progressing := func(s *scenario, step int32) {
		ro := s.m.world.rollout("web")
		r := &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: ro.Spec, Status: v1beta1.RolloutStatus{
			Phase: v1beta1.RolloutPhaseProgressing, CurrentStepIndex: step, CurrentStepState: v1beta1.CanaryStepStatePaused}}
		s.put(Rollout, r)
	}
	t.Run("1: a CloneSet's stable Service pinned to the revision name selects nothing", func(t *testing.T) {
		s, _, _ := cloneSetApp(t, true)
		progressing(s, 1)
		s.put(Service, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web", "pod-template-hash": "web-abc"}}})
		vs := s.expect(TrafficReady)
		if !strings.Contains(vs[0].Message, "pod-template-hash=web-abc") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
	t.Run("2: a re-applied partition 0 updates every pod at step 1", func(t *testing.T) {
		s, cs, pods := cloneSetApp(t, false)
		_ = unstructured.SetNestedField(cs.Object, "web-new", "status", "updateRevision")
		_ = unstructured.SetNestedField(cs.Object, int64(2), "metadata", "generation")
		_ = unstructured.SetNestedField(cs.Object, int64(2), "status", "observedGeneration")
		_ = unstructured.SetNestedMap(cs.Object, map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web", "v": "2"}}}, "spec", "template")
		cs.SetAnnotations(map[string]string{inProgressingAnnotation: "{}"})
		s.put(CloneSet, cs)
		progressing(s, 1)
		for i, p := range pods {
			p.Labels["controller-revision-hash"], p.Labels["pod-template-hash"] = "web-new", "new"
			s.put(Pod, p)
			if i == 0 {
				s.expect() // step 1's pod
			}
		}
		vs := s.expect(StepAllowance)
		if !strings.Contains(vs[0].Message, "6 new-version pods") || !strings.Contains(vs[0].Message, "maxSurge 0 = 5") {
			t.Errorf("message %q", vs[0].Message)
		}
	})
	t.Run("4: a jump back reported done while the pods stay", func(t *testing.T) {
		s := newScenario(t)
		a := newApp(s, threeSteps)
		a.release(v2)
		a.status(v1beta1.RolloutPhaseProgressing, 2, v1beta1.CanaryStepStatePaused)
		a.scale(v2, 5, 5)
		a.scale(v1, 5, 5)
		a.ro.Status.CanaryStatus.NextStepIndex = 1
		a.putRollout()
		a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStateMetricsAnalysis)
		s.wait(6 * time.Second) // 5 new pods, step 1 allows 1 + 3
		s.expect(StatusLag)
	})
}

// A release that completed while its Deployment's status lagged (the
// checker never saw it at rest) and was then replaced: the version it put
// in place is the stable one the next release starts from, so writing it
// back cancels that release, and its pods coming back are no new version's.
func TestStableAfterACompletionNeverSeenAtRest(t *testing.T) {
	s := newScenario(t)
	a := newApp(s, threeSteps)
	a.release(v2)
	a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStateUpgrade)
	a.scale(v2, 1, 1)
	a.status(v1beta1.RolloutPhaseProgressing, 3, v1beta1.CanaryStepStateUpgrade)
	a.scale(v2, 8, 8)
	a.scale(v1, 2, 2)
	a.scale(v2, 10, 10)
	a.scale(v1, 0, 0)
	// Finalised and completed, but the Deployment's status never caught up
	// before the next version was written.
	a.d.Spec.Paused = false
	a.d.Annotations = nil
	a.d.Generation++
	a.putDeployment()
	a.status(v1beta1.RolloutPhaseHealthy, 3, v1beta1.CanaryStepStateCompleted)
	a.release(v3)
	a.status(v1beta1.RolloutPhaseProgressing, 1, v1beta1.CanaryStepStateUpgrade)
	a.scale(v3, 1, 1)
	a.scale(v2, 9, 9)
	s.expect()
	// v2 written back: Sluice resumes the Deployment, which returns to v2.
	a.image = v2
	a.d.Spec.Template = template(v2)
	a.d.Generation++
	a.putDeployment()
	a.scale(v2, 10, 10)
	a.scale(v3, 0, 0)
	s.expect()
}
