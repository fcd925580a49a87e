package measure

import (
	"math"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/analysis/condition"
	"github.com/sluicehq/sluice/analysis/judge"
	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

func prog(t testing.TB, src string) *condition.Program {
	t.Helper()
	if src == "" {
		return nil
	}
	p, err := condition.Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvaluate(t *testing.T) {
	nan := math.NaN()
	const (
		ok   = v1alpha1.AnalysisSuccessful
		bad  = v1alpha1.AnalysisFailed
		inc  = v1alpha1.AnalysisInconclusive
		oops = v1alpha1.AnalysisError
	)
	for _, tc := range []struct {
		name             string
		value            Value
		success, failure string
		noData           v1alpha1.NoDataPolicy
		want             v1alpha1.AnalysisPhase
		msg              string
	}{
		{"success true", VectorValue(0.01), "result[0] < 0.05", "", "", ok, `value [0.01]: successCondition "result[0] < 0.05" is true`},
		{"success false fails", VectorValue(0.2), "result[0] < 0.05", "", "", bad, `value [0.2]: successCondition "result[0] < 0.05" is false`},
		{"failure true", VectorValue(0.2), "", "result[0] > 0.05", "", bad, `failureCondition "result[0] > 0.05" is true`},
		{"failure false passes", VectorValue(0.01), "", "result[0] > 0.05", "", ok, `failureCondition "result[0] > 0.05" is false`},
		{"both: success", VectorValue(0.01), "result[0] < 0.05", "result[0] > 0.1", "", ok, "successCondition"},
		{"both: failure", VectorValue(0.2), "result[0] < 0.05", "result[0] > 0.1", "", bad, "failureCondition"},
		{"both: neither", VectorValue(0.07), "result[0] < 0.05", "result[0] > 0.1", "", inc, "neither"},
		{"failure wins over success", VectorValue(0.2), "result[0] > 0", "result[0] > 0.1", "", bad, "failureCondition"},
		{"scalar", ScalarValue(3), "result == 3", "", "", ok, "value 3:"},
		{"no condition is never a pass", VectorValue(1), "", "", "", oops, "no successCondition or failureCondition"},
		{"runtime error", VectorValue(1), "result[3] < 1", "", "", oops, "successCondition: evaluating"},
		{"runtime error in failure", VectorValue(1), "", "result[3] > 1", "", oops, "failureCondition: evaluating"},
		{"empty default Inconclusive", VectorValue(), "result[0] < 1", "", "", inc, "no data (empty result): noData policy Inconclusive"},
		{"empty Failed", VectorValue(), "result[0] < 1", "", v1alpha1.NoDataFailed, bad, "noData policy Failed"},
		{"empty Successful", VectorValue(), "result[0] < 1", "", v1alpha1.NoDataSuccessful, ok, "noData policy Successful"},
		{"empty Error", VectorValue(), "result[0] < 1", "", v1alpha1.NoDataError, oops, "noData policy Error"},
		{"empty unknown policy", VectorValue(), "result[0] < 1", "", "Bogus", inc, "noData policy Inconclusive"},
		{"empty without condition", VectorValue(), "", "", "", inc, "no data"},
		{"NaN vector default", VectorValue(nan), "result[0] < 1", "", "", inc, "value [NaN] is NaN"},
		{"NaN scalar Failed", ScalarValue(nan), "result < 1", "", v1alpha1.NoDataFailed, bad, "value NaN is NaN"},
		{"all NaN", VectorValue(nan, nan), "result[0] < 1", "", "", inc, "no data"},
		{"partly NaN goes to conditions", VectorValue(nan, 0.5), "all(result, {isNaN(#) || # < 1})", "", "", ok, "[NaN,0.5]"},
		{"+Inf is data where a condition calls isInf", VectorValue(math.Inf(1)), "", "isInf(result[0])", "", bad, "+Inf"},
		{"+Inf is not judged by a condition that ignores it", VectorValue(math.Inf(1)), "result[0] < 0.05", "", "", v1alpha1.AnalysisError, "infinite"},
		{"-Inf passes no condition that ignores it", VectorValue(0.01, math.Inf(-1)), "all(result, {# < 0.05})", "", "", v1alpha1.AnalysisError, "infinite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Evaluate(tc.value, Conditions{Success: prog(t, tc.success), Failure: prog(t, tc.failure)}, tc.noData)
			if got.Phase != tc.want || !strings.Contains(got.Message, tc.msg) {
				t.Errorf("got %s %q, want %s containing %q", got.Phase, got.Message, tc.want, tc.msg)
			}
			if got.Value != tc.value.String() {
				t.Errorf("value %q, want %q", got.Value, tc.value.String())
			}
		})
	}
}

func TestEvaluateBaseline(t *testing.T) {
	base := make([]float64, 20)
	slow := make([]float64, 20)
	for i := range base {
		base[i] = 0.1 + float64(i)/1000
		slow[i] = 0.3 + float64(i)/1000
	}
	cfg := judge.ConfigOf(nil)
	for _, tc := range []struct {
		name             string
		baseline, canary Value
		noData           v1alpha1.NoDataPolicy
		want             v1alpha1.AnalysisPhase
		msg              string
	}{
		{"slow", VectorValue(base...), VectorValue(slow...), "", v1alpha1.AnalysisFailed, "significantly higher"},
		{"same", VectorValue(base...), VectorValue(base...), "", v1alpha1.AnalysisSuccessful, "no significant"},
		{"few", VectorValue(base[:3]...), VectorValue(slow...), "", v1alpha1.AnalysisInconclusive, "too few samples"},
		{"few with noData Successful is still not a pass", VectorValue(base[:3]...), VectorValue(slow...), v1alpha1.NoDataSuccessful, v1alpha1.AnalysisInconclusive, "too few"},
		{"no canary data", VectorValue(base...), VectorValue(), v1alpha1.NoDataFailed, v1alpha1.AnalysisFailed, "no data for the canary: noData policy Failed"},
		{"no baseline data", VectorValue(math.NaN()), VectorValue(slow...), "", v1alpha1.AnalysisInconclusive, "no data for the baseline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := EvaluateBaseline(tc.baseline, tc.canary, cfg, tc.noData)
			if got.Phase != tc.want || !strings.Contains(got.Message, tc.msg) {
				t.Errorf("got %s %q (%s), want %s containing %q", got.Phase, got.Message, got.Value, tc.want, tc.msg)
			}
		})
	}
}

func TestValueString(t *testing.T) {
	long := make([]float64, 12)
	for _, tc := range []struct {
		v    Value
		want string
	}{
		{ScalarValue(0.5), "0.5"},
		{VectorValue(), "[]"},
		{VectorValue(0.19999999999, 1e-9), "[0.2,1e-09]"},
		{Value{Kind: Matrix, Samples: []float64{1, 2}}, "[1,2]"},
		{VectorValue(long...), "[0,0,0,0,0,0,0,0,0,0,… 12 values]"},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.v, got, tc.want)
		}
	}
	if r, ok := ScalarValue(2).Result().(float64); !ok || r != 2 {
		t.Errorf("scalar result %v", ScalarValue(2).Result())
	}
	if r, ok := VectorValue(1, 2).Result().([]float64); !ok || len(r) != 2 {
		t.Errorf("vector result %v", VectorValue(1, 2).Result())
	}
}
