package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnalysisRun is one evaluation of a release: for one Rollout, one revision
// and one step (or the whole release, for background analysis). The Rollout
// controller creates it from templates with every arg resolved, and owns it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ar
// +kubebuilder:printcolumn:name="PHASE",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="METRICS",type=string,JSONPath=`.status.summary`
// +kubebuilder:printcolumn:name="ROLLOUT",type=string,JSONPath=`.spec.rollout`
// +kubebuilder:printcolumn:name="STEP",type=integer,JSONPath=`.spec.stepIndex`
// +kubebuilder:printcolumn:name="MESSAGE",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type AnalysisRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AnalysisRunSpec   `json:"spec"`
	Status AnalysisRunStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// AnalysisRunList is a list of AnalysisRuns.
type AnalysisRunList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AnalysisRun `json:"items"`
}

// AnalysisRunSpec is a fully resolved analysis: metrics with their queries
// rendered, plus the identity of what is being judged.
type AnalysisRunSpec struct {
	// Rollout is the name of the Rollout being judged.
	Rollout string `json:"rollout"`
	// Revision is the canary revision (pod-template-hash or controller-revision-hash).
	// +optional
	Revision string `json:"revision,omitempty"`
	// StepIndex is the 1-based step this run judges; 0 for background analysis.
	// +optional
	StepIndex int32 `json:"stepIndex,omitempty"`
	// Args are the resolved values, built-ins included.
	// +optional
	// +listType=map
	// +listMapKey=name
	Args []Argument `json:"args,omitempty"`
	// Metrics with their queries rendered from Args.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	Metrics []Metric `json:"metrics"`
	// Terminate stops measuring; the run ends with the verdict so far.
	// +optional
	Terminate bool `json:"terminate,omitempty"`
}

// AnalysisPhase is the state of a measurement, a metric or a run.
// +kubebuilder:validation:Enum=Pending;Running;Successful;Failed;Error;Inconclusive
type AnalysisPhase string

// The AnalysisPhase values.
const (
	AnalysisPending      AnalysisPhase = "Pending"
	AnalysisRunning      AnalysisPhase = "Running"
	AnalysisSuccessful   AnalysisPhase = "Successful"
	AnalysisFailed       AnalysisPhase = "Failed"
	AnalysisError        AnalysisPhase = "Error"
	AnalysisInconclusive AnalysisPhase = "Inconclusive"
)

// Completed reports whether the phase is final.
func (p AnalysisPhase) Completed() bool {
	switch p {
	case AnalysisSuccessful, AnalysisFailed, AnalysisError, AnalysisInconclusive:
		return true
	}
	return false
}

// AnalysisRunStatus is the observed progress and verdict of a run.
type AnalysisRunStatus struct {
	// +optional
	Phase AnalysisPhase `json:"phase,omitempty"`
	// Message explains the phase: which metric decided, with which value.
	// +optional
	Message string `json:"message,omitempty"`
	// Summary counts metrics by phase, e.g. "2 Successful, 1 Running".
	// +optional
	Summary string `json:"summary,omitempty"`
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=name
	MetricResults []MetricResult `json:"metricResults,omitempty"`
}

// MetricResult is the history and verdict of one metric.
type MetricResult struct {
	Name  string        `json:"name"`
	Phase AnalysisPhase `json:"phase"`
	// Query is the query as sent, after rendering.
	// +optional
	Query string `json:"query,omitempty"`
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
	// Measurements are the most recent ones, newest last (at most 10).
	// +optional
	Measurements []Measurement `json:"measurements,omitempty"`
	// +optional
	Count int32 `json:"count,omitempty"`
	// +optional
	Successful int32 `json:"successful,omitempty"`
	// +optional
	Failed int32 `json:"failed,omitempty"`
	// +optional
	Inconclusive int32 `json:"inconclusive,omitempty"`
	// +optional
	Error int32 `json:"error,omitempty"`
	// +optional
	ConsecutiveFailed int32 `json:"consecutiveFailed,omitempty"`
	// +optional
	ConsecutiveError int32 `json:"consecutiveError,omitempty"`
	// Message explains the metric's phase.
	// +optional
	Message string `json:"message,omitempty"`
	// LastError is the most recent query or evaluation error.
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// Measurement is one query and its judgement.
type Measurement struct {
	Phase AnalysisPhase `json:"phase"`
	// Value is the result as text, e.g. "[0.012]" or "0.5".
	// +optional
	Value string `json:"value,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	Warnings []string `json:"warnings,omitempty"`
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
}

func init() {
	SchemeBuilder.Register(&AnalysisRun{}, &AnalysisRunList{})
}
