package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The release's state as data (Sluice). The controller's decision function
// writes these fields; the MESSAGE column, the exported metrics, the alerts,
// the kubectl plugin and GitOps health checks read them. Kruise's fields
// keep their meaning beside them.

// HoldReason says what a release in progress waits for. The set is closed:
// readers switch on it, and docs/release.md has a row for each.
// +kubebuilder:validation:Enum=WaitingForPods;TrafficGracePeriod;AnalysisRunning;TimedPause;WaitingForApproval;PausedBySpec;AnalysisInconclusive;AnalysisError;AnalysisFailedPaused;AnalysisNotStarted;Aborted;ProgressDeadlineExceeded;TrafficError;WorkloadError;WorkloadNotFound;NewRevisionRefused
type HoldReason string

// The hold reasons. The first three are a release moving by itself; the
// rest wait for time, a person, or a fault to clear.
const (
	// HoldWaitingForPods: the batch's pods (or, while finalising, the
	// workload's own rollout) are not in place and ready yet.
	HoldWaitingForPods HoldReason = "WaitingForPods"
	// HoldTrafficGracePeriod: a routing change waits out gracePeriodSeconds.
	HoldTrafficGracePeriod HoldReason = "TrafficGracePeriod"
	// HoldAnalysisRunning: the step's AnalysisRun is measuring.
	HoldAnalysisRunning HoldReason = "AnalysisRunning"
	// HoldTimedPause: the step's pause.duration has not passed (Until).
	HoldTimedPause HoldReason = "TimedPause"
	// HoldWaitingForApproval: the step's pause: {} waits for approve.
	HoldWaitingForApproval HoldReason = "WaitingForApproval"
	// HoldPausedBySpec: spec.strategy.paused is true.
	HoldPausedBySpec HoldReason = "PausedBySpec"
	// HoldAnalysisInconclusive, HoldAnalysisError, HoldAnalysisFailedPaused:
	// a verdict whose policy is Pause holds the release (Run, Metric).
	HoldAnalysisInconclusive HoldReason = "AnalysisInconclusive"
	HoldAnalysisError        HoldReason = "AnalysisError"
	HoldAnalysisFailedPaused HoldReason = "AnalysisFailedPaused"
	// HoldAnalysisNotStarted: an AnalysisRun could not be created (a
	// template or an arg is missing); retried with backoff.
	HoldAnalysisNotStarted HoldReason = "AnalysisNotStarted"
	// HoldAborted: the release was rolled back (by its analysis or a
	// person) and the workload is held at the stable revision until the
	// stable template is re-applied, a new version pushed, or it is retried.
	HoldAborted HoldReason = "Aborted"
	// HoldProgressDeadlineExceeded: the batch is not ready within
	// spec.strategy.progressDeadlineSeconds.
	HoldProgressDeadlineExceeded HoldReason = "ProgressDeadlineExceeded"
	// HoldTrafficError, HoldWorkloadError: a call to the routing objects or
	// a write to the workload failed; retried with backoff.
	HoldTrafficError  HoldReason = "TrafficError"
	HoldWorkloadError HoldReason = "WorkloadError"
	// HoldWorkloadNotFound: the workload a release was under way for is gone.
	HoldWorkloadNotFound HoldReason = "WorkloadNotFound"
	// HoldNewRevisionRefused: a blue-green release takes no new version
	// mid-release; re-apply the stable template first.
	HoldNewRevisionRefused HoldReason = "NewRevisionRefused"
)

// NeedsPerson reports whether nothing but a person (or a fix outside the
// Rollout) moves the release on: what an alert or a GitOps tool's
// "Suspended" shows.
func (r HoldReason) NeedsPerson() bool {
	switch r {
	case HoldWaitingForApproval, HoldPausedBySpec, HoldAnalysisInconclusive, HoldAnalysisError,
		HoldAnalysisFailedPaused, HoldAnalysisNotStarted, HoldAborted, HoldProgressDeadlineExceeded, HoldNewRevisionRefused:
		return true
	}
	return false
}

// Hold is why a release in progress waits, and since when.
type Hold struct {
	Reason HoldReason `json:"reason"`
	// Since is when the release began to wait for this reason at this step.
	Since metav1.Time `json:"since"`
	// Step is the 1-based step the release is at (where it was while
	// finalising).
	// +optional
	Step int32 `json:"step,omitempty"`
	// Until is when a timed wait ends (TimedPause, TrafficGracePeriod) or
	// when the progress deadline passes (WaitingForPods).
	// +optional
	Until *metav1.Time `json:"until,omitempty"`
	// Run is the AnalysisRun concerned (analysis reasons, Aborted).
	// +optional
	Run string `json:"run,omitempty"`
	// Metric is the analysis metric whose verdict holds the release.
	// +optional
	Metric string `json:"metric,omitempty"`
	// Message is the detail in words: the verdict, the error, the stuck pods.
	// +optional
	Message string `json:"message,omitempty"`
}

// TrafficStatus is the routing in force, as last applied to the routing
// objects (not as the plan says): set when a routing call succeeded.
type TrafficStatus struct {
	// Step is the 1-based step whose route is in force; 0 when the
	// routing sends everything to the new version (blue-green's switch).
	// +optional
	Step int32 `json:"step,omitempty"`
	// Revision is the pod revision the canary Service selects.
	// +optional
	Revision string `json:"revision,omitempty"`
	// Weight is the percentage of traffic sent to the new version; unset
	// when only matching requests go there.
	// +optional
	Weight *int32 `json:"weight,omitempty"`
	// Matches are the requests sent to the new version.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Matches []HttpRouteMatch `json:"matches,omitempty"`
	// Since is when this routing was applied.
	Since metav1.Time `json:"since"`
}

// ReleaseStatus is the release in progress: unset at rest.
type ReleaseStatus struct {
	// Started is when this release (of canaryStatus.canaryRevision) began.
	Started metav1.Time `json:"started"`
	// Hold is what the release waits for now.
	// +optional
	Hold *Hold `json:"hold,omitempty"`
	// Batch is the batch the workload is held to.
	// +optional
	Batch *BatchStatus `json:"batch,omitempty"`
	// Traffic is the routing in force; unset while all traffic goes to
	// the stable version.
	// +optional
	Traffic *TrafficStatus `json:"traffic,omitempty"`
	// Outcome is set once the release has ended while it is still being
	// cleaned up (aborted and held, promoted and finalising): its record
	// in lastRelease is not rewritten by the cleanup.
	// +optional
	Outcome ReleaseOutcome `json:"outcome,omitempty"`
	// NoNeedUpdate is, for a rollback released in batches
	// (rollouts.kruise.io/rollback-in-batch), the pods that already ran
	// the version rolled back to when it was re-applied (Kruise's
	// noNeedUpdateReplicas): each step's replicas count the other pods
	// only, on top of these.
	// +optional
	NoNeedUpdate int32 `json:"noNeedUpdate,omitempty"`
}

// BatchStatus is the batch the workload is held to: the controller moves
// the new version's pods to Replicas, and the workload webhook keeps any
// other writer (a GitOps re-apply) from releasing more. Unset before the
// first batch and once the workload is given back.
type BatchStatus struct {
	// Step is the 1-based step of the batch.
	Step int32 `json:"step"`
	// Replicas is the number of new-version pods the step asks for, for
	// the workload's current size.
	Replicas int32 `json:"replicas"`
	// Shrink is true when the batch has fewer new pods than ran before it
	// (a step jump back, an abort): only then are new-version pods removed.
	// +optional
	Shrink bool `json:"shrink,omitempty"`
}

// ReleaseOutcome is how a release ended.
// +kubebuilder:validation:Enum=Completed;Promoted;RolledBack;Aborted;Cancelled
type ReleaseOutcome string

// The outcomes.
const (
	// OutcomeCompleted: every step passed; the new version is stable.
	OutcomeCompleted ReleaseOutcome = "Completed"
	// OutcomePromoted: a person promoted it past its remaining steps.
	OutcomePromoted ReleaseOutcome = "Promoted"
	// OutcomeRolledBack: its analysis failed it and rolled it back.
	OutcomeRolledBack ReleaseOutcome = "RolledBack"
	// OutcomeAborted: a person aborted it.
	OutcomeAborted ReleaseOutcome = "Aborted"
	// OutcomeCancelled: the stable template was re-applied mid-release.
	OutcomeCancelled ReleaseOutcome = "Cancelled"
)

// ReleaseRecord is how the last release ended.
type ReleaseRecord struct {
	Outcome ReleaseOutcome `json:"outcome"`
	// Revision is the revision that was released.
	Revision string `json:"revision"`
	// StableRevision is the revision that was stable when it began.
	// +optional
	StableRevision string `json:"stableRevision,omitempty"`
	// Step is the step it ended at.
	// +optional
	Step int32 `json:"step,omitempty"`
	// Started is when the release began.
	// +optional
	Started *metav1.Time `json:"started,omitempty"`
	// Ended is when it ended.
	Ended metav1.Time `json:"ended"`
	// Message says why, for a release that did not complete.
	// +optional
	Message string `json:"message,omitempty"`
	// Run and Metric name the analysis that rolled it back.
	// +optional
	Run string `json:"run,omitempty"`
	// +optional
	Metric string `json:"metric,omitempty"`
}
