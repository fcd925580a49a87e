package condition

import (
	"math"
	"strings"
	"testing"
	"time"
)

// FuzzCondition compiles any text as a condition and evaluates whatever
// compiles on a result built from the fuzz bytes. It checks that hostile
// conditions (deep nesting, huge literals, loops inside loops, strings or
// lists that double) are contained: Compile and Eval return, never panic,
// within a bound far above the limit; and that a verdict is a pure function
// of the condition and the result (the same twice, the result unchanged).
// The seeds are the conditions of docs/examples, e2e and the unit tests;
// testdata/fuzz/FuzzCondition holds the hostile ones.
func FuzzCondition(f *testing.F) {
	for _, cond := range []string{
		"result[0] < 0.05", "result[0] < 0.25", "result[0] < 1", "result[0] < 0", "true",
		"default(result[0], 0) < 0.05", "len(result) > 0 && result[0] > 1", "result[0] > 0.9",
		"result >= 0.95", "all(result, # < 1000)", "len(result) == 0", "isNaN(result[0])",
		"isInf(result)", "default(result, 1) == 1", `asFloat("0.5") == 0.5`, "asInt(result) == 3",
	} {
		f.Add(cond, []byte{0, 5, 100, 250})
		f.Add(cond, []byte{1, 3})
	}
	limits := DefaultLimits
	limits.MaxDuration = 100 * time.Millisecond
	// bound is what "never hangs" means here: far above MaxDuration, so
	// that a loaded machine does not fail it, far below a hang.
	const bound = 10 * time.Second
	f.Fuzz(func(t *testing.T, source string, samples []byte) {
		start := time.Now()
		p, err := limits.Compile(source)
		if d := time.Since(start); d > bound {
			t.Fatalf("compiling took %s", d)
		}
		if err != nil {
			return
		}
		result := resultOf(samples)
		before := resultOf(samples)
		start = time.Now()
		ok1, err1 := p.Eval(result)
		if d := time.Since(start); d > bound {
			t.Fatalf("evaluating took %s (limit %s): %v", d, limits.MaxDuration, err1)
		}
		if !sameResult(result, before) {
			t.Fatalf("evaluating changed the result: %v, was %v", result, before)
		}
		ok2, err2 := p.Eval(result)
		if timedOut(err1) || timedOut(err2) {
			return
		}
		if ok1 != ok2 || (err1 == nil) != (err2 == nil) {
			t.Fatalf("two evaluations disagree: %v, %v and %v, %v", ok1, err1, ok2, err2)
		}
	})
}

// resultOf makes a condition's result from fuzz bytes: nil for none, a
// scalar when the first byte is odd, else a vector; each further byte is
// a sample, 0 to 2.39 in steps of 0.01 or one of the values that trip
// conditions up.
func resultOf(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	special := []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, 0.05, 1e-300, 1e300, math.MaxInt64, -0.0, 1000, 0.5, 3.7, -1e-9, 100, 2, 1}
	sample := func(c byte) float64 {
		if c >= 240 {
			return special[c-240]
		}
		return float64(c) / 100
	}
	if b[0]%2 == 1 {
		if len(b) < 2 {
			return 0.0
		}
		return sample(b[1])
	}
	out := make([]float64, 0, len(b)-1)
	for _, c := range b[1:] {
		out = append(out, sample(c))
	}
	return out
}

func sameResult(a, b any) bool {
	as, aok := a.([]float64)
	bs, bok := b.([]float64)
	if !aok || !bok {
		af, _ := a.(float64)
		bf, _ := b.(float64)
		return aok == bok && math.Float64bits(af) == math.Float64bits(bf)
	}
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		if math.Float64bits(as[i]) != math.Float64bits(bs[i]) {
			return false
		}
	}
	return true
}

func timedOut(err error) bool {
	return err != nil && strings.Contains(err.Error(), "ran longer than")
}
