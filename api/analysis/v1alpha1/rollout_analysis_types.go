package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RolloutAnalysis is what a Rollout step (or the whole release, for
// background analysis) asks to be measured, and what each verdict does.
// Both Rollout API versions embed it unchanged.
type RolloutAnalysis struct {
	// Templates whose metrics are measured together in one AnalysisRun.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Templates []AnalysisTemplateRef `json:"templates"`
	// Args fill the templates' args; they override template defaults.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Args []Argument `json:"args,omitempty"`
	// OnFailed is what a Failed verdict does. Default Rollback.
	// +optional
	OnFailed VerdictPolicy `json:"onFailed,omitempty"`
	// OnError is what an Error verdict (the provider could not be queried)
	// does. Default Pause.
	// +optional
	OnError VerdictPolicy `json:"onError,omitempty"`
	// OnInconclusive is what an Inconclusive verdict does. Default Pause.
	// +optional
	OnInconclusive VerdictPolicy `json:"onInconclusive,omitempty"`
}

// AnalysisTemplateRef names an AnalysisTemplate, or with ClusterScope a
// ClusterAnalysisTemplate.
type AnalysisTemplateRef struct {
	// +kubebuilder:validation:MinLength=1
	TemplateName string `json:"templateName"`
	// +optional
	ClusterScope bool `json:"clusterScope,omitempty"`
}

// VerdictPolicy is the Rollout's reaction to an analysis verdict.
// +kubebuilder:validation:Enum=Rollback;Pause;Continue
type VerdictPolicy string

// The VerdictPolicy values.
const (
	// Rollback routes traffic back to stable, scales the new version down
	// and holds the workload at the stable revision.
	PolicyRollback VerdictPolicy = "Rollback"
	// Pause stops the release until a person approves, retries or aborts.
	PolicyPause VerdictPolicy = "Pause"
	// Continue ignores the verdict (it is still recorded).
	PolicyContinue VerdictPolicy = "Continue"
)

// FailedPolicy returns OnFailed with its default applied.
func (a *RolloutAnalysis) FailedPolicy() VerdictPolicy { return orDefault(a.OnFailed, PolicyRollback) }

// ErrorPolicy returns OnError with its default applied.
func (a *RolloutAnalysis) ErrorPolicy() VerdictPolicy { return orDefault(a.OnError, PolicyPause) }

// InconclusivePolicy returns OnInconclusive with its default applied.
func (a *RolloutAnalysis) InconclusivePolicy() VerdictPolicy {
	return orDefault(a.OnInconclusive, PolicyPause)
}

func orDefault(p, d VerdictPolicy) VerdictPolicy {
	if p == "" {
		return d
	}
	return p
}

// RolloutAnalysisStatus is what a Rollout shows about its analysis.
type RolloutAnalysisStatus struct {
	// StepRun is the AnalysisRun of the current step.
	// +optional
	StepRun *RunStatus `json:"stepRun,omitempty"`
	// BackgroundRun is the AnalysisRun that covers the whole release.
	// +optional
	BackgroundRun *RunStatus `json:"backgroundRun,omitempty"`
	// Attempt counts the retries of this release's analysis; it is part
	// of the runs' names, so a retry makes fresh runs.
	// +optional
	Attempt int32 `json:"attempt,omitempty"`
	// RetryHandled, AbortHandled and PromoteHandled are the values of the
	// override annotations last acted on: a new value asks again.
	// +optional
	RetryHandled string `json:"retryHandled,omitempty"`
	// +optional
	AbortHandled string `json:"abortHandled,omitempty"`
	// +optional
	PromoteHandled string `json:"promoteHandled,omitempty"`
	// Overrides records what people decided against the analysis (the
	// last ten).
	// +optional
	// +kubebuilder:validation:MaxItems=10
	Overrides []Override `json:"overrides,omitempty"`
}

// Annotations on a Rollout that a person, the kubectl plugin or a GitOps
// tool sets to override the analysis and the release plan. Each acts once per new value (a
// timestamp, a commit), so re-applying the same manifest does nothing.
const (
	// RetryAnnotation re-runs the current step's analysis, or restarts an
	// aborted release from step 1.
	RetryAnnotation = "sluice.dev/retry"
	// AbortAnnotation aborts the release now: traffic back to stable, the
	// new pods scaled down, the workload held at the stable revision.
	AbortAnnotation = "sluice.dev/abort"
	// PromoteAnnotation promotes the new version now, skipping the
	// remaining steps and analyses (kubectl sluice promote --full).
	PromoteAnnotation = "sluice.dev/promote"
)

// RunStatus mirrors an AnalysisRun's verdict on the Rollout.
type RunStatus struct {
	Name string `json:"name"`
	// +optional
	Phase AnalysisPhase `json:"phase,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// Overridden is true once a person approved the release past this
	// run's verdict.
	// +optional
	Overridden bool `json:"overridden,omitempty"`
}

// Override is one decision a person made against the analysis.
type Override struct {
	// Action is Approve, Retry, Abort or Promote.
	Action string `json:"action"`
	// Step is the step it was made at.
	Step int32 `json:"step"`
	// Run is the AnalysisRun whose verdict it overrode, if any.
	// +optional
	Run string `json:"run,omitempty"`
	// Verdict is that run's phase when it was overridden.
	// +optional
	Verdict AnalysisPhase `json:"verdict,omitempty"`
	Time    metav1.Time   `json:"time"`
}
