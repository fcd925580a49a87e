//go:build e2e

package release_test

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// The guide's Example 4, verbatim, on a 10-replica echoserver: one pod,
// manual approval with kubectl-kruise's patch, half the pods, a 60-second
// pause, all pods, then Healthy / Completed with the Deployment resumed and
// its strategy restored.
func TestExample4BatchRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 6*time.Minute)
	f.createEchoserver(10)
	original := f.deployment("echoserver").Spec.Strategy
	f.createFile("example4-rollout.yaml")
	f.waitHealthy("rollouts-demo")

	inv := f.watchNewPods("echoserver", imageV2, 1)
	f.setImage("echoserver", imageV2)

	r := f.waitStep("rollouts-demo", 1, v1beta1.CanaryStepStatePaused)
	if want := "Rollout is in step(1/3), and you need manually confirm to enter the next step"; r.Status.Message != want {
		t.Errorf("message = %q, want %q", r.Status.Message, want)
	}
	f.waitPods("echoserver", imageV2, 1)
	f.waitPods("echoserver", imageV1, 9)
	d := f.deployment("echoserver")
	if !d.Spec.Paused || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("during the release the Deployment must stay paused on Recreate; got paused=%v strategy=%s", d.Spec.Paused, d.Spec.Strategy.Type)
	}
	if r.Status.CanaryStatus.CanaryReplicas != 1 || r.Status.CanaryStatus.CanaryReadyReplicas != 1 {
		t.Errorf("canary replicas %d ready %d, want 1/1", r.Status.CanaryStatus.CanaryReplicas, r.Status.CanaryStatus.CanaryReadyReplicas)
	}
	// Nothing moves without approval.
	time.Sleep(2 * time.Second)
	if r := f.rollout("rollouts-demo"); r.Status.CurrentStepIndex != 1 || r.Status.CurrentStepState != v1beta1.CanaryStepStatePaused {
		t.Fatalf("moved without approval: step %d %s", r.Status.CurrentStepIndex, r.Status.CurrentStepState)
	}

	inv.allow(5)
	f.approve("rollouts-demo")
	r = f.waitStep("rollouts-demo", 2, v1beta1.CanaryStepStatePaused)
	if !strings.Contains(r.Status.Message, "wait duration(60 seconds)") {
		t.Errorf("message = %q", r.Status.Message)
	}
	f.waitPods("echoserver", imageV2, 5)
	f.waitPods("echoserver", imageV1, 5)
	for _, p := range f.pods("echoserver", imageV2) {
		if p.Labels[workload.BatchIDLabel] == "" {
			t.Errorf("pod %s has no %s label", p.Name, workload.BatchIDLabel)
		}
	}

	inv.allow(10)
	r = f.waitCompleted("rollouts-demo")
	if r.Status.CurrentStepIndex != 3 || r.Status.Message != "Rollout progressing has been completed" {
		t.Errorf("completed status: step %d message %q", r.Status.CurrentStepIndex, r.Status.Message)
	}
	d = f.waitDeploymentComplete("echoserver")
	f.waitPods("echoserver", imageV2, 10)
	if !equality.Semantic.DeepEqual(d.Spec.Strategy, original) {
		t.Errorf("strategy not restored: %+v, want %+v", d.Spec.Strategy, original)
	}
	for _, k := range []string{workload.InProgressingAnnotation, workload.DeploymentStrategyAnnotation, workload.ControlInfoAnnotation} {
		if _, ok := d.Annotations[k]; ok {
			t.Errorf("annotation %s left on the Deployment", k)
		}
	}
}
