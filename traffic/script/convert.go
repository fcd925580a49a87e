package script

import (
	"encoding/json"
	"math"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// maxDepth bounds the nesting of converted tables (a table that contains
// itself would otherwise never end).
const maxDepth = 64

// toLua converts a Go value to Lua through its JSON form, so structs are
// seen with their json field names (canaryWeight, requestHeaderModifier, ...)
// as Kruise's scripts expect.
func toLua(L *lua.LState, v any) lua.LValue {
	b, err := json.Marshal(v)
	if err != nil {
		return lua.LNil
	}
	var plain any
	if err := json.Unmarshal(b, &plain); err != nil {
		return lua.LNil
	}
	return plainToLua(L, plain)
}

func plainToLua(L *lua.LState, v any) lua.LValue {
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
		for _, e := range v {
			t.Append(plainToLua(L, e))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, e := range v {
			t.RawSetString(k, plainToLua(L, e))
		}
		return t
	}
	return lua.LNil
}

// fromLua converts a Lua value to plain Go. A table whose keys are exactly
// 1..n is a list, any other non-empty table a map; an empty table is nil,
// since Lua cannot tell an empty list from an empty map and dropping the
// field is what both would mean to the API server. Integral numbers become
// int64 so integer fields (ports, weights) stay integers in JSON.
func fromLua(v lua.LValue, depth int) any {
	if depth > maxDepth {
		return nil
	}
	switch v := v.(type) {
	case lua.LBool:
		return bool(v)
	case lua.LNumber:
		f := float64(v)
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f)
		}
		return f
	case lua.LString:
		return string(v)
	case *lua.LTable:
		return tableFromLua(v, depth)
	}
	return nil
}

func tableFromLua(t *lua.LTable, depth int) any {
	n := t.MaxN()
	count := 0
	t.ForEach(func(lua.LValue, lua.LValue) { count++ })
	if count == 0 {
		return nil
	}
	if n == count {
		list := make([]any, 0, n)
		for i := 1; i <= n; i++ {
			list = append(list, fromLua(t.RawGetInt(i), depth+1))
		}
		return list
	}
	m := make(map[string]any, count)
	t.ForEach(func(k, e lua.LValue) {
		key := k.String()
		if num, ok := k.(lua.LNumber); ok {
			key = strconv.FormatFloat(float64(num), 'f', -1, 64)
		}
		if val := fromLua(e, depth+1); val != nil {
			m[key] = val
		}
	})
	return m
}

// jsonModule is the json helper Kruise's scripts may use:
// json.encode(value) and json.decode(string).
func jsonModule(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"encode": func(L *lua.LState) int {
			b, err := json.Marshal(fromLua(L.CheckAny(1), 0))
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
			L.Push(plainToLua(L, v))
			return 1
		},
	})
}
