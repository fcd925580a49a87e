//go:build e2e

package release_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/workload"
)

// approvals is a v1beta1 Rollout that waits for approval after 1 pod and
// after half of them.
func approvals(kind string) string {
	return fmt.Sprintf(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: gated
spec:
  workloadRef: {apiVersion: apps/v1, kind: %s, name: echoserver}
  strategy:
    canary:
      steps:
      - {replicas: 1, pause: {}}
      - {replicas: "50%%", pause: {}}
      - {replicas: "100%%"}
`, kind)
}

// startRelease creates a 4-pod echoserver with the gated Rollout and
// releases v2 up to the first approval.
func startRelease(t *testing.T) *fixture {
	f := newFixture(t, 4*time.Minute)
	f.createEchoserver(4)
	f.create(approvals("Deployment"))
	f.waitHealthy("gated")
	f.setImage("echoserver", imageV2)
	f.waitStep("gated", 1, v1beta1.CanaryStepStatePaused)
	f.waitPods("echoserver", imageV2, 1)
	return f
}

// assertReleased checks the Deployment is back under its own controller
// and every pod runs image.
func (f *fixture) assertReleased(image string) {
	f.t.Helper()
	d := f.waitDeploymentComplete("echoserver")
	f.waitPods("echoserver", image, int(*d.Spec.Replicas))
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		f.t.Errorf("strategy = %s, want RollingUpdate restored", d.Spec.Strategy.Type)
	}
	for _, k := range []string{workload.InProgressingAnnotation, workload.DeploymentStrategyAnnotation} {
		if _, ok := d.Annotations[k]; ok {
			f.t.Errorf("annotation %s left on the Deployment", k)
		}
	}
}

// Re-applying the old template mid-release cancels it: the workload goes
// back to v1 and the Rollout reports the cancellation.
func TestRollbackMidRelease(t *testing.T) {
	t.Parallel()
	f := startRelease(t)
	f.setImage("echoserver", imageV1)
	r := f.waitHealthy("gated")
	if c := condition(r, v1beta1.RolloutConditionSucceeded); c == nil || c.Status != "False" {
		t.Errorf("Succeeded condition = %+v, want False", c)
	}
	f.assertReleased(imageV1)
	// The cancelled state says what it is: the step it stopped at, no pod
	// of the cancelled revision, and how the release ended.
	r = f.rollout("gated")
	cs := r.Status.CanaryStatus
	if r.Status.CurrentStepIndex != 1 || cs.CurrentStepState != v1beta1.CanaryStepStateCompleted || cs.CanaryReplicas != 0 || cs.CanaryReadyReplicas != 0 || cs.CanaryRevision == cs.StableRevision {
		t.Errorf("cancelled status: step %d, canaryStatus %+v", r.Status.CurrentStepIndex, *cs)
	}
	if l := r.Status.LastRelease; l == nil || l.Outcome != v1beta1.OutcomeCancelled || l.Revision != cs.CanaryRevision || l.Step != 1 {
		t.Errorf("lastRelease %+v", l)
	}
	if r.Status.Release != nil || condition(r, v1beta1.RolloutConditionWaiting) != nil {
		t.Errorf("a release at rest still shows %+v / %+v", r.Status.Release, condition(r, v1beta1.RolloutConditionWaiting))
	}
}

// A jump back to an earlier step (kubectl-kruise rollout undo --fast
// patches status.canaryStatus.nextStepIndex) re-enters the step: the new
// pods go down to its count before the step counts as done.
func TestStepJumpBack(t *testing.T) {
	t.Parallel()
	f := startRelease(t)
	f.approve("gated")
	f.waitStep("gated", 2, v1beta1.CanaryStepStatePaused)
	f.waitPods("echoserver", imageV2, 2)

	u := &unstructured.Unstructured{}
	u.SetAPIVersion("rollouts.kruise.io/v1beta1")
	u.SetKind("Rollout")
	u.SetNamespace(f.ns)
	u.SetName("gated")
	if err := f.c.Status().Patch(f.ctx, u, client.RawPatch(types.MergePatchType, []byte(`{"status":{"canaryStatus":{"nextStepIndex":1}}}`))); err != nil {
		t.Fatal(err)
	}
	r := f.waitStep("gated", 1, v1beta1.CanaryStepStatePaused)
	if all, _ := f.podsByImage("echoserver"); all[imageV2] != 1 {
		t.Errorf("%d pods of v2 at step 1 after the jump, want 1", all[imageV2])
	}
	if b := r.Status.Release.Batch; b == nil || b.Step != 1 || b.Replicas != 1 || b.Shrink {
		t.Errorf("batch %+v after the jump", b)
	}
	for _, e := range f.events("gated") {
		if e.Reason == "StepUpgraded" && strings.HasPrefix(e.Note, "step 1/3") && !strings.HasPrefix(e.Note, "step 1/3: 1 of 4 pods") {
			t.Errorf("event %q: step 1 was done before its pods were", e.Note)
		}
	}
	f.approve("gated")
	f.waitStep("gated", 2, v1beta1.CanaryStepStatePaused)
	f.approve("gated")
	f.waitCompleted("gated")
	f.assertReleased(imageV2)
}

// v1 -> v2 -> v3 while v2 is being released restarts the release for v3
// at step 1, and v3 then completes.
func TestContinuousRelease(t *testing.T) {
	t.Parallel()
	f := startRelease(t)
	f.approve("gated")
	f.waitStep("gated", 2, v1beta1.CanaryStepStatePaused)
	f.waitPods("echoserver", imageV2, 2)

	f.setImage("echoserver", imageV3)
	f.waitRollout("gated", "step 1 of v3", func(r *v1beta1.Rollout) bool {
		return r.Status.CurrentStepIndex == 1 && r.Status.CurrentStepState == v1beta1.CanaryStepStatePaused &&
			r.Status.CanaryStatus.CanaryRevision != "" && r.Status.CanaryStatus.CanaryReadyReplicas == 1
	})
	f.waitPods("echoserver", imageV3, 1)
	f.waitPods("echoserver", imageV2, 0)
	f.approve("gated")
	f.waitStep("gated", 2, v1beta1.CanaryStepStatePaused)
	f.approve("gated")
	f.waitCompleted("gated")
	f.assertReleased(imageV3)
}

// Deleting the Rollout mid-release gives the workload back (it finishes
// on its own) and the finalizer goes; nothing stays paused.
func TestRolloutDeletedMidRelease(t *testing.T) {
	t.Parallel()
	f := startRelease(t)
	if err := f.c.Delete(f.ctx, f.rollout("gated")); err != nil {
		t.Fatal(err)
	}
	f.assertReleased(imageV2)
	f.waitGone("gated")
}

// Disabling the Rollout mid-release does the same, and the Rollout stays
// as Disabled; a later template change is not intercepted.
func TestRolloutDisabledMidRelease(t *testing.T) {
	t.Parallel()
	f := startRelease(t)
	r := f.rollout("gated")
	patch := client.MergeFrom(r.DeepCopy())
	r.Spec.Disabled = true
	if err := f.c.Patch(f.ctx, r, patch); err != nil {
		t.Fatal(err)
	}
	f.waitRollout("gated", "Disabled", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseDisabled })
	f.assertReleased(imageV2)
	f.setImage("echoserver", imageV3)
	f.assertReleased(imageV3)
}

// spec.strategy.paused holds the release; false resumes it.
func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	f := startRelease(t)
	setPaused := func(p bool) {
		r := f.rollout("gated")
		patch := client.MergeFrom(r.DeepCopy())
		r.Spec.Strategy.Paused = p
		if err := f.c.Patch(f.ctx, r, patch); err != nil {
			t.Fatal(err)
		}
	}
	setPaused(true)
	f.waitRollout("gated", "Paused", func(r *v1beta1.Rollout) bool {
		c := condition(r, v1beta1.RolloutConditionProgressing)
		return c != nil && c.Reason == v1beta1.ProgressingReasonPaused && r.Status.Message == "Rollout has been paused, you can resume it by kube-cli"
	})
	f.approve("gated")
	time.Sleep(2 * time.Second)
	if all, _ := f.podsByImage("echoserver"); all[imageV2] != 1 {
		t.Fatalf("a paused release moved: %v", all)
	}
	setPaused(false)
	f.waitStep("gated", 2, v1beta1.CanaryStepStatePaused)
	f.waitPods("echoserver", imageV2, 2)
}

// The same plan on a StatefulSet, released through its partition.
func TestStatefulSetRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 4*time.Minute)
	f.create(`
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: echoserver
spec:
  replicas: 4
  serviceName: echoserver
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: echoserver}}
  template:
    metadata: {labels: {app: echoserver}}
    spec:
      containers:
      - {name: echoserver, image: ` + imageV1 + `}
`)
	f.waitPods("echoserver", imageV1, 4)
	f.create(approvals("StatefulSet"))
	f.waitHealthy("gated")
	inv := f.watchNewPods("echoserver", imageV2, 1)
	f.setStatefulSetImage(imageV2)
	f.waitStep("gated", 1, v1beta1.CanaryStepStatePaused)
	f.waitPods("echoserver", imageV2, 1)
	inv.allow(2)
	f.approve("gated")
	f.waitStep("gated", 2, v1beta1.CanaryStepStatePaused)
	f.waitPods("echoserver", imageV2, 2)
	inv.allow(4)
	f.approve("gated")
	f.waitCompleted("gated")
	f.waitPods("echoserver", imageV2, 4)
	s := &appsv1.StatefulSet{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver"}, s); err != nil {
		t.Fatal(err)
	}
	if p := s.Spec.UpdateStrategy.RollingUpdate; p != nil && p.Partition != nil && *p.Partition != 0 {
		t.Errorf("partition left at %d", *p.Partition)
	}
}

func (f *fixture) setStatefulSetImage(image string) {
	s := &appsv1.StatefulSet{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver"}, s); err != nil {
		f.t.Fatal(err)
	}
	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Template.Spec.Containers[0].Image = image
	if err := f.c.Patch(f.ctx, s, patch); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) waitGone(name string) {
	f.t.Helper()
	err := framework.Poll(f.ctx, time.Minute, func() (bool, error) {
		err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, &v1beta1.Rollout{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		f.t.Fatalf("Rollout %s not deleted: %v", name, err)
	}
}

func condition(r *v1beta1.Rollout, t v1beta1.RolloutConditionType) *v1beta1.RolloutCondition {
	for i := range r.Status.Conditions {
		if r.Status.Conditions[i].Type == t {
			return &r.Status.Conditions[i]
		}
	}
	return nil
}
