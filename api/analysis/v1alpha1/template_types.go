package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnalysisTemplate describes how to measure a release: which queries to run,
// how often, and which results pass or fail. Rollouts in the same namespace
// reference it by name.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=at
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type AnalysisTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AnalysisTemplateSpec `json:"spec"`
}

// +kubebuilder:object:root=true

// AnalysisTemplateList is a list of AnalysisTemplates.
type AnalysisTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AnalysisTemplate `json:"items"`
}

// ClusterAnalysisTemplate is an AnalysisTemplate that Rollouts of every
// namespace can reference (with clusterScope: true).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=cat
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterAnalysisTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AnalysisTemplateSpec `json:"spec"`
}

// +kubebuilder:object:root=true

// ClusterAnalysisTemplateList is a list of ClusterAnalysisTemplates.
type ClusterAnalysisTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterAnalysisTemplate `json:"items"`
}

// AnalysisTemplateSpec is shared by AnalysisTemplate and ClusterAnalysisTemplate.
type AnalysisTemplateSpec struct {
	// Args are the names a query may use as {{ .args.NAME }}. An arg without a
	// value must be given by every Rollout that references the template.
	// Built-in args (namespace, rollout, workload, service, ingress,
	// stableRevision, canaryRevision, step) need no declaration.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Args []Argument `json:"args,omitempty"`

	// Metrics are measured independently; the run's verdict is the worst of
	// theirs (dry-run metrics excluded).
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Metrics []Metric `json:"metrics"`
}

// Argument is a named value substituted into queries.
type Argument struct {
	// +kubebuilder:validation:Pattern=`^[a-zA-Z][a-zA-Z0-9_]*$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Value is the default (in a template) or the value (in a Rollout or run).
	// +optional
	Value *string `json:"value,omitempty"`
}

// Metric is one measured quantity and the rule that judges it.
//
// +kubebuilder:validation:XValidation:rule="!has(self.baseline) || (!has(self.successCondition) && !has(self.failureCondition))",message="a metric with baseline is judged by the Mann-Whitney test; remove successCondition and failureCondition"
type Metric struct {
	// Name identifies the metric in the run's status and in exported metrics.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// Interval between measurements (Go duration, e.g. "30s"). With no
	// interval the metric is measured once.
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// InitialDelay waits before the first measurement, so new pods have
	// served traffic before they are judged.
	// +optional
	InitialDelay *metav1.Duration `json:"initialDelay,omitempty"`

	// Count is the number of successful-or-failed measurements to take
	// (errors are retried and do not count). Default 1, or until the step
	// ends for background analysis when an interval is set.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Count *int32 `json:"count,omitempty"`

	// SuccessCondition is an expr-lang expression over `result`; true means
	// the measurement passed.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	SuccessCondition string `json:"successCondition,omitempty"`

	// FailureCondition is an expr-lang expression over `result`; true means
	// the measurement failed. It wins over SuccessCondition.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	FailureCondition string `json:"failureCondition,omitempty"`

	// FailureLimit is the number of failed measurements tolerated; one more
	// fails the metric. Default 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	FailureLimit *int32 `json:"failureLimit,omitempty"`

	// ConsecutiveFailureLimit fails the metric after this many failed
	// measurements in a row, whatever FailureLimit says.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ConsecutiveFailureLimit *int32 `json:"consecutiveFailureLimit,omitempty"`

	// ConsecutiveErrorLimit is the number of errors in a row tolerated
	// (query or evaluation failed); one more makes the metric Error.
	// Errors are retried within 10s and do not count toward Count. Default 4.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ConsecutiveErrorLimit *int32 `json:"consecutiveErrorLimit,omitempty"`

	// InconclusiveLimit makes the metric Inconclusive after more than this
	// many inconclusive measurements. Default 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	InconclusiveLimit *int32 `json:"inconclusiveLimit,omitempty"`

	// NoData says what an empty result or NaN means. Default Inconclusive.
	// +optional
	// +kubebuilder:default=Inconclusive
	NoData NoDataPolicy `json:"noData,omitempty"`

	// DryRun metrics are measured, shown and exported but never decide.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`

	// Provider says where the values come from.
	Provider MetricProvider `json:"provider"`

	// Baseline compares the canary's values (provider query) with the
	// stable version's (baseline query) using a Mann-Whitney U test,
	// instead of absolute conditions.
	// +optional
	Baseline *BaselineComparison `json:"baseline,omitempty"`
}

// NoDataPolicy is the outcome of a measurement that returned no value.
// +kubebuilder:validation:Enum=Inconclusive;Failed;Successful;Error
type NoDataPolicy string

// The NoDataPolicy values.
const (
	NoDataInconclusive NoDataPolicy = "Inconclusive"
	NoDataFailed       NoDataPolicy = "Failed"
	NoDataSuccessful   NoDataPolicy = "Successful"
	NoDataError        NoDataPolicy = "Error"
)

// MetricProvider holds exactly one provider.
type MetricProvider struct {
	// +optional
	Prometheus *PrometheusProvider `json:"prometheus,omitempty"`
}

// PrometheusProvider queries a Prometheus-compatible HTTP API.
type PrometheusProvider struct {
	// Address of the Prometheus server, e.g. http://prometheus.monitoring:9090.
	// Empty means the controller's --prometheus-address.
	// +optional
	Address string `json:"address,omitempty"`

	// Query is a PromQL expression and a Go template: {{ .args.NAME }} and
	// the built-ins ({{ .namespace }}, {{ .canaryRevision }}, ...) are
	// replaced, escaped for label matchers, before it is sent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	Query string `json:"query"`

	// Range turns the query into a range query over the last Lookback.
	// +optional
	Range *RangeQuery `json:"range,omitempty"`

	// Timeout for one query. Default 30s.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Headers added to every request (e.g. X-Scope-OrgID for Mimir/Cortex).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Headers []Header `json:"headers,omitempty"`

	// Authentication reads credentials from a Secret in the Rollout's namespace.
	// +optional
	Authentication *PrometheusAuthentication `json:"authentication,omitempty"`

	// InsecureSkipVerify disables TLS certificate verification.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// RangeQuery runs the query over a window ending now.
type RangeQuery struct {
	// Lookback is the window's length, e.g. "5m".
	Lookback metav1.Duration `json:"lookback"`
	// Step is the resolution, e.g. "15s".
	Step metav1.Duration `json:"step"`
}

// Header is one HTTP header.
type Header struct {
	// +kubebuilder:validation:MinLength=1
	Key   string `json:"key"`
	Value string `json:"value"`
}

// PrometheusAuthentication names the Secret keys that hold credentials.
// +kubebuilder:validation:XValidation:rule="!(has(self.bearerTokenKey) && (has(self.usernameKey) || has(self.passwordKey)))",message="use either bearerTokenKey or usernameKey/passwordKey, not both"
// +kubebuilder:validation:XValidation:rule="has(self.usernameKey) == has(self.passwordKey)",message="usernameKey and passwordKey go together"
type PrometheusAuthentication struct {
	// SecretName is a Secret in the Rollout's namespace.
	// +kubebuilder:validation:MinLength=1
	SecretName string `json:"secretName"`
	// BearerTokenKey is the key of a bearer token.
	// +optional
	BearerTokenKey string `json:"bearerTokenKey,omitempty"`
	// UsernameKey and PasswordKey are the keys of basic-auth credentials.
	// +optional
	UsernameKey string `json:"usernameKey,omitempty"`
	// +optional
	PasswordKey string `json:"passwordKey,omitempty"`
	// CAKey is the key of a PEM CA bundle that signs Prometheus' certificate.
	// +optional
	CAKey string `json:"caKey,omitempty"`
}

// BaselineComparison judges the canary against the stable version with a
// two-sample Mann-Whitney U test over the samples of a window.
type BaselineComparison struct {
	// Query returns the stable version's samples (typically the provider's
	// query with {{ .stableRevision }} in place of {{ .canaryRevision }}).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	Query string `json:"query"`

	// Window of samples compared, ending at the measurement. Default 5m.
	// +optional
	Window *metav1.Duration `json:"window,omitempty"`

	// Step is the sample resolution inside the window. Default 15s.
	// +optional
	Step *metav1.Duration `json:"step,omitempty"`

	// Direction says which change is bad: Increase (e.g. latency, errors),
	// Decrease (e.g. throughput) or Either.
	// +kubebuilder:default=Increase
	// +optional
	Direction ChangeDirection `json:"direction,omitempty"`

	// ConfidencePercent is the test's confidence level. Default 95.
	// +optional
	// +kubebuilder:validation:Minimum=50
	// +kubebuilder:validation:Maximum=99
	ConfidencePercent *int32 `json:"confidencePercent,omitempty"`

	// AllowedChangePercent is the relative change of the canary's median
	// tolerated even when significant. Default 10.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	AllowedChangePercent *int32 `json:"allowedChangePercent,omitempty"`

	// MinSamples per side; fewer makes the measurement Inconclusive. Default 10.
	// +optional
	// +kubebuilder:validation:Minimum=3
	MinSamples *int32 `json:"minSamples,omitempty"`
}

// ChangeDirection is the direction of change a baseline comparison fails on.
// +kubebuilder:validation:Enum=Increase;Decrease;Either
type ChangeDirection string

// The ChangeDirection values.
const (
	ChangeIncrease ChangeDirection = "Increase"
	ChangeDecrease ChangeDirection = "Decrease"
	ChangeEither   ChangeDirection = "Either"
)

func init() {
	SchemeBuilder.Register(&AnalysisTemplate{}, &AnalysisTemplateList{}, &ClusterAnalysisTemplate{}, &ClusterAnalysisTemplateList{})
}
