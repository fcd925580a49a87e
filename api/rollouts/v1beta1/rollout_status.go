package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// RolloutStatus is what the controller observed and decided.
type RolloutStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// CanaryStatus is the progress of a canary release.
	// +optional
	CanaryStatus *CanaryStatus `json:"canaryStatus,omitempty"`
	// BlueGreenStatus is the progress of a blue-green release.
	// +optional
	BlueGreenStatus *BlueGreenStatus `json:"blueGreenStatus,omitempty"`
	// Conditions are Progressing, Succeeded and Terminating (and Sluice's
	// Analysis and ProgressDeadline).
	// +optional
	Conditions []RolloutCondition `json:"conditions,omitempty"`
	// Phase is the Rollout's lifecycle phase.
	// +optional
	Phase RolloutPhase `json:"phase,omitempty"`
	// Message is a human-readable summary (the MESSAGE column).
	// +optional
	Message string `json:"message,omitempty"`
	// CurrentStepIndex mirrors the sub-status for the printer columns.
	// +optional
	CurrentStepIndex int32 `json:"currentStepIndex,omitempty"`
	// CurrentStepState mirrors the sub-status for the printer columns.
	// +optional
	CurrentStepState CanaryStepState `json:"currentStepState,omitempty"`

	// Analysis is the state of the release's AnalysisRuns (Sluice).
	// +optional
	Analysis *analysisv1alpha1.RolloutAnalysisStatus `json:"analysis,omitempty"`
	// Release is the release in progress, as data: what it waits for, the
	// batch the workload is held to, the traffic in force (Sluice).
	// +optional
	Release *ReleaseStatus `json:"release,omitempty"`
	// LastRelease is how the last release ended (Sluice).
	// +optional
	LastRelease *ReleaseRecord `json:"lastRelease,omitempty"`
}

// RolloutCondition is one observed condition of a Rollout.
type RolloutCondition struct {
	Type   RolloutConditionType   `json:"type"`
	Status corev1.ConditionStatus `json:"status"`
	// ObservedGeneration is the Rollout generation the condition was set
	// for (as metav1.Condition has it; Sluice).
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	LastUpdateTime metav1.Time `json:"lastUpdateTime,omitempty"`
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
	// +optional
	Reason string `json:"reason"`
	// +optional
	Message string `json:"message"`
}

// RolloutConditionType names a condition.
type RolloutConditionType string

// Condition types and reasons, verbatim from Kruise Rollout.
const (
	RolloutConditionProgressing   RolloutConditionType = "Progressing"
	ProgressingReasonInitializing                      = "Initializing"
	ProgressingReasonInRolling                         = "InRolling"
	ProgressingReasonFinalising                        = "Finalising"
	ProgressingReasonCompleted                         = "Completed"
	ProgressingReasonCancelling                        = "Cancelling"
	ProgressingReasonPaused                            = "Paused"

	RolloutConditionSucceeded RolloutConditionType = "Succeeded"

	RolloutConditionTerminating    RolloutConditionType = "Terminating"
	TerminatingReasonInTerminating                      = "InTerminating"
	TerminatingReasonCompleted                          = "Completed"

	// RolloutConditionWaiting (Sluice) mirrors status.release.hold: True
	// with the hold reason as its reason while a release waits, absent at
	// rest, so that `kubectl wait --for=condition=Waiting` and GitOps
	// health checks can use it.
	RolloutConditionWaiting RolloutConditionType = "Waiting"
)

// CommonStatus is shared by canary and blue-green progress.
type CommonStatus struct {
	// ObservedWorkloadGeneration is the workload generation last seen.
	// +optional
	ObservedWorkloadGeneration int64 `json:"observedWorkloadGeneration,omitempty"`
	// ObservedRolloutID is the workload's rollouts.kruise.io/rollout-id.
	// +optional
	ObservedRolloutID string `json:"observedRolloutID,omitempty"`
	// RolloutHash is the hash of the release plan.
	// +optional
	RolloutHash string `json:"rolloutHash,omitempty"`
	// StableRevision is the revision released before.
	// +optional
	StableRevision string `json:"stableRevision,omitempty"`
	// PodTemplateHash is the new version's pod-template-hash (or
	// controller-revision-hash).
	// +optional
	PodTemplateHash string `json:"podTemplateHash"`
	// CurrentStepIndex is the 1-based current step.
	// +optional
	CurrentStepIndex int32 `json:"currentStepIndex"`
	// NextStepIndex is the step after approval: current+1, or -1 on the last
	// step. Patch it to jump.
	// +optional
	NextStepIndex int32 `json:"nextStepIndex"`
	// FinalisingStep is the current task of the finalising sequence.
	// +optional
	FinalisingStep FinalisingStepType `json:"finalisingStep"`
	// CurrentStepState is the state inside the current step.
	CurrentStepState CanaryStepState `json:"currentStepState"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	LastUpdateTime *metav1.Time `json:"lastUpdateTime,omitempty"`
}

// CanaryStatus is the progress of a canary release.
type CanaryStatus struct {
	CommonStatus `json:",inline"`
	// CanaryRevision is the hash of the new pod template.
	CanaryRevision string `json:"canaryRevision"`
	// CanaryReplicas is the number of pods of the new version.
	CanaryReplicas int32 `json:"canaryReplicas"`
	// CanaryReadyReplicas is the number of ready pods of the new version.
	CanaryReadyReplicas int32 `json:"canaryReadyReplicas"`
}

// BlueGreenStatus is the progress of a blue-green release.
type BlueGreenStatus struct {
	CommonStatus `json:",inline"`
	// UpdatedRevision is the hash of the new pod template.
	UpdatedRevision string `json:"updatedRevision"`
	// UpdatedReplicas is the number of pods of the new version.
	UpdatedReplicas int32 `json:"updatedReplicas"`
	// UpdatedReadyReplicas is the number of ready pods of the new version.
	UpdatedReadyReplicas int32 `json:"updatedReadyReplicas"`
}

// CanaryStepState is the state inside a step.
type CanaryStepState string

// The step states, in the order a step goes through them.
const (
	CanaryStepStateInit            CanaryStepState = "BeforeStepUpgrade"
	CanaryStepStateUpgrade         CanaryStepState = "StepUpgrade"
	CanaryStepStateTrafficRouting  CanaryStepState = "StepTrafficRouting"
	CanaryStepStateMetricsAnalysis CanaryStepState = "StepMetricsAnalysis"
	CanaryStepStatePaused          CanaryStepState = "StepPaused"
	CanaryStepStateReady           CanaryStepState = "StepReady"
	CanaryStepStateCompleted       CanaryStepState = "Completed"
)

// RolloutPhase is the lifecycle phase of a Rollout.
type RolloutPhase string

// The phases.
const (
	RolloutPhaseInitial     RolloutPhase = "Initial"
	RolloutPhaseHealthy     RolloutPhase = "Healthy"
	RolloutPhaseProgressing RolloutPhase = "Progressing"
	RolloutPhaseTerminating RolloutPhase = "Terminating"
	RolloutPhaseDisabled    RolloutPhase = "Disabled"
	RolloutPhaseDisabling   RolloutPhase = "Disabling"
)

// FinalisingStepType is one task of a finalising sequence.
type FinalisingStepType string

// The finalising tasks.
const (
	FinalisingStepRouteTrafficToNew    FinalisingStepType = "FinalisingStepRouteTrafficToNew"
	FinalisingStepRouteTrafficToStable FinalisingStepType = "FinalisingStepRouteTrafficToStable"
	FinalisingStepRestoreStableService FinalisingStepType = "RestoreStableService"
	FinalisingStepRemoveCanaryService  FinalisingStepType = "RemoveCanaryService"
	FinalisingStepResumeWorkload       FinalisingStepType = "ResumeWorkload"
	FinalisingStepReleaseWorkload      FinalisingStepType = "ReleaseWorkloadControl"
	FinalisingStepEnd                  FinalisingStepType = "END"
	FinalisingStepWaitEndless          FinalisingStepType = "WaitEndless"
)
