//go:build e2e

package release_test

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
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
