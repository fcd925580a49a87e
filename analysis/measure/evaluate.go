package measure

import (
	"fmt"

	"github.com/sluicehq/sluice/analysis/condition"
	"github.com/sluicehq/sluice/analysis/judge"
	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// Outcome is the judgement of one measurement.
type Outcome struct {
	Phase v1alpha1.AnalysisPhase
	// Value is the result as text, for status.
	Value string
	// Message says what decided: the condition, the policy or the error.
	Message string
}

// Conditions are a metric's compiled conditions; nil means not set.
type Conditions struct {
	Success, Failure *condition.Program
}

// Evaluate judges one result. Empty results and NaN follow the noData
// policy (Inconclusive when unset). An infinite sample is an Error unless
// a condition calls isInf; so are a condition that cannot be evaluated and
// a metric without any condition: nothing passes or fails on a value
// nobody said how to judge. Failure wins over success.
func Evaluate(v Value, c Conditions, noData v1alpha1.NoDataPolicy) Outcome {
	shown := v.String()
	if v.NoData() {
		return noDataOutcome(v, noData)
	}
	if v.Infinite() && !c.Success.JudgesInfinity() && !c.Failure.JudgesInfinity() {
		// x/0 or a quantile beyond a histogram's last bucket: the query
		// cannot say how far off the value is, so unless the conditions
		// say what it means a person decides (an Error holds the release;
		// it never rolls back or promotes).
		return Outcome{Phase: v1alpha1.AnalysisError, Value: shown,
			Message: fmt.Sprintf("value %s is infinite: no value to judge (a division by zero, or a quantile beyond the histogram's last bucket)", shown)}
	}
	if c.Success == nil && c.Failure == nil {
		return Outcome{Phase: v1alpha1.AnalysisError, Value: shown,
			Message: "the metric has no successCondition or failureCondition, so nothing can pass it"}
	}
	if c.Failure != nil {
		ok, err := c.Failure.Eval(v.Result())
		if err != nil {
			return Outcome{Phase: v1alpha1.AnalysisError, Value: shown, Message: fmt.Sprintf("value %s: failureCondition: %v", shown, err)}
		}
		if ok {
			return Outcome{Phase: v1alpha1.AnalysisFailed, Value: shown,
				Message: fmt.Sprintf("value %s: failureCondition %q is true", shown, c.Failure)}
		}
		if c.Success == nil {
			return Outcome{Phase: v1alpha1.AnalysisSuccessful, Value: shown,
				Message: fmt.Sprintf("value %s: failureCondition %q is false", shown, c.Failure)}
		}
	}
	ok, err := c.Success.Eval(v.Result())
	switch {
	case err != nil:
		return Outcome{Phase: v1alpha1.AnalysisError, Value: shown, Message: fmt.Sprintf("value %s: successCondition: %v", shown, err)}
	case ok:
		return Outcome{Phase: v1alpha1.AnalysisSuccessful, Value: shown,
			Message: fmt.Sprintf("value %s: successCondition %q is true", shown, c.Success)}
	case c.Failure == nil:
		return Outcome{Phase: v1alpha1.AnalysisFailed, Value: shown,
			Message: fmt.Sprintf("value %s: successCondition %q is false", shown, c.Success)}
	}
	return Outcome{Phase: v1alpha1.AnalysisInconclusive, Value: shown,
		Message: fmt.Sprintf("value %s: neither successCondition %q nor failureCondition %q is true", shown, c.Success, c.Failure)}
}

// EvaluateBaseline judges the canary's samples against the baseline's
// with the Mann-Whitney test. A side without data follows the noData
// policy; too few samples are Inconclusive whatever the policy.
func EvaluateBaseline(baseline, canary Value, cfg judge.Config, noData v1alpha1.NoDataPolicy) Outcome {
	if baseline.NoData() || canary.NoData() {
		side := "canary"
		if baseline.NoData() {
			side = "baseline"
		}
		o := noDataOutcome(Value{}, noData)
		o.Message = fmt.Sprintf("no data for the %s: noData policy %s", side, policyOrDefault(noData))
		return o
	}
	r := judge.Compare(baseline.Samples, canary.Samples, cfg)
	o := Outcome{Value: r.Summary(), Message: r.Reason}
	switch r.Verdict {
	case judge.Pass:
		o.Phase = v1alpha1.AnalysisSuccessful
	case judge.Fail:
		o.Phase = v1alpha1.AnalysisFailed
	default:
		o.Phase = v1alpha1.AnalysisInconclusive
	}
	return o
}

func noDataOutcome(v Value, policy v1alpha1.NoDataPolicy) Outcome {
	policy = policyOrDefault(policy)
	what := "empty result"
	if len(v.Samples) > 0 {
		what = "value " + v.String() + " is NaN"
	}
	o := Outcome{Value: v.String(), Message: fmt.Sprintf("no data (%s): noData policy %s", what, policy)}
	switch policy {
	case v1alpha1.NoDataFailed:
		o.Phase = v1alpha1.AnalysisFailed
	case v1alpha1.NoDataSuccessful:
		o.Phase = v1alpha1.AnalysisSuccessful
	case v1alpha1.NoDataError:
		o.Phase = v1alpha1.AnalysisError
	default:
		o.Phase = v1alpha1.AnalysisInconclusive
	}
	return o
}

func policyOrDefault(p v1alpha1.NoDataPolicy) v1alpha1.NoDataPolicy {
	switch p {
	case v1alpha1.NoDataFailed, v1alpha1.NoDataSuccessful, v1alpha1.NoDataError:
		return p
	}
	return v1alpha1.NoDataInconclusive
}
