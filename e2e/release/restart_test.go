//go:build e2e

package release_test

import (
	"testing"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// The controller is killed (SIGKILL) in each state of a release and
// restarted; the release resumes from the Rollout's status alone and ends
// as documented. Not parallel: the webhooks are down while it is killed.
func TestControllerKilledInEveryState(t *testing.T) {
	f := startRelease(t)
	restart := func() {
		t.Helper()
		env.Manager.Kill()
		if err := env.Manager.Start(f.ctx, env.ControlPlane); err != nil {
			t.Fatal(err)
		}
	}

	// StepPaused: the approval arrives while no controller runs (as
	// v1beta1: converting v1alpha1 needs the manager's webhook).
	env.Manager.Kill()
	f.approveAs("v1beta1", "gated")
	if err := env.Manager.Start(f.ctx, env.ControlPlane); err != nil {
		t.Fatal(err)
	}
	f.waitStep("gated", 2, v1beta1.CanaryStepStatePaused)
	f.waitPods("echoserver", imageV2, 2)
	f.waitPods("echoserver", imageV1, 2)

	// StepUpgrade: killed right after the approval, mid-batch.
	f.approve("gated")
	restart()
	r := f.waitCompleted("gated")
	if r.Status.CurrentStepIndex != 3 {
		t.Errorf("completed at step %d, want 3", r.Status.CurrentStepIndex)
	}
	f.assertReleased(imageV2)

	// Healthy: a restart changes nothing.
	restart()
	if r := f.waitHealthy("gated"); r.Status.CurrentStepState != v1beta1.CanaryStepStateCompleted {
		t.Errorf("state after a restart while Healthy: %s", r.Status.CurrentStepState)
	}

	// Finalising and cancelling: a rollback, killed at once.
	f.setImage("echoserver", imageV3)
	f.waitStep("gated", 1, v1beta1.CanaryStepStatePaused)
	f.setImage("echoserver", imageV2)
	restart()
	f.waitHealthy("gated")
	f.assertReleased(imageV2)
}
