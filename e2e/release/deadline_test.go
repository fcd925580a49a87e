//go:build e2e

package release_test

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/rollout"
)

// A version whose pods never become ready (a kwok stage keeps them in
// CrashLoopBackOff) stops at its batch: after progressDeadlineSeconds the
// Rollout names the stuck pods and why, and no further pod is replaced.
func TestStuckBatchIsReported(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3*time.Minute)
	f.createEchoserver(4)
	f.create(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: deadline
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    progressDeadlineSeconds: 3
    canary:
      steps:
      - {replicas: 2, pause: {duration: 0}}
      - {replicas: "100%"}
`)
	f.waitHealthy("deadline")
	inv := f.watchNewPods("echoserver", imageV2, 2)

	d := f.deployment("echoserver")
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Labels[framework.NeverReadyLabel] = "true"
	d.Spec.Template.Spec.Containers[0].Image = imageV2
	if err := f.c.Patch(f.ctx, d, patch); err != nil {
		t.Fatal(err)
	}
	r := f.waitRollout("deadline", "the ProgressDeadline condition", func(r *v1beta1.Rollout) bool {
		c := condition(r, rollout.ConditionProgressDeadline)
		return c != nil && c.Status == "True"
	})
	c := condition(r, rollout.ConditionProgressDeadline)
	if !strings.Contains(c.Message, "CrashLoopBackOff") || !strings.Contains(c.Message, "echoserver-") || !strings.Contains(c.Message, "0 of 2 new pods ready") {
		t.Errorf("condition message does not name the stuck pods: %q", c.Message)
	}
	if r.Status.Message != c.Message || r.Status.CurrentStepIndex != 1 || r.Status.CurrentStepState != v1beta1.CanaryStepStateUpgrade {
		t.Errorf("status: step %d %s message %q", r.Status.CurrentStepIndex, r.Status.CurrentStepState, r.Status.Message)
	}
	time.Sleep(2 * time.Second)
	all, _ := f.podsByImage("echoserver")
	if all[imageV2] != 2 || all[imageV1] < 2 {
		t.Errorf("a stuck batch must hold: pods %v", all)
	}

	// Rolling back by re-applying the old template recovers.
	d = f.deployment("echoserver")
	patch = client.MergeFrom(d.DeepCopy())
	delete(d.Spec.Template.Labels, framework.NeverReadyLabel)
	d.Spec.Template.Spec.Containers[0].Image = imageV1
	if err := f.c.Patch(f.ctx, d, patch); err != nil {
		t.Fatal(err)
	}
	r = f.waitHealthy("deadline")
	if condition(r, rollout.ConditionProgressDeadline) != nil {
		t.Error("the condition must go with the release")
	}
	f.assertReleased(imageV1)
	_ = inv // checked when the test ends
}
