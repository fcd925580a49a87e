package script

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// maxDepth bounds the nesting of converted tables.
const maxDepth = 64

// jsonKind marks, in its metatable, a table made from a JSON object or
// array, so that it converts back to one even when it is empty (Lua cannot
// tell an empty list from an empty map): an object the script passes
// through unchanged comes back as it was.
const jsonKind = "__sluice_json"

// marks are the two metatables of tables made from JSON, one sandbox's.
type marks struct {
	object, array *lua.LTable
}

func newMarks(L *lua.LState) marks {
	m := marks{object: L.NewTable(), array: L.NewTable()}
	m.object.RawSetString(jsonKind, lua.LString("object"))
	m.array.RawSetString(jsonKind, lua.LString("array"))
	return m
}

// toLua converts a Go value to Lua through its JSON form, so structs are
// seen with their json field names (canaryWeight, requestHeaderModifier, ...)
// as Kruise's scripts expect.
func (m marks) toLua(L *lua.LState, v any) (lua.LValue, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var plain any
	if err := json.Unmarshal(b, &plain); err != nil {
		return nil, err
	}
	return m.plainToLua(L, plain), nil
}

func (m marks) plainToLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for i, e := range v {
			t.RawSetInt(i+1, m.plainToLua(L, e))
		}
		t.Metatable = m.array
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, e := range v {
			t.RawSetString(k, m.plainToLua(L, e))
		}
		t.Metatable = m.object
		return t
	}
	return lua.LNil
}

// converter turns Lua values into plain Go within a budget: a table that
// contains itself, or one shared so often that the result would be huge
// (a table holding another twice, 60 levels deep, is 2^60 values), is an
// error, not a hang.
type converter struct {
	marks
	limits        Limits
	values, bytes int // converted so far
	path          map[*lua.LTable]bool
}

func newConverter(m marks, l Limits) *converter {
	return &converter{marks: m, limits: l, path: map[*lua.LTable]bool{}}
}

// fromLua converts a Lua value to plain Go. A table made from a JSON
// object or array (see jsonKind) becomes one again; any other table whose
// keys are exactly 1..n is a list, and any other non-empty table a map (an
// empty one is nil: dropping the field is what an empty list or map would
// mean to the API server). Integral numbers become int64 so integer
// fields (ports, weights) stay integers in JSON. Functions and other Lua
// values are not data: an error.
func (c *converter) fromLua(v lua.LValue, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("tables nested deeper than %d", maxDepth)
	}
	if c.values++; c.values > c.limits.MaxValues {
		return nil, fmt.Errorf("more than %d values (a table shared many times over?)", c.limits.MaxValues)
	}
	switch v := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(v), nil
	case lua.LNumber:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v is not a number JSON can hold", f)
		}
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), nil
		}
		return f, nil
	case lua.LString:
		if c.bytes += len(v); c.bytes > c.limits.MaxResultBytes {
			return nil, fmt.Errorf("strings longer than %d bytes in all", c.limits.MaxResultBytes)
		}
		return string(v), nil
	case *lua.LTable:
		if c.path[v] {
			return nil, fmt.Errorf("a table that contains itself")
		}
		c.path[v] = true
		defer delete(c.path, v)
		return c.table(v, depth)
	}
	return nil, fmt.Errorf("a %s is not data", v.Type())
}

func (c *converter) table(t *lua.LTable, depth int) (any, error) {
	n := t.MaxN()
	count, indexes := 0, 0 // keys, and keys in 1..n
	var badKey lua.LValue
	t.ForEach(func(k, _ lua.LValue) {
		count++
		switch k := k.(type) {
		case lua.LString:
		case lua.LNumber:
			if f := float64(k); f == math.Trunc(f) && f >= 1 && f <= float64(n) {
				indexes++
			}
		default:
			if badKey == nil {
				badKey = k
			}
		}
	})
	if badKey != nil {
		return nil, fmt.Errorf("a table key that is a %s: keys are strings or numbers", badKey.Type())
	}
	object, array := t.Metatable == c.object, t.Metatable == c.array
	switch {
	case (array && indexes == count) || (!object && count > 0 && n == count && indexes == count):
		list := make([]any, 0, n)
		for i := 1; i <= n; i++ {
			e, err := c.fromLua(t.RawGetInt(i), depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, e)
		}
		return list, nil
	case !object && !array && count == 0:
		return nil, nil
	}
	m := make(map[string]any, count)
	var err error
	t.ForEach(func(k, e lua.LValue) {
		if err != nil {
			return
		}
		key := k.String()
		if num, ok := k.(lua.LNumber); ok {
			key = strconv.FormatFloat(float64(num), 'f', -1, 64)
		}
		var val any
		if val, err = c.fromLua(e, depth+1); val != nil {
			m[key] = val
		}
	})
	return m, err
}

// jsonModule is the json helper Kruise's scripts may use:
// json.encode(value) and json.decode(string).
func jsonModule(L *lua.LState, m marks, l Limits) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"encode": func(L *lua.LState) int {
			v, err := newConverter(m, l).fromLua(L.CheckAny(1), 0)
			if err != nil {
				L.RaiseError("json.encode: %v", err)
			}
			b, err := json.Marshal(v)
			if err != nil {
				L.RaiseError("json.encode: %v", err)
			}
			L.Push(lua.LString(b))
			return 1
		},
		"decode": func(L *lua.LState) int {
			var v any
			if err := json.Unmarshal([]byte(L.CheckString(1)), &v); err != nil {
				L.RaiseError("json.decode: %v", err)
			}
			L.Push(m.plainToLua(L, v))
			return 1
		},
	})
}
