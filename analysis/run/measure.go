package run

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/analysis/condition"
	"github.com/sluicehq/sluice/analysis/judge"
	"github.com/sluicehq/sluice/analysis/measure"
	"github.com/sluicehq/sluice/analysis/prometheus"
	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// Defaults of a baseline comparison's window.
const (
	DefaultBaselineWindow = 5 * time.Minute
	DefaultBaselineStep   = 15 * time.Second
)

// measure takes one measurement of m for a run (see Measure).
func (r *Reconciler) measure(ctx context.Context, namespace string, m *v1alpha1.Metric) v1alpha1.Measurement {
	return (&measurer{Querier: r.Querier, now: r.now, conditions: &r.conditions}).measure(ctx, namespace, m)
}

// Measure takes one measurement of a rendered metric (as Build makes it)
// at now(), exactly as a run measures at each interval: the query, or the
// two of a baseline comparison, and its judgement against the conditions
// and the noData policy. It never fails: trouble is an Error measurement
// whose message says what went wrong. The kubectl plugin's plan measures
// a release's metrics once, before the release, so.
func Measure(ctx context.Context, q Querier, now func() time.Time, namespace string, m *v1alpha1.Metric) v1alpha1.Measurement {
	return (&measurer{Querier: q, now: now, conditions: &condition.Cache{}}).measure(ctx, namespace, m)
}

// measurer takes measurements: queries, the clock and compiled conditions.
type measurer struct {
	Querier    Querier
	now        func() time.Time
	conditions *condition.Cache
}

// measure takes one measurement of m: the query (two, for a baseline
// comparison) and its judgement.
func (r *measurer) measure(ctx context.Context, namespace string, m *v1alpha1.Metric) v1alpha1.Measurement {
	started := r.now()
	prom := m.Provider.Prometheus
	if prom == nil {
		return errMeasurement(started, r.now(), "metric %q has no provider: set provider.prometheus", m.Name)
	}
	var o measure.Outcome
	var warnings []string
	if b := m.Baseline; b != nil {
		w := prometheus.Window{Lookback: DefaultBaselineWindow, Step: DefaultBaselineStep}
		if b.Window != nil {
			w.Lookback = b.Window.Duration
		}
		if b.Step != nil {
			w.Step = b.Step.Duration
		}
		canary, err := r.Querier.Query(ctx, prometheus.Request{Namespace: namespace, Provider: prom, Query: prom.Query, Range: &w, Time: started})
		if err != nil {
			return errMeasurement(started, r.now(), "canary query: %v", err)
		}
		base, err := r.Querier.Query(ctx, prometheus.Request{Namespace: namespace, Provider: prom, Query: b.Query, Range: &w, Time: started})
		if err != nil {
			return errMeasurement(started, r.now(), "baseline query: %v", err)
		}
		o = measure.EvaluateBaseline(base, canary, judge.ConfigOf(b), m.NoData)
		warnings = append(canary.Warnings, base.Warnings...)
	} else {
		conds, err := r.compile(m)
		if err != nil {
			return errMeasurement(started, r.now(), "%v", err)
		}
		req := prometheus.Request{Namespace: namespace, Provider: prom, Query: prom.Query, Time: started}
		if rg := prom.Range; rg != nil {
			req.Range = &prometheus.Window{Lookback: rg.Lookback.Duration, Step: rg.Step.Duration}
		}
		v, err := r.Querier.Query(ctx, req)
		if err != nil {
			// What Prometheus warned of with an answer it could not use
			// helps to read the error.
			em := errMeasurement(started, r.now(), "%v", err)
			em.Warnings = v.Warnings
			return em
		}
		o = measure.Evaluate(v, conds, m.NoData)
		warnings = v.Warnings
	}
	s, f := metav1.NewTime(started), metav1.NewTime(r.now())
	return v1alpha1.Measurement{Phase: o.Phase, Value: o.Value, Message: o.Message, Warnings: warnings, StartedAt: &s, FinishedAt: &f}
}

// compile returns m's conditions, compiled once per distinct source.
func (r *measurer) compile(m *v1alpha1.Metric) (measure.Conditions, error) {
	var c measure.Conditions
	var err error
	if m.SuccessCondition != "" {
		if c.Success, err = r.conditions.Get(m.SuccessCondition); err != nil {
			return c, fmt.Errorf("successCondition %q does not compile: %w", m.SuccessCondition, err)
		}
	}
	if m.FailureCondition != "" {
		if c.Failure, err = r.conditions.Get(m.FailureCondition); err != nil {
			return c, fmt.Errorf("failureCondition %q does not compile: %w", m.FailureCondition, err)
		}
	}
	return c, nil
}

// errMeasurement is an Error measurement with a message.
func errMeasurement(started time.Time, now time.Time, format string, args ...any) v1alpha1.Measurement {
	s, f := metav1.NewTime(started), metav1.NewTime(now)
	return v1alpha1.Measurement{Phase: v1alpha1.AnalysisError, Message: fmt.Sprintf(format, args...), StartedAt: &s, FinishedAt: &f}
}
