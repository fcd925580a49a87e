// Package measure holds the pure decisions of an analysis: what one
// measurement means (Evaluate), how it changes its metric's result (Fold),
// when the next one is due (NextAt), and what the run's verdict is
// (Decide). Nothing here does I/O or reads the clock; the AnalysisRun
// reconciler (analysis/run) is the shell around it.
package measure

import (
	"math"
	"strconv"
	"strings"
)

// Kind is the shape of a provider's result.
type Kind int

// The Kind values. A matrix is flattened into Samples, series after series.
const (
	Vector Kind = iota
	Scalar
	Matrix
)

// Value is what a provider returned for one query.
type Value struct {
	Kind    Kind
	Samples []float64
	// Warnings are the provider's (e.g. Prometheus' "results truncated").
	Warnings []string
}

// ScalarValue is a scalar result.
func ScalarValue(f float64) Value { return Value{Kind: Scalar, Samples: []float64{f}} }

// VectorValue is an instant-vector result.
func VectorValue(fs ...float64) Value { return Value{Kind: Vector, Samples: fs} }

// Result is what conditions see as `result`: a float64 for a scalar, a
// []float64 for a vector or a matrix.
func (v Value) Result() any {
	if v.Kind == Scalar && len(v.Samples) == 1 {
		return v.Samples[0]
	}
	return append([]float64{}, v.Samples...)
}

// NoData reports whether the value carries nothing to judge: no sample,
// or only NaN (a ratio over no traffic is 0/0).
func (v Value) NoData() bool {
	for _, f := range v.Samples {
		if !math.IsNaN(f) {
			return false
		}
	}
	return true
}

// Infinite reports whether any sample is +Inf or -Inf.
func (v Value) Infinite() bool {
	for _, f := range v.Samples {
		if math.IsInf(f, 0) {
			return true
		}
	}
	return false
}

// maxShown bounds the samples written into status and messages.
const maxShown = 10

// String renders the value as status shows it: "0.5" or "[0.01,0.2]",
// long lists cut after 10 samples.
func (v Value) String() string {
	if v.Kind == Scalar && len(v.Samples) == 1 {
		return formatFloat(v.Samples[0])
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, f := range v.Samples {
		if i == maxShown {
			b.WriteString(",… " + strconv.Itoa(len(v.Samples)) + " values")
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(formatFloat(f))
	}
	b.WriteByte(']')
	return b.String()
}

// formatFloat keeps 6 significant digits: rates like 0.19999999999 are
// noise to a reader.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
