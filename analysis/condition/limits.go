package condition

import (
	"fmt"
	"reflect"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm/runtime"
)

// Limits bound what one condition may cost. expr itself bounds the size of
// an expression (MaxNodes) and the memory of ranges, arrays and maps one
// run builds (its VM's memory budget, 1e6 elements), but it cannot stop a
// running program, and a list that holds another list twice, built 60
// times over inside a reduce, is small in memory yet 2^60 elements to
// compare or to take the max of. So Compile patches hooks in (meterPatch):
//   - every iteration of a predicate (all, filter, map, reduce, ...) is a
//     step, which fails the evaluation past MaxSteps or MaxDuration;
//   - every `+` that may join strings checks the length first (MaxString);
//   - lists stay flat: an array literal or a map() element that is itself
//     a list is an error, and map literals are rejected when compiling.
//
// Every list is then a flat list of numbers (or short strings), no longer
// than the result, a range within the memory budget or the steps that
// built it, so every builtin over one takes time linear in its length.
type Limits struct {
	// MaxNodes bounds the size of the expression (expr's node count).
	MaxNodes uint
	// MaxSteps is the number of predicate iterations an evaluation may
	// make; StepsPerSample more for each sample of the result, so that a
	// large matrix can still be visited a few times, but not once per pair
	// of samples. With the defaults a condition over 10 000 samples may
	// make 1 000 000 steps: all(result, ...) is 10 000 of them, while
	// all(result, all(result, ...)) would need 100 000 000.
	MaxSteps, StepsPerSample int
	// MaxDuration bounds one evaluation's time, looked at every step: the
	// step that crosses it still runs to its end.
	MaxDuration time.Duration
	// MaxString bounds the length of a string a condition builds with +.
	MaxString int
}

// DefaultLimits are the limits of Compile. A condition such as
// `default(result[0], 0) < 0.05` takes well under a microsecond.
var DefaultLimits = Limits{
	MaxNodes:       1000,
	MaxSteps:       100_000,
	StepsPerSample: 100,
	MaxDuration:    time.Second,
	MaxString:      64 << 10,
}

// allowedBuiltins are the expr builtins a condition may use: those over
// numbers and lists. The others are disabled: string and encoding
// functions (which could build strings or structures exponentially large
// inside a reduce: toJSON of a list that contains itself twice, twice
// over, ...), list concatenation, and time functions, which would make a
// condition's verdict depend on when it is evaluated. A builtin added by a
// later expr release is disabled until it is listed here.
var allowedBuiltins = map[string]bool{
	"all": true, "none": true, "any": true, "one": true, "filter": true, "map": true,
	"find": true, "findIndex": true, "findLast": true, "findLastIndex": true,
	"count": true, "sum": true, "reduce": true, "len": true,
	"abs": true, "ceil": true, "floor": true, "round": true, "int": true, "float": true,
	"max": true, "min": true, "mean": true, "median": true,
	"first": true, "last": true, "take": true, "reverse": true, "sort": true, "sortBy": true,
	"get": true, "type": true,
}

func disabledBuiltins() []string {
	var out []string
	for _, name := range builtin.Names {
		if !allowedBuiltins[name] {
			out = append(out, name)
		}
	}
	return out
}

// The names of the hooks in the environment. A user may call them too:
// that only counts a step, adds two values or builds a flat list.
const (
	stepHook   = "SluiceStep"
	plusHook   = "SluicePlus"
	listHook   = "SluiceList"
	scalarHook = "SluiceScalar"
)

// meterPatch rewrites a checked expression: the body B of every predicate
// becomes `SluiceStep(); B` (`SluiceStep(); SluiceScalar(B)` in map), every
// a + b that is not known to add two numbers `SluicePlus(a, b)`, and every
// array literal [a, b] `SluiceList(a, b)`. It records a map literal as err:
// Compile fails.
type meterPatch struct {
	err *file.Error
	// infinity: the condition calls isInf, so it says what an infinite
	// value means.
	infinity bool
}

func (p *meterPatch) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && id.Value == "isInf" {
			p.infinity = true
		}
	case *ast.BuiltinNode:
		if n.Name != "map" || len(n.Arguments) != 2 {
			return
		}
		if pred, ok := n.Arguments[1].(*ast.PredicateNode); ok {
			if seq, ok := pred.Node.(*ast.SequenceNode); ok && len(seq.Nodes) == 2 && !isCall(seq.Nodes[1], scalarHook) {
				seq.Nodes[1] = call(scalarHook, seq.Nodes[1].Location(), seq.Nodes[1])
			}
		}
	case *ast.PredicateNode:
		if seq, ok := n.Node.(*ast.SequenceNode); ok && len(seq.Nodes) == 2 && isCall(seq.Nodes[0], stepHook) {
			return // patched already
		}
		seq := &ast.SequenceNode{Nodes: []ast.Node{call(stepHook, n.Location()), n.Node}}
		seq.SetLocation(n.Node.Location())
		n.Node = seq
	case *ast.BinaryNode:
		if n.Operator != "+" || (isNumber(n.Left.Type()) && isNumber(n.Right.Type())) {
			return
		}
		ast.Patch(node, call(plusHook, n.Location(), n.Left, n.Right))
	case *ast.ArrayNode:
		ast.Patch(node, call(listHook, n.Location(), n.Nodes...))
	case *ast.MapNode:
		if p.err == nil {
			p.err = &file.Error{Location: n.Location(), Message: "map literals are not supported in conditions"}
		}
	}
}

func call(name string, loc file.Location, args ...ast.Node) *ast.CallNode {
	c := &ast.CallNode{Callee: &ast.IdentifierNode{Value: name}, Arguments: args}
	c.SetLocation(loc)
	return c
}

func isCall(n ast.Node, name string) bool {
	c, ok := n.(*ast.CallNode)
	if !ok {
		return false
	}
	id, ok := c.Callee.(*ast.IdentifierNode)
	return ok && id.Value == name
}

func isNumber(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// meter counts one evaluation's steps against its limits.
type meter struct {
	limits   Limits
	maxSteps int
	steps    int
	// deadline is set at the first step: most conditions take none.
	deadline time.Time
}

func newMeter(l Limits, result any) *meter {
	samples := 1
	if s, ok := result.([]float64); ok {
		samples = len(s)
	}
	return &meter{limits: l, maxSteps: max(l.MaxSteps, l.StepsPerSample*samples)}
}

// The hooks meterPatch calls are methods of the environment, which
// conditions can call but not rename or replace.

// SluiceStep counts one iteration of a predicate.
func (e environment) SluiceStep() (bool, error) {
	m := e.meter
	if m.steps == 0 {
		m.deadline = time.Now().Add(m.limits.MaxDuration)
	}
	m.steps++
	if m.steps > m.maxSteps {
		return false, fmt.Errorf("the condition needs more than %d steps (iterations of all, filter, map, ...): loop over the result once, not once per sample", m.maxSteps)
	}
	if time.Now().After(m.deadline) {
		return false, fmt.Errorf("the condition ran longer than %s: loop over the result once, not once per sample", m.limits.MaxDuration)
	}
	return true, nil
}

// SluicePlus is a + b, for strings no longer than MaxString.
func (e environment) SluicePlus(a, b any) (any, error) {
	m := e.meter
	if sa, ok := a.(string); ok {
		if sb, ok := b.(string); ok && len(sa)+len(sb) > m.limits.MaxString {
			return nil, fmt.Errorf("a string longer than %d bytes", m.limits.MaxString)
		}
	}
	return runtime.Add(a, b), nil
}

// SluiceList builds an array literal's value, flat.
func (environment) SluiceList(elems ...any) ([]any, error) {
	for _, e := range elems {
		if err := scalar(e); err != nil {
			return nil, err
		}
	}
	return elems, nil
}

// SluiceScalar is what map's body returns, checked flat.
func (environment) SluiceScalar(v any) (any, error) {
	return v, scalar(v)
}

func scalar(v any) error {
	if v == nil {
		return nil
	}
	switch reflect.TypeOf(v).Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return fmt.Errorf("a list inside a list: conditions work on flat lists of numbers")
	}
	return nil
}
