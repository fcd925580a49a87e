// Package condition compiles and evaluates the success and failure
// conditions of analysis metrics: expr-lang expressions over `result`.
//
// The environment is `result` (a float64 for scalars, a []float64 for
// vectors and matrices) and these functions:
//
//	isNaN(x)      x is NaN
//	isInf(x)      x is +Inf or -Inf
//	default(x, d) d when x is nil, NaN or an empty list, else x
//	asFloat(x)    x as a float64 (numbers and numeric strings)
//	asInt(x)      x as an int (numbers and numeric strings)
//
// plus expr's builtins for numbers and lists (len, all, any, filter, map,
// reduce, sum, mean, ...; see allowedBuiltins). Unlike Argo Rollouts,
// default really looks at x: default(result[0], 0) < 0.05 is the idiom
// for "NaN counts as zero".
//
// A condition is written by whoever may create an AnalysisTemplate and
// runs inside the controller, so it is contained (see limits.go): its size,
// the work and the time one evaluation may take and the strings it may
// build are bounded, and going over a bound is an error, never a hang.
package condition

import (
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Program is a compiled condition.
type Program struct {
	source         string
	program        *vm.Program
	limits         Limits
	judgesInfinity bool
}

// environment is what every condition sees. Result is typed `any` so that
// expressions type-check against scalars and lists alike. The meter's
// hooks, which Compile patches in, are its methods (see limits.go).
type environment struct {
	Result  any                        `expr:"result"`
	IsNaN   func(any) bool             `expr:"isNaN"`
	IsInf   func(any) bool             `expr:"isInf"`
	Default func(any, any) any         `expr:"default"`
	AsFloat func(any) (float64, error) `expr:"asFloat"`
	AsInt   func(any) (int, error)     `expr:"asInt"`
	meter   *meter
}

func env(result any, l Limits) environment {
	return environment{Result: result, IsNaN: isNaN, IsInf: isInf, Default: defaultOf, AsFloat: asFloat, AsInt: asInt,
		meter: newMeter(l, result)}
}

// Compile parses and type-checks a condition with the DefaultLimits. The
// error says where the expression is wrong.
func Compile(source string) (*Program, error) {
	return DefaultLimits.Compile(source)
}

// Compile parses and type-checks a condition with these limits.
func (l Limits) Compile(source string) (*Program, error) {
	patch := &meterPatch{}
	opts := []expr.Option{expr.Env(env(nil, l)), expr.AsBool(), expr.MaxNodes(l.MaxNodes), expr.Patch(patch)}
	for _, name := range disabledBuiltins() {
		opts = append(opts, expr.DisableBuiltin(name))
	}
	p, err := expr.Compile(source, opts...)
	if err != nil {
		return nil, err
	}
	if patch.err != nil {
		return nil, patch.err.Bind(file.NewSource(source))
	}
	return &Program{source: source, program: p, limits: l, judgesInfinity: patch.infinity}, nil
}

// JudgesInfinity reports whether the condition calls isInf: only such a
// condition is given an infinite value to judge (see measure.Evaluate).
func (p *Program) JudgesInfinity() bool { return p != nil && p.judgesInfinity }

// String returns the condition's source.
func (p *Program) String() string { return p.source }

// Eval runs the condition on a measured result. A runtime error (an index
// out of range, a type mismatch, a limit exceeded) is returned, never a
// panic.
func (p *Program) Eval(result any) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("evaluating %q: %v", p.source, r)
		}
	}()
	out, err := expr.Run(p.program, env(result, p.limits))
	if err != nil {
		return false, fmt.Errorf("evaluating %q: %w", p.source, err)
	}
	b, isBool := out.(bool)
	if !isBool {
		return false, fmt.Errorf("evaluating %q: got %T, want bool", p.source, out)
	}
	return b, nil
}

// Cache compiles each distinct condition once. Conditions are pure
// functions of their source, so the source is the key.
type Cache struct {
	programs sync.Map // string -> *Program
}

// Get returns the compiled program for source, compiling it on first use.
func (c *Cache) Get(source string) (*Program, error) {
	if p, ok := c.programs.Load(source); ok {
		return p.(*Program), nil
	}
	p, err := Compile(source)
	if err != nil {
		return nil, err
	}
	c.programs.Store(source, p)
	return p, nil
}

func isNaN(x any) bool {
	f, ok := toFloat(x)
	return ok && math.IsNaN(f)
}

func isInf(x any) bool {
	f, ok := toFloat(x)
	return ok && math.IsInf(f, 0)
}

func defaultOf(x, d any) any {
	switch v := x.(type) {
	case nil:
		return d
	case float64:
		if math.IsNaN(v) {
			return d
		}
	case []float64:
		if len(v) == 0 {
			return d
		}
	case []any:
		if len(v) == 0 {
			return d
		}
	}
	return x
}

func asFloat(x any) (float64, error) {
	if f, ok := toFloat(x); ok {
		return f, nil
	}
	if s, ok := x.(string); ok {
		return strconv.ParseFloat(s, 64)
	}
	return 0, fmt.Errorf("asFloat: cannot convert %T", x)
}

func asInt(x any) (int, error) {
	if s, ok := x.(string); ok {
		return strconv.Atoi(s)
	}
	f, ok := toFloat(x)
	if !ok {
		return 0, fmt.Errorf("asInt: cannot convert %T", x)
	}
	return int(f), nil
}

func toFloat(x any) (float64, bool) {
	switch v := x.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int32:
		return float64(v), true
	case int64:
		return float64(v), true
	}
	return 0, false
}
