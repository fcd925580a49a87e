//go:build e2e

package release_test

import (
	"context"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/workload"
)

// Canary style (enableExtraWorkloadForCanary, the v1alpha1 default): the
// stable Deployment keeps its pods while an extra canary Deployment grows
// step by step; at the end the stable Deployment rolls natively and the
// canary Deployment goes.
func TestCanaryStyleDeployment(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 4*time.Minute)
	f.createEchoserver(4)
	f.create(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: canary
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    canary:
      enableExtraWorkloadForCanary: true
      patchPodTemplateMetadata:
        labels: {track: canary}
      steps:
      - {replicas: 1, pause: {}}
      - {replicas: "50%", pause: {}}
      - {replicas: "100%"}
`)
	f.waitHealthy("canary")
	f.setImage("echoserver", imageV2)
	f.waitStep("canary", 1, v1beta1.CanaryStepStatePaused)
	f.waitPods("echoserver", imageV2, 1)
	f.waitPods("echoserver", imageV1, 4)
	canaries := f.canaryDeployments()
	if len(canaries) != 1 || *canaries[0].Spec.Replicas != 1 || canaries[0].Spec.Template.Labels["track"] != "canary" {
		t.Fatalf("canary Deployments: %+v", canaries)
	}
	if d := f.deployment("echoserver"); !d.Spec.Paused {
		t.Error("the stable Deployment must stay paused")
	}

	f.approve("canary")
	f.waitStep("canary", 2, v1beta1.CanaryStepStatePaused)
	f.waitPods("echoserver", imageV2, 2)
	f.waitPods("echoserver", imageV1, 4)

	f.approve("canary")
	f.waitCompleted("canary")
	f.assertCanaryReleased(imageV2)
}

// Rolling back a canary-style release deletes the canary Deployment.
func TestCanaryStyleRollback(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3*time.Minute)
	f.createEchoserver(3)
	f.create(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: canary
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    canary:
      enableExtraWorkloadForCanary: true
      steps:
      - {replicas: 1, pause: {}}
      - {replicas: "100%"}
`)
	f.waitHealthy("canary")
	f.setImage("echoserver", imageV2)
	f.waitStep("canary", 1, v1beta1.CanaryStepStatePaused)
	f.waitPods("echoserver", imageV2, 1)
	f.setImage("echoserver", imageV1)
	f.waitHealthy("canary")
	f.assertCanaryReleased(imageV1)
}

func (f *fixture) canaryDeployments() []appsv1.Deployment {
	var list appsv1.DeploymentList
	if err := f.c.List(f.ctx, &list, client.InNamespace(f.ns), client.MatchingLabels{workload.CanaryDeploymentLabel: "echoserver"}); err != nil {
		f.t.Fatal(err)
	}
	return list.Items
}

func (f *fixture) assertCanaryReleased(image string) {
	f.t.Helper()
	d := f.waitDeploymentComplete("echoserver")
	f.waitPods("echoserver", image, int(*d.Spec.Replicas))
	if n := len(f.canaryDeployments()); n != 0 {
		f.t.Errorf("%d canary Deployments left", n)
	}
	if _, ok := d.Annotations[workload.InProgressingAnnotation]; ok {
		f.t.Error("in-progressing annotation left")
	}
}

// A canary Deployment is created once per version, even by a reconcile
// whose cache does not show the one created a moment before (after a
// restart, a failover, or simply a slow watch): the second create fails
// instead of starting a second canary, which the first reconcile that saw
// both would have deleted, taking released pods away (found by the chaos
// suite).
func TestCanaryDeploymentCreatedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2*time.Minute)
	f.createEchoserver(2)
	// A Rollout of another workload owns the canaries here: the test, not
	// the controller, drives the adapter.
	f.create(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: owner
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: absent}
  strategy:
    canary:
      enableExtraWorkloadForCanary: true
      steps: [{replicas: 1}]
`)
	f.setImage("echoserver", imageV2)
	adapter := func(c client.Client) *workload.CanaryDeployment {
		return &workload.CanaryDeployment{Client: c, Key: client.ObjectKey{Namespace: f.ns, Name: "echoserver"}, Rollout: f.rollout("owner")}
	}
	if err := framework.Poll(f.ctx, time.Minute, func() (bool, error) {
		d := f.deployment("echoserver")
		return d.Status.ObservedGeneration >= d.Generation, nil
	}); err != nil {
		t.Fatal(err)
	}
	rev := workload.TemplateHash(&f.deployment("echoserver").Spec.Template, nil)
	batch := workload.Batch{Updated: 1, Revision: rev}
	if err := adapter(f.c).Release(f.ctx, batch); err != nil {
		t.Fatal(err)
	}
	err := adapter(canariesUnseen{f.c}).Release(f.ctx, batch)
	if !apierrors.IsAlreadyExists(err) {
		t.Errorf("the second create: %v, want AlreadyExists", err)
	}
	if n := len(f.canaryDeployments()); n != 1 {
		t.Errorf("%d canary Deployments, want 1", n)
	}
}

// canariesUnseen reads as a cache that has not seen any canary Deployment
// yet.
type canariesUnseen struct{ client.Client }

func (c canariesUnseen) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := c.Client.List(ctx, list, opts...); err != nil {
		return err
	}
	if l, ok := list.(*appsv1.DeploymentList); ok {
		l.Items = slices.DeleteFunc(l.Items, func(d appsv1.Deployment) bool { return d.Labels[workload.CanaryDeploymentLabel] != "" })
	}
	return nil
}
