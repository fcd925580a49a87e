package rollout

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

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

// setCondition sets a condition, keeping its transition time when the
// status does not change. Times are truncated to seconds, as the API
// server stores them, so that an unchanged condition compares equal.
func setCondition(s *v1beta1.RolloutStatus, t v1beta1.RolloutConditionType, status corev1.ConditionStatus, reason, message string, now time.Time) {
	ts := metav1.NewTime(now.Truncate(time.Second))
	for i := range s.Conditions {
		c := &s.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status == status && c.Reason == reason && c.Message == message {
			return
		}
		if c.Status != status {
			c.LastTransitionTime = ts
		}
		c.Status, c.Reason, c.Message, c.LastUpdateTime = status, reason, message, ts
		return
	}
	s.Conditions = append(s.Conditions, v1beta1.RolloutCondition{
		Type: t, Status: status, Reason: reason, Message: message, LastUpdateTime: ts, LastTransitionTime: ts,
	})
}

// condition returns the condition of type t, or nil.
func condition(s *v1beta1.RolloutStatus, t v1beta1.RolloutConditionType) *v1beta1.RolloutCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

func removeCondition(s *v1beta1.RolloutStatus, t v1beta1.RolloutConditionType) {
	out := s.Conditions[:0]
	for _, c := range s.Conditions {
		if c.Type != t {
			out = append(out, c)
		}
	}
	s.Conditions = out
}
