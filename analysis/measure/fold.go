package measure

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// Defaults of a metric's limits and timing.
const (
	DefaultCount                 = 1
	DefaultConsecutiveErrorLimit = 4
	// MaxErrorRetryDelay bounds the wait after an error: errors are
	// retried quickly, not at the metric's interval (argo-rollouts#1008).
	MaxErrorRetryDelay = 10 * time.Second
	// HistoryLimit is how many measurements a metric keeps in status.
	HistoryLimit = 10
)

// Limits are a metric's limits with defaults applied.
type Limits struct {
	// Count is the number of non-error measurements to take; 0 means
	// until the run is terminated.
	Count                   int32
	FailureLimit            int32
	ConsecutiveFailureLimit int32 // 0: off
	ConsecutiveErrorLimit   int32
	InconclusiveLimit       int32
}

// LimitsOf resolves m's limits. A background run (one that lasts the
// whole release) measures a metric with an interval and no count until
// it is terminated.
func LimitsOf(m *v1alpha1.Metric, background bool) Limits {
	l := Limits{Count: DefaultCount, ConsecutiveErrorLimit: DefaultConsecutiveErrorLimit}
	switch {
	case m.Count != nil:
		l.Count = *m.Count
	case background && m.Interval != nil:
		l.Count = 0
	}
	if m.FailureLimit != nil {
		l.FailureLimit = *m.FailureLimit
	}
	if m.ConsecutiveFailureLimit != nil {
		l.ConsecutiveFailureLimit = *m.ConsecutiveFailureLimit
	}
	if m.ConsecutiveErrorLimit != nil {
		l.ConsecutiveErrorLimit = *m.ConsecutiveErrorLimit
	}
	if m.InconclusiveLimit != nil {
		l.InconclusiveLimit = *m.InconclusiveLimit
	}
	return l
}

// Fold adds a measurement to a metric's result and decides the metric's
// phase. It returns a new result; r is not modified. A completed metric
// is returned unchanged.
func Fold(r v1alpha1.MetricResult, m v1alpha1.Measurement, l Limits) v1alpha1.MetricResult {
	if r.Phase.Completed() {
		return r
	}
	hist := make([]v1alpha1.Measurement, 0, HistoryLimit)
	if n := len(r.Measurements); n >= HistoryLimit {
		hist = append(hist, r.Measurements[n-HistoryLimit+1:]...)
	} else {
		hist = append(hist, r.Measurements...)
	}
	r.Measurements = append(hist, m)

	switch m.Phase {
	case v1alpha1.AnalysisError:
		r.Error++
		r.ConsecutiveError++
		r.LastError = m.Message
	case v1alpha1.AnalysisFailed:
		r.Count++
		r.Failed++
		r.ConsecutiveFailed++
		r.ConsecutiveError = 0
	case v1alpha1.AnalysisInconclusive:
		r.Count++
		r.Inconclusive++
		r.ConsecutiveFailed = 0
		r.ConsecutiveError = 0
	default:
		r.Count++
		r.Successful++
		r.ConsecutiveFailed = 0
		r.ConsecutiveError = 0
	}

	r.Phase, r.Message = v1alpha1.AnalysisRunning, ""
	switch {
	case r.ConsecutiveError > l.ConsecutiveErrorLimit:
		r.Phase = v1alpha1.AnalysisError
		r.Message = fmt.Sprintf("%s (%d errors in a row, consecutiveErrorLimit %d)", m.Message, r.ConsecutiveError, l.ConsecutiveErrorLimit)
	case m.Phase == v1alpha1.AnalysisFailed && r.Failed > l.FailureLimit:
		r.Phase = v1alpha1.AnalysisFailed
		r.Message = fmt.Sprintf("%s (%d of %d measurements failed, failureLimit %d)", m.Message, r.Failed, r.Count, l.FailureLimit)
	case m.Phase == v1alpha1.AnalysisFailed && l.ConsecutiveFailureLimit > 0 && r.ConsecutiveFailed >= l.ConsecutiveFailureLimit:
		r.Phase = v1alpha1.AnalysisFailed
		r.Message = fmt.Sprintf("%s (%d failed in a row, consecutiveFailureLimit %d)", m.Message, r.ConsecutiveFailed, l.ConsecutiveFailureLimit)
	case r.Inconclusive > l.InconclusiveLimit:
		r.Phase = v1alpha1.AnalysisInconclusive
		r.Message = fmt.Sprintf("%s (%d inconclusive, inconclusiveLimit %d)", m.Message, r.Inconclusive, l.InconclusiveLimit)
	case l.Count > 0 && r.Count >= l.Count:
		r = complete(r, m.Message)
	}
	return r
}

// complete ends a metric that took all its measurements (or was
// terminated). Without a single successful measurement it is
// Inconclusive: tolerated failures or inconclusive results alone never
// make a pass.
func complete(r v1alpha1.MetricResult, last string) v1alpha1.MetricResult {
	if r.Successful == 0 {
		r.Phase = v1alpha1.AnalysisInconclusive
		if r.Count == 0 {
			r.Message = "terminated before any measurement"
		} else {
			r.Message = fmt.Sprintf("no measurement passed: %s", last)
		}
		return r
	}
	r.Phase = v1alpha1.AnalysisSuccessful
	r.Message = fmt.Sprintf("%d of %d measurements passed; last: %s", r.Successful, r.Count, last)
	return r
}

// Terminate ends a metric still being measured when its run is told to
// stop: the verdict is what it has measured so far.
func Terminate(r v1alpha1.MetricResult) v1alpha1.MetricResult {
	if r.Phase.Completed() {
		return r
	}
	last := "terminated"
	if n := len(r.Measurements); n > 0 {
		last = r.Measurements[n-1].Message
	}
	return complete(r, last)
}

// NextAt is when m should be measured next, given its result and when the
// run started; ok is false when it is complete. The first measurement
// waits InitialDelay; after an error, the retry waits min(interval, 10s);
// otherwise the interval runs from the end of the last measurement.
func NextAt(r v1alpha1.MetricResult, m *v1alpha1.Metric, started time.Time) (next time.Time, ok bool) {
	if r.Phase.Completed() {
		return time.Time{}, false
	}
	n := len(r.Measurements)
	if n == 0 {
		delay := time.Duration(0)
		if m.InitialDelay != nil {
			delay = m.InitialDelay.Duration
		}
		return started.Add(delay), true
	}
	last := r.Measurements[n-1]
	at := started
	switch {
	case last.FinishedAt != nil:
		at = last.FinishedAt.Time
	case last.StartedAt != nil:
		at = last.StartedAt.Time
	}
	interval := MaxErrorRetryDelay // without an interval, a re-measurement is a retry
	if m.Interval != nil && m.Interval.Duration > 0 {
		interval = m.Interval.Duration
	}
	if last.Phase == v1alpha1.AnalysisError {
		return at.Add(min(interval, MaxErrorRetryDelay)), true
	}
	return at.Add(interval), true
}
