package rollout

import (
	"testing"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// rolledBackTo: the stable template v1 re-applied on a 10-pod StatefulSet
// while 5 pods ran v2; its update revision is v1 again, 5 pods run it.
func rolledBackTo() *workload.Info {
	return &workload.Info{Replicas: 10, Frozen: true, StableRevision: "v1", UpdateRevision: "v1", PodRevision: "v1",
		Updated: 5, UpdatedReady: 5, Others: 5, Settled: true, Controlled: true}
}

// With rollouts.kruise.io/rollback-in-batch the re-applied stable version
// is released from step 1, its 5 pods counted as done: step 1 (1 pod)
// asks 5 + 1 = 6 pods of v1, step 2 (50% of the 5 left, rounded up)
// 5 + 3 = 8. Without it, or with traffic routing, the release is
// cancelled (the workload rolls back all at once), as in Kruise.
func TestRollbackInBatches(t *testing.T) {
	sts := func(annotated bool) *v1beta1.Rollout {
		r := inStep(2, v1beta1.CanaryStepStatePaused, t0)
		r.Spec.WorkloadRef = v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}
		if annotated {
			r.Annotations = map[string]string{RollbackInBatchAnnotation: "true"}
		}
		return r
	}
	d := Decide(Observed{Rollout: sts(true), Workload: rolledBackTo(), Now: t0})
	st := d.Status
	if reason(&st) != v1beta1.ProgressingReasonInRolling || st.CanaryStatus.CurrentStepIndex != 1 || st.CanaryStatus.CanaryRevision != "v1" ||
		st.Release == nil || st.Release.NoNeedUpdate != 5 || st.Release.Batch == nil || st.Release.Batch.Shrink {
		t.Fatalf("restart: reason %s step %d canary %s release %+v", reason(&st), st.CanaryStatus.CurrentStepIndex, st.CanaryStatus.CanaryRevision, st.Release)
	}
	r := sts(true)
	r.Status = st
	d = Decide(Observed{Rollout: r, Workload: rolledBackTo(), Now: t0})
	if d.Action != Release || d.Batch.Updated != 6 || d.Batch.Revision != "v1" || d.Batch.Shrink {
		t.Fatalf("rollback's step 1: action %v batch %+v, want 6 pods of v1", d.Action, d.Batch)
	}
	if got := (&decider{d: Decision{Status: d.Status}, Observed: Observed{Rollout: r, Workload: rolledBackTo()}}).target(r.Spec.Strategy.Canary.Steps[1]); got != 8 {
		t.Errorf("step 2's target %d, want 8", got)
	}

	if d := Decide(Observed{Rollout: sts(false), Workload: rolledBackTo(), Now: t0}); reason(&d.Status) != v1beta1.ProgressingReasonCancelling {
		t.Errorf("without the annotation: reason %s, want Cancelling", reason(&d.Status))
	}
	dep := inStep(2, v1beta1.CanaryStepStatePaused, t0)
	dep.Annotations = map[string]string{RollbackInBatchAnnotation: "true"}
	if d := Decide(Observed{Rollout: dep, Workload: rolledBackTo(), Now: t0}); reason(&d.Status) != v1beta1.ProgressingReasonCancelling {
		t.Errorf("a Deployment: reason %s, want Cancelling (Kruise supports StatefulSets and CloneSets only)", reason(&d.Status))
	}
}

// A jump back on a DaemonSet: its new pods cannot be taken back (the
// DaemonSet controller recreates them from the current template), so the
// shrinking batch is done with more new pods than it asks instead of
// waiting forever.
func TestShrinkingBatchOfADaemonSet(t *testing.T) {
	r := inStep(1, v1beta1.CanaryStepStateUpgrade, t0)
	r.Spec.WorkloadRef = v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent"}
	r.Status.Release.Batch.Shrink = true
	ds := frozen(5, 5)
	if d := Decide(Observed{Rollout: r, Workload: ds, Now: t0}); d.Status.CurrentStepState == v1beta1.CanaryStepStatePaused {
		t.Fatal("a workload that can shrink waits for exactly its batch")
	}
	ds.KeepsNewPods = true
	if d := Decide(Observed{Rollout: r, Workload: ds, Now: t0}); d.Status.CurrentStepState != v1beta1.CanaryStepStatePaused {
		t.Errorf("state %s, want the step done (StepPaused)", d.Status.CurrentStepState)
	}
}
