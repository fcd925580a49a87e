package condition

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestEval(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name    string
		cond    string
		result  any
		want    bool
		wantErr string
	}{
		{name: "vector below threshold", cond: "result[0] < 0.05", result: []float64{0.01}, want: true},
		{name: "vector above threshold", cond: "result[0] < 0.05", result: []float64{0.2}, want: false},
		{name: "scalar", cond: "result >= 0.95", result: 0.99, want: true},
		{name: "all of a matrix", cond: "all(result, # < 1000)", result: []float64{10, 999}, want: true},
		{name: "len of empty", cond: "len(result) == 0", result: []float64{}, want: true},
		{name: "isNaN", cond: "isNaN(result[0])", result: []float64{nan}, want: true},
		{name: "isInf", cond: "isInf(result)", result: math.Inf(-1), want: true},
		{name: "default replaces NaN", cond: "default(result[0], 0) < 0.05", result: []float64{nan}, want: true},
		{name: "default keeps a value", cond: "default(result[0], 0) < 0.05", result: []float64{0.3}, want: false},
		{name: "default replaces nil", cond: "default(result, 1) == 1", result: nil, want: true},
		{name: "asFloat of a string", cond: `asFloat("0.5") == 0.5`, result: nil, want: true},
		{name: "asInt", cond: "asInt(result) == 3", result: 3.7, want: true},
		{name: "index out of range is an error", cond: "result[0] < 1", result: []float64{}, wantErr: "out of range"},
		{name: "asFloat of garbage is an error", cond: `asFloat("x") > 1`, result: nil, wantErr: "invalid syntax"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.cond)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			got, err := p.Eval(tc.result)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCompileRejects(t *testing.T) {
	for _, src := range []string{
		"result[0] <",       // syntax
		"len(result) + 1",   // not a bool
		"unknownFn(result)", // unknown function
	} {
		if _, err := Compile(src); err == nil {
			t.Errorf("Compile(%q) succeeded, want an error", src)
		}
	}
}

func TestCacheCompilesOnce(t *testing.T) {
	var c Cache
	a, err := c.Get("result > 1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Get("result > 1")
	if a != b {
		t.Fatal("the same source must give the same program")
	}
	if _, err := c.Get("result >"); err == nil {
		t.Fatal("want a compile error")
	}
}

// BenchmarkEval is the cost of one evaluation of the docs' error-rate
// condition as the AnalysisRun reconciler makes it (compiled once, looked
// up in the Cache), against compiling it for every evaluation; it prints
// both and their ratio.
func BenchmarkEval(b *testing.B) {
	const source = "default(result[0], 0) < 0.05"
	result := []float64{0.01}
	check := func(b *testing.B, p *Program, err error) {
		if err != nil {
			b.Fatal(err)
		}
		if ok, err := p.Eval(result); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
	var cached, compiling float64
	b.Run("cached", func(b *testing.B) {
		var c Cache
		b.ReportAllocs()
		for b.Loop() {
			p, err := c.Get(source)
			check(b, p, err)
		}
		cached = nsPerOp(b)
	})
	b.Run("compiling-each-time", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p, err := Compile(source)
			check(b, p, err)
		}
		compiling = nsPerOp(b)
	})
	if cached > 0 && compiling > 0 {
		fmt.Printf("condition %q: %.0f ns per evaluation compiled and cached, %.0f ns compiling each time: caching is %.0fx cheaper\n",
			source, cached, compiling, compiling/cached)
	}
}

func nsPerOp(b *testing.B) float64 {
	if b.N == 0 {
		return 0
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}
