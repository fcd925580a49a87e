//go:build e2e

package release_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// Blue-green on the guide's echoserver behind its Nginx Ingress: the new
// pods come up beside all the old ones (half, then all, with no traffic),
// then traffic switches and only then do the old pods go.
func TestBlueGreenDeployment(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 5*time.Minute)
	f.createEchoserver(4)
	f.createFile("example1-ingress.yaml")
	f.create(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: bluegreen
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    blueGreen:
      steps:
      - {replicas: 50%, traffic: 0%, pause: {}}
      - {replicas: 100%, traffic: 0%, pause: {}}
      - {replicas: 100%, traffic: 100%}
      trafficRoutings:
      - service: echoserver
        gracePeriodSeconds: 1
        ingress: {name: echoserver}
`)
	f.waitHealthy("bluegreen")
	orig := routingObjects{service: &corev1.Service{}, ingress: &networkingv1.Ingress{}}
	f.get("echoserver", orig.service)
	f.get("echoserver", orig.ingress)
	f.setImage("echoserver", imageV2)

	r := f.waitBlueGreenStep(1)
	f.waitPods("echoserver", imageV2, 2)
	f.waitPods("echoserver", imageV1, 4)
	bg := r.Status.BlueGreenStatus
	stable := &corev1.Service{}
	f.get("echoserver", stable)
	if stable.Spec.Selector["pod-template-hash"] != bg.StableRevision {
		t.Errorf("stable Service selector %v, want pinned to %s", stable.Spec.Selector, bg.StableRevision)
	}
	ing := &networkingv1.Ingress{}
	f.get("echoserver-canary", ing)
	if w := ing.Annotations["nginx.ingress.kubernetes.io/canary-weight"]; w != "0" {
		t.Errorf("canary weight %q before the switch, want 0", w)
	}

	f.approveBlueGreen("bluegreen")
	f.waitBlueGreenStep(2)
	f.waitPods("echoserver", imageV2, 4)
	f.waitPods("echoserver", imageV1, 4)
	if d := f.deployment("echoserver"); !d.Spec.Paused {
		t.Error("the Deployment must stay paused until the switch")
	}

	f.approveBlueGreen("bluegreen")
	r = f.waitCompleted("bluegreen")
	if bg := r.Status.BlueGreenStatus; bg == nil || bg.StableRevision != bg.UpdatedRevision || r.Status.CanaryStatus != nil {
		t.Errorf("status after the switch: %+v", r.Status)
	}
	f.assertReleased(imageV2)
	f.checkRestored(orig)
	svc := &corev1.Service{}
	f.get("echoserver", svc)
	if d := cmp.Diff(orig.service.Spec.Selector, svc.Spec.Selector); d != "" {
		t.Errorf("stable selector (-orig +now):\n%s", d)
	}
}

func (f *fixture) waitBlueGreenStep(step int32) *v1beta1.Rollout {
	f.t.Helper()
	return f.waitRollout("bluegreen", "blue-green step", func(r *v1beta1.Rollout) bool {
		bg := r.Status.BlueGreenStatus
		return bg != nil && bg.CurrentStepIndex == step && bg.CurrentStepState == v1beta1.CanaryStepStatePaused
	})
}

// approveBlueGreen sends kubectl-kruise's approval for blue-green.
func (f *fixture) approveBlueGreen(name string) {
	f.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("rollouts.kruise.io/v1beta1")
	u.SetKind("Rollout")
	u.SetNamespace(f.ns)
	u.SetName(name)
	body := []byte(`{"status":{"blueGreenStatus":{"currentStepState":"StepReady"}}}`)
	if err := f.c.Status().Patch(f.ctx, u, client.RawPatch(types.MergePatchType, body)); err != nil {
		f.t.Fatal(err)
	}
}

// Rolling a blue-green release back (the old template re-applied) keeps
// the old pods serving and removes the new ones.
func TestBlueGreenRollback(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 4*time.Minute)
	f.createEchoserver(3)
	f.create(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: bluegreen
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    blueGreen:
      steps:
      - {replicas: 100%, pause: {}}
      - {replicas: 100%}
`)
	f.waitHealthy("bluegreen")
	f.setImage("echoserver", imageV2)
	f.waitBlueGreenStep(1)
	f.waitPods("echoserver", imageV2, 3)
	f.waitPods("echoserver", imageV1, 3)
	f.setImage("echoserver", imageV1)
	r := f.waitHealthy("bluegreen")
	if c := condition(r, v1beta1.RolloutConditionSucceeded); c == nil || c.Status != "False" {
		t.Errorf("Succeeded = %+v, want False", c)
	}
	f.assertReleased(imageV1)
	if d := f.deployment("echoserver"); d.Spec.MinReadySeconds != 0 || d.Spec.ProgressDeadlineSeconds == nil || *d.Spec.ProgressDeadlineSeconds != 600 {
		t.Errorf("timings not restored: minReadySeconds %d, progressDeadlineSeconds %v", d.Spec.MinReadySeconds, d.Spec.ProgressDeadlineSeconds)
	}
}
