//go:build e2e

package release_test

import (
	"maps"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/framework"
)

// guideIngress is one of the guide's Examples 1-3: its Ingress and Rollout
// files, and the canary Ingress annotations Sluice writes at each step.
type guideIngress struct {
	name, ingress, rollout string
	steps                  []map[string]string
}

func guideIngressExamples() []guideIngress {
	nginx := func(k string) string { return "nginx.ingress.kubernetes.io/" + k }
	alb := func(k string) string { return "alb.ingress.kubernetes.io/" + k }
	return []guideIngress{
		{name: "example 1 nginx", ingress: "example1-ingress.yaml", rollout: "example1-rollout.yaml", steps: []map[string]string{
			{"kubernetes.io/ingress.class": "nginx", nginx("canary"): "true", nginx("canary-by-header"): "User-Agent", nginx("canary-by-header-value"): "Andriod"},
			{"kubernetes.io/ingress.class": "nginx", nginx("canary"): "true", nginx("canary-weight"): "50"},
			{"kubernetes.io/ingress.class": "nginx", nginx("canary"): "true", nginx("canary-weight"): "100"},
		}},
		{name: "example 2 aliyun-alb", ingress: "example2-ingress.yaml", rollout: "example2-rollout.yaml", steps: []map[string]string{
			{alb("canary"): "true", alb("order"): "1", alb("canary-by-header"): "User-Agent", alb("canary-by-header-value"): "Andriod"},
			{alb("canary"): "true", alb("order"): "1", alb("canary-weight"): "50"},
			{alb("canary"): "true", alb("order"): "1", alb("canary-weight"): "100"},
		}},
		// The guide's MSE example applies Example 1's Rollout to an Ingress of class mse.
		{name: "example 3 mse", ingress: "example3-ingress.yaml", rollout: "example1-rollout.yaml", steps: []map[string]string{
			{nginx("canary"): "true", nginx("canary-by-header"): "User-Agent", nginx("canary-by-header-value"): "Andriod"},
			{nginx("canary"): "true", nginx("canary-weight"): "50"},
			{nginx("canary"): "true", nginx("canary-weight"): "100"},
		}},
	}
}

// The guide's Examples 1, 2 and 3, applied unchanged and released through
// the controller: at each step the Services and the canary Ingress are
// exactly what the step asks; at the end everything is back as it was.
func TestGuideIngressExamples(t *testing.T) {
	t.Parallel()
	for _, ex := range guideIngressExamples() {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			f, orig := ex.start(t)
			for i, want := range ex.steps[:2] {
				r := f.waitStep("rollouts-demo", int32(i+1), v1beta1.CanaryStepStatePaused)
				f.checkRouting(r, orig, want, false)
				f.approve("rollouts-demo")
			}
			// The last step, at 100%, does not pause: its routing stands
			// for the grace period before finalising takes it down.
			f.waitCanaryIngress(ex.steps[2])
			f.checkRouting(f.rollout("rollouts-demo"), orig, ex.steps[2], true)
			f.waitCompleted("rollouts-demo")
			f.checkRestored(orig)
			f.waitDeploymentComplete("echoserver")
			f.waitPods("echoserver", imageV2, 5)
		})
	}
}

// Rolling back at 50% (the old template re-applied) takes traffic back to
// stable before the new pods go; deleting the Rollout mid-release gives
// everything back too.
func TestGuideExample1Interrupted(t *testing.T) {
	t.Parallel()
	ex := guideIngressExamples()[0]
	t.Run("rollback at 50%", func(t *testing.T) {
		t.Parallel()
		f, orig := ex.start(t)
		f.approve("rollouts-demo")
		r := f.waitStep("rollouts-demo", 2, v1beta1.CanaryStepStatePaused)
		f.checkRouting(r, orig, ex.steps[1], false)
		f.setImage("echoserver", imageV1)
		r = f.waitCompleted("rollouts-demo")
		if c := r.Status.CanaryStatus; c.StableRevision == c.CanaryRevision {
			t.Errorf("a rollback must not promote: stable %s canary %s", c.StableRevision, c.CanaryRevision)
		}
		f.checkRestored(orig)
		f.waitDeploymentComplete("echoserver")
		f.waitPods("echoserver", imageV1, 5)
	})
	t.Run("deleted at step 1", func(t *testing.T) {
		t.Parallel()
		f, orig := ex.start(t)
		if err := f.c.Delete(f.ctx, f.rollout("rollouts-demo")); err != nil {
			t.Fatal(err)
		}
		err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
			err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "rollouts-demo"}, &v1beta1.Rollout{})
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		})
		if err != nil {
			t.Fatalf("the Rollout was never let go: %v\n%s", err, env.Manager.LogTail())
		}
		f.checkRestored(orig)
		f.waitDeploymentComplete("echoserver")
	})
}

// routingObjects are the stable Service and Ingress before the release.
type routingObjects struct {
	service *corev1.Service
	ingress *networkingv1.Ingress
}

// start creates the example's objects, releases imageV2 and waits for step 1.
func (ex guideIngress) start(t *testing.T) (*fixture, routingObjects) {
	f := newFixture(t, 5*time.Minute)
	f.createEchoserver(5)
	f.createFile(ex.ingress)
	f.createFile(ex.rollout)
	f.waitHealthy("rollouts-demo")
	orig := routingObjects{service: &corev1.Service{}, ingress: &networkingv1.Ingress{}}
	f.get("echoserver", orig.service)
	f.get("echoserver", orig.ingress)
	f.setImage("echoserver", imageV2)
	f.waitStep("rollouts-demo", 1, v1beta1.CanaryStepStatePaused)
	return f, orig
}

func (f *fixture) get(name string, obj client.Object) {
	f.t.Helper()
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, obj); err != nil {
		f.t.Fatal(err)
	}
}

// checkRouting asserts the Services and the canary Ingress at a step. At
// the last step every pod is new, so the stable Service selects them all.
func (f *fixture) checkRouting(r *v1beta1.Rollout, orig routingObjects, annotations map[string]string, allNew bool) {
	f.t.Helper()
	cs := r.Status.CanaryStatus
	stable, canary := &corev1.Service{}, &corev1.Service{}
	f.get("echoserver", stable)
	f.get("echoserver-canary", canary)
	wantStable := maps.Clone(orig.service.Spec.Selector)
	if !allNew {
		wantStable["pod-template-hash"] = cs.StableRevision
	}
	if d := cmp.Diff(wantStable, stable.Spec.Selector); d != "" {
		f.t.Errorf("step %d: stable selector (-want +got):\n%s", cs.CurrentStepIndex, d)
	}
	wantCanary := maps.Clone(orig.service.Spec.Selector)
	wantCanary["pod-template-hash"] = cs.PodTemplateHash
	if d := cmp.Diff(wantCanary, canary.Spec.Selector); d != "" {
		f.t.Errorf("step %d: canary selector (-want +got):\n%s", cs.CurrentStepIndex, d)
	}
	if cs.PodTemplateHash == cs.StableRevision || cs.PodTemplateHash == "" {
		f.t.Errorf("podTemplateHash %q, stable %q", cs.PodTemplateHash, cs.StableRevision)
	}
	ing := &networkingv1.Ingress{}
	f.get("echoserver-canary", ing)
	if d := cmp.Diff(annotations, ing.Annotations); d != "" {
		f.t.Errorf("step %d: canary Ingress annotations (-want +got):\n%s", cs.CurrentStepIndex, d)
	}
	want := orig.ingress.Spec.DeepCopy()
	want.Rules[0].HTTP.Paths[0].Backend.Service.Name = "echoserver-canary"
	if d := cmp.Diff(*want, ing.Spec); d != "" {
		f.t.Errorf("step %d: canary Ingress spec (-want +got):\n%s", cs.CurrentStepIndex, d)
	}
}

// waitCanaryIngress waits until the canary Ingress has the annotations.
func (f *fixture) waitCanaryIngress(annotations map[string]string) {
	f.t.Helper()
	ing := &networkingv1.Ingress{}
	err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
		err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver-canary"}, ing)
		return err == nil && maps.Equal(ing.Annotations, annotations), client.IgnoreNotFound(err)
	})
	if err != nil {
		f.t.Fatalf("canary Ingress annotations never became %v (last %v): %v", annotations, ing.Annotations, err)
	}
}

// checkRestored asserts that the canary objects are gone and the stable
// ones are back to their original specs.
func (f *fixture) checkRestored(orig routingObjects) {
	f.t.Helper()
	for _, obj := range []client.Object{&corev1.Service{}, &networkingv1.Ingress{}} {
		err := framework.Poll(f.ctx, time.Minute, func() (bool, error) {
			err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver-canary"}, obj)
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		})
		if err != nil {
			f.t.Errorf("canary %T still there: %v", obj, err)
		}
	}
	svc, ing := &corev1.Service{}, &networkingv1.Ingress{}
	f.get("echoserver", svc)
	f.get("echoserver", ing)
	if !equality.Semantic.DeepEqual(orig.service.Spec, svc.Spec) {
		f.t.Errorf("stable Service not restored (-orig +now):\n%s", cmp.Diff(orig.service.Spec, svc.Spec))
	}
	if !equality.Semantic.DeepEqual(orig.ingress.Spec, ing.Spec) || !equality.Semantic.DeepEqual(orig.ingress.Annotations, ing.Annotations) {
		f.t.Errorf("stable Ingress changed (-orig +now):\n%s", cmp.Diff(orig.ingress, ing))
	}
}
