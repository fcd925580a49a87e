package condition

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Conditions that would hang or exhaust the controller's memory without
// the limits: each fails with an error that says which limit. (The time
// limit is set out of reach, so that a loaded machine cannot turn a step
// limit into a time limit; TestLimitsStopALongEvaluationInTime has it.)
func TestLimitsContainHostileConditions(t *testing.T) {
	result := make([]float64, 2000)
	limits := DefaultLimits
	limits.MaxDuration = time.Hour
	cases := []struct {
		name, cond, wantErr string
		compileErr          bool
	}{
		{name: "a loop per pair of samples", cond: "all(result, all(result, true))", wantErr: "needs more than 200000 steps"},
		{name: "count over all", cond: "count(result, all(result, # == 0)) == 5", wantErr: "needs more than 200000 steps"},
		{name: "map over map", cond: "map(result, map(result, #)) != nil", wantErr: "a list inside a list"},
		{name: "string doubled in a reduce", cond: `len(reduce(1..40, #acc + #acc, "x")) > 0`, wantErr: "a string longer than 65536 bytes"},
		{name: "string doubled by lets", cond: `let a0 = "xxxxxxxx"; ` + doublings(20) + "len(a20) > 0", wantErr: "a string longer than 65536 bytes"},
		{name: "list holding itself twice, compared", cond: "reduce(1..50, [#acc, #acc], 1) == reduce(1..50, [#acc, #acc], 1)", wantErr: "a list inside a list"},
		{name: "list of lists built by map", cond: "len(map(result, [#])) > 0", wantErr: "a list inside a list"},
		{name: "list of lists built by lets", cond: "let a = [1, 1]; let b = [a, a]; b == b", wantErr: "a list inside a list"},
		{name: "huge range", cond: "1..1000000 == nil", wantErr: "memory budget exceeded"},
		{name: "sorting the result once per sample", cond: "all(result, sort(result) != nil)", wantErr: "memory budget exceeded"},
		{name: "map literal", cond: `{"a": 1}.a == 1`, compileErr: true, wantErr: "map literals are not supported"},
		{name: "repeat is not a condition's business", cond: `len(repeat("x", 1000000)) > 0`, compileErr: true, wantErr: "unknown name repeat"},
		{name: "toJSON is not either", cond: `len(toJSON(result)) > 0`, compileErr: true, wantErr: "unknown name toJSON"},
		{name: "nor the clock", cond: `now() != nil`, compileErr: true, wantErr: "unknown name now"},
		{name: "an expression too large", cond: strings.Repeat("1 + ", 1000) + "1 > 0", compileErr: true, wantErr: "exceeds maximum allowed nodes"},
		{name: "matches on a list", cond: `result matches "a"`, wantErr: "interface conversion"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := limits.Compile(tc.cond)
			if tc.compileErr {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("compile err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if _, err := p.Eval(result); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// doublings is "let a1 = a0 + a0; let a2 = a1 + a1; ..." up to an.
func doublings(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "let a%d = a%d + a%d; ", i, i-1, i-1)
	}
	return b.String()
}

// Conditions within the limits keep working: lists of numbers, a loop
// over the result, strings and ranges that stay small.
func TestLimitsLetOrdinaryConditionsThrough(t *testing.T) {
	result := make([]float64, 2000)
	for _, cond := range []string{
		"all(result, # < 1)",
		"all(map(result, # + 1), # > 0)",
		"sum(map(result, # * 2)) == 0",
		"reduce(result, #acc + #, 0) == 0",
		"count(result, # == 0) == 2000 && len(filter(result, # > 1)) == 0",
		"[1, 2, 3] == [1, 2, 3] && 1 in [1, 2]",
		`"a" + "b" == "ab"`,
		"max(result) - min(result) == 0 && mean(result) == median(result)",
		"len(sort(result)) == 2000 && first(reverse(result)) == 0",
		"all(1..1000, # > 0)",
	} {
		p, err := Compile(cond)
		if err != nil {
			t.Fatalf("%s: compile: %v", cond, err)
		}
		if ok, err := p.Eval(result); err != nil || !ok {
			t.Errorf("%s = %v, %v; want true", cond, ok, err)
		}
	}
}

func TestLimitsStopALongEvaluationInTime(t *testing.T) {
	l := DefaultLimits
	l.MaxSteps, l.StepsPerSample, l.MaxDuration = 1<<40, 0, 50*time.Millisecond
	p, err := l.Compile("all(result, all(result, all(result, true)))")
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Eval(make([]float64, 1000))
	if err == nil || !strings.Contains(err.Error(), "ran longer than 50ms") {
		t.Fatalf("err = %v, want the time limit", err)
	}
}
