// Package judge compares a canary's samples with the baseline's (the
// stable version's) with a two-sample Mann-Whitney U test, so that a
// metric can say "the canary must not be worse than stable" without a
// hand-tuned absolute threshold.
//
// A canary fails when both hold: the test finds a significant shift in the
// bad direction at the configured confidence, and the shift is larger than
// the allowed relative change. The change is that of the median, or of the
// mean when the mean moved further in the bad direction: mostly-zero data
// (error counts) has a median of 0 on both sides, which hid real
// regressions from Kayenta (spinnaker/kayenta#426). Too few samples are
// Inconclusive, never a pass. A change in spread with the same median
// (spinnaker/kayenta#780) is not what this test detects.
package judge

import (
	"fmt"
	"math"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// Defaults of BaselineComparison.
const (
	DefaultConfidencePercent    = 95
	DefaultAllowedChangePercent = 10
	DefaultMinSamples           = 10
)

// Config is a resolved BaselineComparison.
type Config struct {
	Direction            v1alpha1.ChangeDirection
	ConfidencePercent    float64
	AllowedChangePercent float64
	MinSamples           int
}

// ConfigOf applies the defaults to b.
func ConfigOf(b *v1alpha1.BaselineComparison) Config {
	c := Config{Direction: v1alpha1.ChangeIncrease, ConfidencePercent: DefaultConfidencePercent,
		AllowedChangePercent: DefaultAllowedChangePercent, MinSamples: DefaultMinSamples}
	if b == nil {
		return c
	}
	if b.Direction != "" {
		c.Direction = b.Direction
	}
	if b.ConfidencePercent != nil {
		c.ConfidencePercent = float64(*b.ConfidencePercent)
	}
	if b.AllowedChangePercent != nil {
		c.AllowedChangePercent = float64(*b.AllowedChangePercent)
	}
	if b.MinSamples != nil {
		c.MinSamples = int(*b.MinSamples)
	}
	return c
}

// Verdict is the outcome of a comparison.
type Verdict int

// The Verdict values.
const (
	Inconclusive Verdict = iota
	Pass
	Fail
)

func (v Verdict) String() string {
	return [...]string{"Inconclusive", "Pass", "Fail"}[v]
}

// Result is a comparison with the numbers behind it.
type Result struct {
	Verdict Verdict
	// Reason says in words why.
	Reason string
	// BaselineN and CanaryN are the samples used (NaN dropped).
	BaselineN, CanaryN int
	// Medians of each side.
	BaselineMedian, CanaryMedian float64
	// Change is the relative change used (0.5 = +50%); ±Inf when the
	// baseline is 0 and the canary is not.
	Change float64
	// U is the canary's U statistic, P the test's p-value.
	U, P float64
}

// Summary is the one-line value shown in a measurement.
func (r Result) Summary() string {
	if r.Verdict == Inconclusive && (r.BaselineN == 0 || r.CanaryN == 0) {
		return fmt.Sprintf("n=%d/%d", r.BaselineN, r.CanaryN)
	}
	return fmt.Sprintf("canary median %s vs baseline %s (%s), p=%.3g, n=%d/%d",
		fmtFloat(r.CanaryMedian), fmtFloat(r.BaselineMedian), percent(r.Change), r.P, r.BaselineN, r.CanaryN)
}

// Compare judges canary against baseline. NaN samples are dropped.
func Compare(baseline, canary []float64, cfg Config) Result {
	baseline, canary = dropNaN(baseline), dropNaN(canary)
	r := Result{BaselineN: len(baseline), CanaryN: len(canary)}
	minSamples := max(cfg.MinSamples, 1)
	if len(baseline) < minSamples || len(canary) < minSamples {
		r.Reason = fmt.Sprintf("too few samples to compare: baseline %d, canary %d, minSamples %d", len(baseline), len(canary), minSamples)
		return r
	}
	r.BaselineMedian, r.CanaryMedian = median(baseline), median(canary)

	alt := greater
	switch cfg.Direction {
	case v1alpha1.ChangeDecrease:
		alt = less
	case v1alpha1.ChangeEither:
		alt = twoSided
	}
	t := mannWhitney(baseline, canary, alt, true)
	r.U, r.P = t.U, t.P
	r.Change = badChange(baseline, canary, cfg.Direction)
	alpha := 1 - cfg.ConfidencePercent/100
	allowed := cfg.AllowedChangePercent / 100

	switch {
	case t.Sigma == 0:
		r.Verdict, r.Reason = Pass, "every sample of both sides is equal: no difference"
	case t.P >= alpha:
		r.Verdict = Pass
		r.Reason = fmt.Sprintf("no significant %s at %g%% confidence (p=%.3g)", what(cfg.Direction), cfg.ConfidencePercent, t.P)
	case !exceeds(r.Change, allowed, cfg.Direction):
		r.Verdict = Pass
		r.Reason = fmt.Sprintf("significant %s (p=%.3g) but within the allowed change: %s, allowed ±%g%%",
			what(cfg.Direction), t.P, percent(r.Change), cfg.AllowedChangePercent)
	default:
		r.Verdict = Fail
		r.Reason = fmt.Sprintf("canary is significantly %s than baseline at %g%% confidence (p=%.3g): %s, allowed %g%%",
			worse(r.Change), cfg.ConfidencePercent, t.P, percent(r.Change), cfg.AllowedChangePercent)
	}
	return r
}

// badChange is the relative change of the median or the mean, whichever
// moved further in the bad direction.
func badChange(baseline, canary []float64, d v1alpha1.ChangeDirection) float64 {
	med := relative(median(canary), median(baseline))
	avg := relative(mean(canary), mean(baseline))
	switch d {
	case v1alpha1.ChangeDecrease:
		return math.Min(med, avg)
	case v1alpha1.ChangeEither:
		if math.Abs(avg) > math.Abs(med) {
			return avg
		}
		return med
	default:
		return math.Max(med, avg)
	}
}

// exceeds reports whether change goes further than allowed in the bad
// direction.
func exceeds(change, allowed float64, d v1alpha1.ChangeDirection) bool {
	switch d {
	case v1alpha1.ChangeDecrease:
		return -change > allowed
	case v1alpha1.ChangeEither:
		return math.Abs(change) > allowed
	}
	return change > allowed
}

// relative is (c−b)/|b|, with a zero baseline meaning any change is
// infinitely large.
func relative(c, b float64) float64 {
	switch {
	case c == b:
		return 0
	case b == 0:
		return math.Copysign(math.Inf(1), c)
	}
	return (c - b) / math.Abs(b)
}

func dropNaN(s []float64) []float64 {
	out := make([]float64, 0, len(s))
	for _, v := range s {
		if !math.IsNaN(v) {
			out = append(out, v)
		}
	}
	return out
}

func what(d v1alpha1.ChangeDirection) string {
	switch d {
	case v1alpha1.ChangeDecrease:
		return "decrease"
	case v1alpha1.ChangeEither:
		return "change"
	}
	return "increase"
}

func worse(change float64) string {
	if change < 0 {
		return "lower"
	}
	return "higher"
}

func percent(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+∞% from a zero baseline"
	case math.IsInf(f, -1):
		return "-∞% from a zero baseline"
	}
	return fmt.Sprintf("%+.1f%%", f*100)
}

func fmtFloat(f float64) string { return fmt.Sprintf("%.4g", f) }
