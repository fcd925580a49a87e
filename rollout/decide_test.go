package rollout

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// example4 is the guide's Example 4 plan: 1 pod and approval, 50% and 60s,
// 100%.
func example4() *v1beta1.Rollout {
	one, half, all := intstr.FromInt32(1), intstr.FromString("50%"), intstr.FromString("100%")
	sixty := int32(60)
	return &v1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Name: "rollouts-demo", Generation: 1},
		Spec: v1beta1.RolloutSpec{
			WorkloadRef: v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "echoserver"},
			Strategy: v1beta1.RolloutStrategy{Canary: &v1beta1.CanaryStrategy{Steps: []v1beta1.CanaryStep{
				{Replicas: &one},
				{Replicas: &half, Pause: v1beta1.RolloutPause{Duration: &sixty}},
				{Replicas: &all, Pause: v1beta1.RolloutPause{Duration: &sixty}},
			}}},
		},
	}
}

// stable is a 10-pod workload at rest; frozen one that just got v2.
func stable() *workload.Info {
	return &workload.Info{Replicas: 10, StableRevision: "v1", UpdateRevision: "v1", Updated: 10, UpdatedReady: 10, Settled: true, Released: true}
}

func frozen(updated, ready int32) *workload.Info {
	return &workload.Info{Replicas: 10, Frozen: true, StableRevision: "v1", UpdateRevision: "v2", PodRevision: "v2", Updated: updated, UpdatedReady: ready, Others: 10 - updated, Settled: true, Controlled: true}
}

// inStep is a Rollout of example4 in the middle of releasing v2.
func inStep(step int32, state v1beta1.CanaryStepState, since time.Time) *v1beta1.Rollout {
	r := example4()
	ts := metav1.NewTime(since)
	r.Status = v1beta1.RolloutStatus{Phase: v1beta1.RolloutPhaseProgressing, CanaryStatus: &v1beta1.CanaryStatus{
		CommonStatus: v1beta1.CommonStatus{StableRevision: "v1", PodTemplateHash: "v2", CurrentStepIndex: step,
			NextStepIndex: expectedNext(step, 3), CurrentStepState: state, LastUpdateTime: &ts},
		CanaryRevision: "v2",
	}}
	r.Status.Release = &v1beta1.ReleaseStatus{Started: ts, Batch: &v1beta1.BatchStatus{Step: step, Replicas: example4().Spec.Strategy.Canary.Steps[step-1].ReplicasFor(10)}}
	return withReason(r, v1beta1.ProgressingReasonInRolling)
}

// withReason sets the Progressing condition's reason.
func withReason(r *v1beta1.Rollout, reason string) *v1beta1.Rollout {
	removeCondition(&r.Status, v1beta1.RolloutConditionProgressing)
	r.Status.Conditions = append(r.Status.Conditions, v1beta1.RolloutCondition{
		Type: v1beta1.RolloutConditionProgressing, Status: corev1.ConditionTrue, Reason: reason,
		LastUpdateTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0),
	})
	return r
}

func TestDecide(t *testing.T) {
	deleting := func(r *v1beta1.Rollout) *v1beta1.Rollout { r.DeletionTimestamp = &metav1.Time{Time: t0}; return r }
	disabled := func(r *v1beta1.Rollout) *v1beta1.Rollout { r.Spec.Disabled = true; return r }
	paused := func(r *v1beta1.Rollout) *v1beta1.Rollout { r.Spec.Strategy.Paused = true; return r }
	jumpTo := func(r *v1beta1.Rollout, i int32) *v1beta1.Rollout { r.Status.CanaryStatus.NextStepIndex = i; return r }
	released := func(i *workload.Info) *workload.Info { i.Frozen, i.Released, i.Others = false, true, 0; return i }
	rolledBack := func() *workload.Info {
		i := frozen(1, 1)
		i.UpdateRevision, i.PodRevision = "v1", "v1"
		return i
	}
	v3 := func() *workload.Info { i := frozen(1, 1); i.UpdateRevision, i.PodRevision = "v3", "v3"; return i }

	cases := []struct {
		name      string
		rollout   *v1beta1.Rollout
		workload  *workload.Info
		now       time.Time
		phase     v1beta1.RolloutPhase
		step      int32
		state     v1beta1.CanaryStepState
		reason    string // Progressing condition's reason, when checked
		action    Action
		batch     int32 // Decision.Batch.Updated when action is Release
		message   string
		hold      v1beta1.HoldReason // status.release.hold.reason, when checked
		requeue   time.Duration
		succeeded corev1.ConditionStatus // Succeeded condition, when checked
	}{
		{name: "new Rollout becomes Healthy", rollout: example4(), workload: stable(), phase: v1beta1.RolloutPhaseHealthy, message: msgHealthy},
		{name: "workload missing", rollout: example4(), phase: v1beta1.RolloutPhaseHealthy, message: "Deployment echoserver not found: the Rollout waits for it"},
		{name: "frozen workload starts a release with its first batch", rollout: func() *v1beta1.Rollout { r := example4(); r.Status.Phase = v1beta1.RolloutPhaseHealthy; return r }(),
			workload: frozen(0, 0), phase: v1beta1.RolloutPhaseProgressing, step: 1, state: v1beta1.CanaryStepStateUpgrade, reason: v1beta1.ProgressingReasonInRolling, action: Release, batch: 1, hold: v1beta1.HoldWaitingForPods},
		{name: "a workload not yet under control is prepared first", rollout: inStep(1, v1beta1.CanaryStepStateUpgrade, t0),
			workload: func() *workload.Info { i := frozen(0, 0); i.Controlled = false; return i }(), step: 1, state: v1beta1.CanaryStepStateUpgrade, action: Prepare, hold: v1beta1.HoldWaitingForPods},
		{name: "nothing is released while the workload's controller has not seen its spec", rollout: inStep(1, v1beta1.CanaryStepStateUpgrade, t0),
			workload: func() *workload.Info { i := frozen(0, 0); i.Settled = false; return i }(), step: 1, state: v1beta1.CanaryStepStateUpgrade, action: NoAction, hold: v1beta1.HoldWaitingForPods},
		{name: "a frozen workload not yet settled waits", rollout: func() *v1beta1.Rollout { r := example4(); r.Status.Phase = v1beta1.RolloutPhaseHealthy; return r }(),
			workload: func() *workload.Info { i := frozen(0, 0); i.Settled = false; return i }(), phase: v1beta1.RolloutPhaseHealthy},
		{name: "upgrade releases the step's batch", rollout: inStep(1, v1beta1.CanaryStepStateUpgrade, t0), workload: frozen(0, 0),
			phase: v1beta1.RolloutPhaseProgressing, step: 1, state: v1beta1.CanaryStepStateUpgrade, action: Release, batch: 1, message: msgUpgrade(1, 3)},
		{name: "a batch with unready pods is not done", rollout: inStep(1, v1beta1.CanaryStepStateUpgrade, t0), workload: frozen(1, 0),
			step: 1, state: v1beta1.CanaryStepStateUpgrade, action: Release, batch: 1},
		{name: "a batch whose old pods are not yet gone is not done", rollout: inStep(1, v1beta1.CanaryStepStateUpgrade, t0),
			workload: func() *workload.Info { i := frozen(1, 1); i.Others = 10; return i }(), step: 1, state: v1beta1.CanaryStepStateUpgrade, action: Release, batch: 1},
		{name: "a batch beside pods of a version replaced mid-release is not done", rollout: inStep(1, v1beta1.CanaryStepStateUpgrade, t0),
			workload: func() *workload.Info { i := frozen(1, 1); i.Intermediate = 1; return i }(), step: 1, state: v1beta1.CanaryStepStateUpgrade, action: Release, batch: 1},
		{name: "a ready batch waits for approval", rollout: inStep(1, v1beta1.CanaryStepStateUpgrade, t0), workload: frozen(1, 1),
			step: 1, state: v1beta1.CanaryStepStatePaused, action: Release, batch: 1, message: msgManualConfirm(1, 3), hold: v1beta1.HoldWaitingForApproval},
		{name: "approval enters the next step and releases it", rollout: inStep(1, v1beta1.CanaryStepStateReady, t0), workload: frozen(1, 1),
			step: 2, state: v1beta1.CanaryStepStateUpgrade, action: Release, batch: 5, message: msgUpgrade(2, 3)},
		{name: "a timed pause waits until its end", rollout: inStep(2, v1beta1.CanaryStepStatePaused, t0), workload: frozen(5, 5), now: t0.Add(20 * time.Second),
			step: 2, state: v1beta1.CanaryStepStatePaused, message: msgWaitDuration(2, 3, 60), requeue: 40 * time.Second, hold: v1beta1.HoldTimedPause},
		{name: "a timed pause ends by itself", rollout: inStep(2, v1beta1.CanaryStepStatePaused, t0), workload: frozen(5, 5), now: t0.Add(61 * time.Second),
			step: 3, state: v1beta1.CanaryStepStateUpgrade, action: Release, batch: 10},
		{name: "the last step at 100% finishes without its pause", rollout: inStep(3, v1beta1.CanaryStepStateUpgrade, t0), workload: frozen(10, 10),
			phase: v1beta1.RolloutPhaseProgressing, state: v1beta1.CanaryStepStateCompleted, reason: v1beta1.ProgressingReasonFinalising, action: Finalise, message: msgFinalising},
		{name: "finalising waits for the workload", rollout: withReason(inStep(3, v1beta1.CanaryStepStateCompleted, t0), v1beta1.ProgressingReasonFinalising),
			workload: func() *workload.Info { i := released(frozen(10, 10)); i.Released = false; return i }(), phase: v1beta1.RolloutPhaseProgressing, action: Finalise},
		{name: "finalising completes", rollout: withReason(inStep(3, v1beta1.CanaryStepStateCompleted, t0), v1beta1.ProgressingReasonFinalising),
			workload: released(frozen(10, 10)), phase: v1beta1.RolloutPhaseHealthy, step: 3, state: v1beta1.CanaryStepStateCompleted,
			reason: v1beta1.ProgressingReasonCompleted, message: msgCompleted, succeeded: corev1.ConditionTrue},
		{name: "the old template back cancels", rollout: inStep(1, v1beta1.CanaryStepStatePaused, t0), workload: rolledBack(),
			reason: v1beta1.ProgressingReasonCancelling, action: Finalise, message: msgCancelling},
		{name: "cancelling completes as not succeeded", rollout: withReason(inStep(1, v1beta1.CanaryStepStatePaused, t0), v1beta1.ProgressingReasonCancelling),
			workload: func() *workload.Info { i := released(rolledBack()); return i }(), phase: v1beta1.RolloutPhaseHealthy, message: msgRolledBack, succeeded: corev1.ConditionFalse},
		{name: "a third template restarts at step 1", rollout: inStep(2, v1beta1.CanaryStepStatePaused, t0), workload: v3(),
			step: 1, state: v1beta1.CanaryStepStateInit, action: NoAction, hold: v1beta1.HoldWaitingForPods},
		{name: "spec.strategy.paused pauses", rollout: paused(inStep(1, v1beta1.CanaryStepStateUpgrade, t0)), workload: frozen(0, 0),
			reason: v1beta1.ProgressingReasonPaused, message: msgPaused, hold: v1beta1.HoldPausedBySpec},
		{name: "paused stays paused", rollout: paused(withReason(inStep(1, v1beta1.CanaryStepStateUpgrade, t0), v1beta1.ProgressingReasonPaused)), workload: frozen(0, 0),
			reason: v1beta1.ProgressingReasonPaused, action: NoAction},
		{name: "resume continues", rollout: withReason(inStep(1, v1beta1.CanaryStepStateUpgrade, t0), v1beta1.ProgressingReasonPaused), workload: frozen(0, 0),
			reason: v1beta1.ProgressingReasonInRolling, action: Release, batch: 1},
		{name: "a patched nextStepIndex jumps", rollout: jumpTo(inStep(1, v1beta1.CanaryStepStatePaused, t0), 3), workload: frozen(1, 1),
			step: 3, state: v1beta1.CanaryStepStateUpgrade, action: Release, batch: 10},
		{name: "disabling mid-release gives the workload back", rollout: disabled(inStep(2, v1beta1.CanaryStepStatePaused, t0)), workload: frozen(5, 5),
			phase: v1beta1.RolloutPhaseDisabling, action: Finalise, message: msgDisabling},
		{name: "disabled once released", rollout: disabled(inStep(2, v1beta1.CanaryStepStatePaused, t0)), workload: released(frozen(5, 5)),
			phase: v1beta1.RolloutPhaseDisabled, message: msgDisabled},
		{name: "deleting mid-release gives the workload back first", rollout: deleting(inStep(2, v1beta1.CanaryStepStatePaused, t0)), workload: frozen(5, 5),
			phase: v1beta1.RolloutPhaseTerminating, action: Finalise},
		{name: "deleting removes the finalizer once released", rollout: deleting(inStep(2, v1beta1.CanaryStepStatePaused, t0)), workload: released(frozen(5, 5)),
			action: RemoveFinalizer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			before := tc.rollout.DeepCopy()
			d := Decide(Observed{Rollout: tc.rollout, Workload: tc.workload, Now: now})
			if !equalRollout(before, tc.rollout) {
				t.Fatal("Decide changed its input")
			}
			st := d.Status
			if tc.phase != "" && st.Phase != tc.phase {
				t.Errorf("phase = %s, want %s", st.Phase, tc.phase)
			}
			if tc.step != 0 && st.CurrentStepIndex != tc.step {
				t.Errorf("step = %d, want %d", st.CurrentStepIndex, tc.step)
			}
			if tc.state != "" && st.CurrentStepState != tc.state {
				t.Errorf("state = %s, want %s", st.CurrentStepState, tc.state)
			}
			if st.CanaryStatus != nil && (st.CurrentStepIndex != st.CanaryStatus.CurrentStepIndex || st.CurrentStepState != st.CanaryStatus.CurrentStepState) {
				t.Error("the top-level step does not mirror canaryStatus")
			}
			if tc.reason != "" {
				if c := condition(&st, v1beta1.RolloutConditionProgressing); c == nil || c.Reason != tc.reason {
					t.Errorf("Progressing condition = %+v, want reason %s", c, tc.reason)
				}
			}
			if d.Action != tc.action {
				t.Errorf("action = %s, want %s", d.Action, tc.action)
			}
			if tc.action == Release && d.Batch.Updated != tc.batch {
				t.Errorf("batch = %d pods, want %d", d.Batch.Updated, tc.batch)
			}
			if tc.message != "" && st.Message != tc.message {
				t.Errorf("message = %q, want %q", st.Message, tc.message)
			}
			if tc.hold != "" {
				if h := st.HoldOf(); h == nil || h.Reason != tc.hold {
					t.Errorf("hold = %+v, want reason %s", h, tc.hold)
				} else if c := condition(&st, v1beta1.RolloutConditionWaiting); c == nil || c.Reason != string(tc.hold) || c.Status != corev1.ConditionTrue {
					t.Errorf("Waiting condition = %+v, want reason %s", c, tc.hold)
				}
			}
			if (st.Phase == v1beta1.RolloutPhaseHealthy || st.Phase == v1beta1.RolloutPhaseDisabled) && (st.Release != nil || condition(&st, v1beta1.RolloutConditionWaiting) != nil) {
				t.Errorf("at rest, yet status.release = %+v, Waiting = %+v", st.Release, condition(&st, v1beta1.RolloutConditionWaiting))
			}
			if d.RequeueAfter != tc.requeue {
				t.Errorf("requeueAfter = %s, want %s", d.RequeueAfter, tc.requeue)
			}
			if tc.succeeded != "" {
				if c := condition(&st, v1beta1.RolloutConditionSucceeded); c == nil || c.Status != tc.succeeded {
					t.Errorf("Succeeded condition = %+v, want %s", c, tc.succeeded)
				}
			}
		})
	}
}

// The failure threshold lets a batch count as done with unready pods.
func TestFailureThreshold(t *testing.T) {
	r := inStep(2, v1beta1.CanaryStepStateUpgrade, t0)
	two := intstr.FromInt32(2)
	r.Spec.Strategy.Canary.FailureThreshold = &two
	if d := Decide(Observed{Rollout: r, Workload: frozen(5, 3), Now: t0}); d.Status.CurrentStepState != v1beta1.CanaryStepStatePaused {
		t.Errorf("3 of 5 ready with threshold 2: state %s, want StepPaused", d.Status.CurrentStepState)
	}
	if d := Decide(Observed{Rollout: r, Workload: frozen(5, 2), Now: t0}); d.Status.CurrentStepState != v1beta1.CanaryStepStateUpgrade {
		t.Errorf("2 of 5 ready with threshold 2: state %s, want StepUpgrade", d.Status.CurrentStepState)
	}
}

// As Kruise counts it: a percentage of the new pods, rounded up (30% of
// 5 tolerates 2), and never a batch without a ready pod.
func TestFailureThresholdAsKruise(t *testing.T) {
	r := inStep(2, v1beta1.CanaryStepStateUpgrade, t0)
	thirty, all := intstr.FromString("30%"), intstr.FromString("100%")
	r.Spec.Strategy.Canary.FailureThreshold = &thirty
	if d := Decide(Observed{Rollout: r, Workload: frozen(5, 3), Now: t0}); d.Status.CurrentStepState != v1beta1.CanaryStepStatePaused {
		t.Errorf("3 of 5 ready with 30%%: state %s, want StepPaused", d.Status.CurrentStepState)
	}
	r.Spec.Strategy.Canary.FailureThreshold = &all
	if d := Decide(Observed{Rollout: r, Workload: frozen(5, 0), Now: t0}); d.Status.CurrentStepState != v1beta1.CanaryStepStateUpgrade {
		t.Errorf("0 of 5 ready with 100%%: state %s, want StepUpgrade", d.Status.CurrentStepState)
	}
}

// A decision already taken does not change when the same observation is
// made again: writing its status changes nothing more.
func TestDecideIsStable(t *testing.T) {
	r := inStep(1, v1beta1.CanaryStepStateUpgrade, t0)
	first := Decide(Observed{Rollout: r, Workload: frozen(1, 1), Now: t0})
	r.Status = first.Status
	second := Decide(Observed{Rollout: r, Workload: frozen(1, 1), Now: t0.Add(time.Second)})
	if !equalStatus(first.Status, second.Status) {
		t.Errorf("status changed on a second look:\n%+v\n%+v", first.Status, second.Status)
	}
	if len(second.Events) != 0 {
		t.Errorf("events on a second look: %+v", second.Events)
	}
}

// A batch not ready by progressDeadlineSeconds is reported, naming the
// stuck pods; before the deadline Decide asks to be woken at it.
func TestProgressDeadline(t *testing.T) {
	r := inStep(1, v1beta1.CanaryStepStateUpgrade, t0)
	ten := int32(10)
	r.Spec.Strategy.ProgressDeadlineSeconds = &ten
	stuck := frozen(1, 0)
	stuck.Unready = []string{"echoserver-abc (CrashLoopBackOff)"}

	d := Decide(Observed{Rollout: r, Workload: stuck, Now: t0.Add(4 * time.Second)})
	if d.RequeueAfter != 6*time.Second || condition(&d.Status, ConditionProgressDeadline) != nil {
		t.Fatalf("before the deadline: requeue %s, condition %+v", d.RequeueAfter, condition(&d.Status, ConditionProgressDeadline))
	}
	d = Decide(Observed{Rollout: r, Workload: stuck, Now: t0.Add(11 * time.Second)})
	c := condition(&d.Status, ConditionProgressDeadline)
	if c == nil || c.Status != corev1.ConditionTrue || !strings.Contains(c.Message, "echoserver-abc (CrashLoopBackOff)") {
		t.Fatalf("condition = %+v", c)
	}
	if d.Status.Message != c.Message || len(d.Events) != 1 || d.Events[0].Type != corev1.EventTypeWarning {
		t.Fatalf("message %q events %+v", d.Status.Message, d.Events)
	}
	if d.Status.CurrentStepState != v1beta1.CanaryStepStateUpgrade || d.Action != Release || d.Batch.Updated != 1 {
		t.Fatal("a stuck batch must hold where it is, never release more")
	}
	r.Status = d.Status
	d = Decide(Observed{Rollout: r, Workload: frozen(1, 1), Now: t0.Add(12 * time.Second)})
	if condition(&d.Status, ConditionProgressDeadline) != nil {
		t.Fatal("the condition must go once the batch is ready")
	}
}
