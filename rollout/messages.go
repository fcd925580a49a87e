package rollout

import (
	"fmt"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// The message builders: status.message (the MESSAGE column) and
// canaryStatus.message are written here, from the structured state, and
// read nowhere (a test checks that no other code reads them).

// Status messages, verbatim from Kruise Rollout where it has one, so that
// `kubectl get rollouts` reads the same.
const (
	msgHealthy    = "rollout is healthy"
	msgCompleted  = "Rollout progressing has been completed"
	msgPaused     = "Rollout has been paused, you can resume it by kube-cli"
	msgFinalising = "Rollout is in finalising"
	msgCancelling = "Rollout is in cancelling: the workload returns to its stable revision"
	msgRolledBack = "Rollout has been cancelled: the workload is back at its stable revision"
	msgDisabling  = "Rollout is disabling"
	msgDisabled   = "Rollout is disabled"
	msgDeleting   = "Rollout is being deleted: the workload is released"
	msgNoStrategy = "the Rollout has no strategy: set strategy.canary or strategy.blueGreen"
)

func msgUpgrade(i, n int32) string {
	return fmt.Sprintf("Rollout is in step(%d/%d), and upgrade workload to new version", i, n)
}

func msgTrafficRouting(i, n int32) string {
	return fmt.Sprintf("Rollout is in step(%d/%d), and routing traffic to the new version", i, n)
}

func msgManualConfirm(i, n int32) string {
	return fmt.Sprintf("Rollout is in step(%d/%d), and you need manually confirm to enter the next step", i, n)
}

func msgWaitDuration(i, n, seconds int32) string {
	return fmt.Sprintf("Rollout is in step(%d/%d), and wait duration(%d seconds) to enter the next step", i, n, seconds)
}

func msgAnalysing(i, n int32, run, detail string) string {
	msg := fmt.Sprintf("Rollout is in step(%d/%d), and analysing the new version (%s)", i, n, run)
	if detail != "" {
		msg += ": " + detail
	}
	return msg
}

func msgAnalysisHold(i, n int32, verdict string) string {
	return fmt.Sprintf("Rollout is in step(%d/%d), paused: %s. Approve to go on, retry the analysis (%s), or abort (%s)",
		i, n, verdict, analysisv1alpha1.RetryAnnotation, analysisv1alpha1.AbortAnnotation)
}

func msgAborted(why, stable string) string {
	return fmt.Sprintf("Rollout is aborted: %s; the workload is held at its stable revision %s: re-apply it to end the release, push a fix, or retry (%s)",
		why, stable, analysisv1alpha1.RetryAnnotation)
}

// message is the status message of the decided status.
func (x *decider) message() string {
	st := &x.d.Status
	switch st.Phase {
	case v1beta1.RolloutPhaseTerminating:
		return msgDeleting
	case v1beta1.RolloutPhaseDisabling:
		return msgDisabling
	case v1beta1.RolloutPhaseDisabled:
		return msgDisabled
	case v1beta1.RolloutPhaseProgressing:
		return x.progressMessage()
	}
	switch {
	case x.Unsupported != nil:
		return x.Unsupported.Error()
	case x.Workload == nil:
		ref := x.Rollout.Spec.WorkloadRef
		return fmt.Sprintf("%s %s not found: the Rollout waits for it", ref.Kind, ref.Name)
	case x.Rollout.Spec.Strategy.Canary == nil:
		return msgNoStrategy
	}
	if c := condition(st, v1beta1.RolloutConditionSucceeded); c != nil {
		if c.Status == "True" {
			return msgCompleted
		}
		return msgRolledBack
	}
	return msgHealthy
}

// progressMessage says where a release in progress is and what it waits for.
func (x *decider) progressMessage() string {
	h, cs := x.hold, x.cs
	if h == nil || cs == nil {
		return msgHealthy
	}
	i, n := cs.CurrentStepIndex, int32(len(x.steps()))
	if fault(h.Reason) {
		return h.Message
	}
	switch reason(&x.d.Status) {
	case ReasonAborted:
		return msgAborted(h.Message, cs.StableRevision)
	case v1beta1.ProgressingReasonPaused:
		return msgPaused
	case v1beta1.ProgressingReasonFinalising:
		return msgFinalising
	case v1beta1.ProgressingReasonCancelling:
		return msgCancelling
	}
	switch h.Reason {
	case v1beta1.HoldWaitingForPods:
		return msgUpgrade(i, n)
	case v1beta1.HoldTrafficGracePeriod:
		if cs.CurrentStepState == v1beta1.CanaryStepStateTrafficRouting {
			return msgTrafficRouting(i, n)
		}
		return msgUpgrade(i, n)
	case v1beta1.HoldAnalysisRunning, v1beta1.HoldAnalysisNotStarted:
		return msgAnalysing(i, n, h.Run, h.Message)
	case v1beta1.HoldTimedPause:
		var seconds int32
		if s := x.steps()[i-1]; s.Pause.Duration != nil {
			seconds = *s.Pause.Duration
		}
		return msgWaitDuration(i, n, seconds)
	case v1beta1.HoldWaitingForApproval:
		return msgManualConfirm(i, n)
	case v1beta1.HoldPausedBySpec:
		return msgPaused
	case v1beta1.HoldAnalysisFailedPaused, v1beta1.HoldAnalysisError, v1beta1.HoldAnalysisInconclusive:
		return msgAnalysisHold(i, n, h.Message)
	}
	return h.Message
}
