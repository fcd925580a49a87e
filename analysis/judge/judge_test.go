package judge

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// samples draws n values of base·exp(N(0, 0.2)) — latency-like — from a
// fixed seed, so the tests are deterministic.
func samples(seed uint64, n int, base float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]float64, n)
	for i := range out {
		out[i] = base * math.Exp(0.2*r.NormFloat64())
	}
	return out
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// sparse is n zeros with ones at the first k places: error counts of a
// version that fails rarely.
func sparse(n, k int) []float64 {
	out := make([]float64, n)
	for i := range k {
		out[i] = 1
	}
	return out
}

func TestCompare(t *testing.T) {
	cfg := ConfigOf(nil)
	decrease := cfg
	decrease.Direction = v1alpha1.ChangeDecrease
	either := cfg
	either.Direction = v1alpha1.ChangeEither
	lenient := cfg
	lenient.AllowedChangePercent = 50

	for _, tc := range []struct {
		name             string
		baseline, canary []float64
		cfg              Config
		want             Verdict
		reason           string
	}{
		{"slow canary fails", samples(1, 30, 0.1), samples(2, 30, 0.3), cfg, Fail, "significantly higher"},
		{"same distribution passes", samples(1, 30, 0.1), samples(2, 30, 0.1), cfg, Pass, "no significant increase"},
		{"faster canary passes an Increase test", samples(1, 30, 0.3), samples(2, 30, 0.1), cfg, Pass, "no significant increase"},
		{"slower throughput fails a Decrease test", samples(1, 30, 100), samples(2, 30, 50), decrease, Fail, "significantly lower"},
		{"Either catches a decrease", samples(1, 30, 100), samples(2, 30, 50), either, Fail, "significantly lower"},
		{"Either catches an increase", samples(1, 30, 0.1), samples(2, 30, 0.3), either, Fail, "significantly higher"},
		{"significant but allowed", samples(1, 40, 0.1), samples(1, 40, 0.12), lenient, Pass, "within the allowed change"},
		{"too few samples is never a pass", samples(1, 9, 0.1), samples(2, 30, 0.1), cfg, Inconclusive, "too few samples"},
		{"no samples", nil, nil, cfg, Inconclusive, "too few samples"},
		{"NaN samples do not count", append(samples(1, 8, 0.1), math.NaN(), math.NaN()), samples(2, 30, 0.1), cfg, Inconclusive, "baseline 8"},
		// Kayenta added noise to constant data; equal constants simply
		// show no difference, different constants a certain one.
		{"all samples equal", repeat(0.2, 20), repeat(0.2, 20), cfg, Pass, "every sample"},
		{"constant but higher", repeat(0.2, 20), repeat(0.4, 20), cfg, Fail, "+100.0%"},
		{"all zeros on both sides", repeat(0, 20), repeat(0, 20), cfg, Pass, "every sample"},
		// spinnaker/kayenta#426: mostly-zero error counts. Both medians
		// are 0, so the mean decides the size of the change.
		{"sparse errors in the canary fail", repeat(0, 30), sparse(30, 10), cfg, Fail, "+∞% from a zero baseline"},
		{"one blip is not significant", repeat(0, 30), sparse(30, 1), cfg, Pass, "no significant increase"},
		{"sparse on both sides, same rate", sparse(30, 5), sparse(30, 5), cfg, Pass, "no significant increase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(tc.baseline, tc.canary, tc.cfg)
			if got.Verdict != tc.want || !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("got %s (%s), want %s with %q; %s", got.Verdict, got.Reason, tc.want, tc.reason, got.Summary())
			}
		})
	}
}

func TestConfigOf(t *testing.T) {
	c := ConfigOf(&v1alpha1.BaselineComparison{})
	if c.Direction != v1alpha1.ChangeIncrease || c.ConfidencePercent != 95 || c.AllowedChangePercent != 10 || c.MinSamples != 10 {
		t.Errorf("defaults: %+v", c)
	}
	p := func(i int32) *int32 { return &i }
	c = ConfigOf(&v1alpha1.BaselineComparison{Direction: v1alpha1.ChangeEither, ConfidencePercent: p(99), AllowedChangePercent: p(0), MinSamples: p(3)})
	if c.Direction != v1alpha1.ChangeEither || c.ConfidencePercent != 99 || c.AllowedChangePercent != 0 || c.MinSamples != 3 {
		t.Errorf("explicit: %+v", c)
	}
}

func TestSummary(t *testing.T) {
	got := Compare(samples(1, 30, 0.1), samples(2, 30, 0.3), ConfigOf(nil)).Summary()
	for _, want := range []string{"canary median 0.29", "vs baseline 0.10", "n=30/30", "p="} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
}
