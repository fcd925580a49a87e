package script

import (
	"math"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// bound replaces the Go functions of the string and table libraries that
// can build a huge string or search a long one forever in one call, and
// so in one instruction, which no timeout interrupts, with checks in
// front of them:
//   - string.rep, string.format, string.gsub and table.concat fail when
//     their result could be longer than MaxString (string.format also when
//     a width or precision has more than two digits, as in Lua 5.1);
//   - string.find, match, gmatch and gsub fail when their pattern's search
//     could take more than MaxPatternWork steps (see patternWork).
func bound(L *lua.LState, l Limits) {
	str := L.GetGlobal(lua.StringLibName).(*lua.LTable)
	str.RawSetString("dump", lua.LNil)
	wrap := func(lib *lua.LTable, name string, check func(L *lua.LState)) {
		orig := lib.RawGetString(name).(*lua.LFunction)
		lib.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			check(L)
			top := L.GetTop()
			L.Push(orig)
			for i := 1; i <= top; i++ {
				L.Push(L.Get(i))
			}
			L.Call(top, lua.MultRet)
			return L.GetTop() - top
		}))
	}
	patternAt := func(pattern, subject, init int) func(L *lua.LState) {
		return func(L *lua.LState) {
			s := L.CheckString(subject)
			p := L.CheckString(pattern)
			if init > 0 && L.GetTop() >= init+1 && lua.LVAsBool(L.Get(init+1)) {
				return // string.find(s, p, init, plain): a plain search
			}
			if w := patternWork(p, len(s)); w > l.MaxPatternWork {
				L.RaiseError("pattern %q over %d bytes could take %.3g steps, more than %.3g: simplify it or search a shorter string", p, len(s), w, l.MaxPatternWork)
			}
		}
	}
	wrap(str, "find", patternAt(2, 1, 3))
	wrap(str, "match", patternAt(2, 1, 0))
	wrap(str, "gmatch", patternAt(2, 1, 0))
	gsubPattern := patternAt(2, 1, 0)
	wrap(str, "gsub", func(L *lua.LState) {
		gsubPattern(L)
		boundGsub(L, l)
	})
	wrap(str, "rep", func(L *lua.LState) {
		s, n := L.CheckString(1), L.CheckInt(2)
		if n > 0 && float64(len(s))*float64(n) > float64(l.MaxString) {
			L.RaiseError("string.rep: result longer than %d bytes", l.MaxString)
		}
	})
	wrap(str, "format", func(L *lua.LState) { boundFormat(L, l) })
	tab := L.GetGlobal(lua.TabLibName).(*lua.LTable)
	wrap(tab, "concat", func(L *lua.LState) { boundConcat(L, l) })
}

// patternWork estimates the steps a Lua pattern search over n bytes may
// take. Lua patterns backtrack: each quantifier (*, +, -) may try every
// length up to n and each ? two, for every combination of the others, from
// every start position unless the pattern is anchored with ^; %b scans
// like a quantifier. So ".-.-b" over 1000 bytes is about 10^9 steps,
// "^%a+" over a megabyte 10^6.
func patternWork(p string, n int) float64 {
	starts, i := float64(n+1), 0
	if strings.HasPrefix(p, "^") {
		starts, i = 1, 1
	}
	loops, optional := 0, 0
	for i < len(p) {
		single := true // the item just read can take a quantifier
		switch p[i] {
		case '%':
			switch {
			case i+1 < len(p) && p[i+1] == 'b':
				loops++
				i += 4
				single = false
			case i+1 < len(p) && p[i+1] == 'f':
				i = skipSet(p, i+2)
				single = false
			default:
				i += 2
			}
		case '[':
			i = skipSet(p, i)
		case '(', ')':
			i++
			single = false
		default:
			i++
		}
		if single && i < len(p) {
			switch p[i] {
			case '*', '+', '-':
				loops++
				i++
			case '?':
				optional++
				i++
			}
		}
	}
	return starts * math.Pow(float64(n+1), float64(loops)) * math.Pow(2, float64(optional)) * float64(len(p)+1)
}

// skipSet returns the index after the set [...] that starts at i.
func skipSet(p string, i int) int {
	if i >= len(p) || p[i] != '[' {
		return i + 1
	}
	i++
	if i < len(p) && p[i] == '^' {
		i++
	}
	if i < len(p) && p[i] == ']' {
		i++ // a ] first is a character of the set
	}
	for i < len(p) && p[i] != ']' {
		if p[i] == '%' {
			i++
		}
		i++
	}
	return i + 1
}

// boundGsub fails a string.gsub whose result could be longer than
// MaxString. A string replacement is at most itself with each %0-%9 the
// whole subject, once per match (at most n+1 of them); a table or function
// replacement is wrapped to count what it returns.
func boundGsub(L *lua.LState, l Limits) {
	s := L.CheckString(1)
	matches := len(s) + 1
	if n, ok := L.Get(4).(lua.LNumber); ok && int(n) >= 0 && int(n) < matches {
		matches = int(n)
	}
	switch repl := L.Get(3).(type) {
	case lua.LString, lua.LNumber:
		r := lua.LVAsString(repl)
		perMatch := float64(len(r)) + float64(strings.Count(r, "%"))*float64(len(s))
		if float64(len(s))+float64(matches)*perMatch > float64(l.MaxString) {
			L.RaiseError("string.gsub: result could be longer than %d bytes", l.MaxString)
		}
	case *lua.LTable, *lua.LFunction:
		total := len(s)
		L.Replace(3, L.NewFunction(func(L *lua.LState) int {
			var v lua.LValue
			if t, ok := repl.(*lua.LTable); ok {
				v = L.GetTable(t, L.Get(1))
			} else {
				top := L.GetTop()
				L.Push(repl)
				for i := 1; i <= top; i++ {
					L.Push(L.Get(i))
				}
				L.Call(top, 1)
				v = L.Get(-1)
			}
			if s, ok := v.(lua.LString); ok {
				if total += len(s); total > l.MaxString {
					L.RaiseError("string.gsub: result longer than %d bytes", l.MaxString)
				}
			}
			L.Push(v)
			return 1
		}))
	}
}

// boundFormat fails a string.format whose result could be longer than
// MaxString: each directive writes at most its 99-wide padding and twice
// its argument (%q escapes).
func boundFormat(L *lua.LState, l Limits) {
	f := L.CheckString(1)
	size := float64(len(f))
	arg := 2
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
		}
		// gopher-lua hands the format to Go's fmt, which reads %*d and
		// %[2]d too: not Lua, and outside what the estimate counts.
		if i < len(f) && (f[i] == '*' || f[i] == '[') {
			L.RaiseError("string.format: invalid format (%%%c is not Lua)", f[i])
		}
		for _, part := range []string{"width", "precision"} {
			if part == "precision" {
				if i >= len(f) || f[i] != '.' {
					break
				}
				i++
			}
			digits := 0
			for i < len(f) && f[i] >= '0' && f[i] <= '9' {
				digits++
				i++
			}
			if i < len(f) && (f[i] == '*' || f[i] == '[') {
				L.RaiseError("string.format: invalid format (%%%c is not Lua)", f[i])
			}
			if digits > 2 {
				L.RaiseError("string.format: invalid format (%s longer than two digits)", part)
			}
		}
		size += 2*float64(len(lua.LVAsString(L.Get(arg)))) + 100
		arg++
	}
	if size > float64(l.MaxString) {
		L.RaiseError("string.format: result could be longer than %d bytes", l.MaxString)
	}
}

// boundConcat fails a table.concat whose result would be longer than
// MaxString.
func boundConcat(L *lua.LState, l Limits) {
	t := L.CheckTable(1)
	sep := len(L.OptString(2, ""))
	n := t.Len()
	i, j := max(L.OptInt(3, 1), 1), min(L.OptInt(4, n), n)
	size := 0
	for ; i <= j; i++ {
		v := t.RawGetInt(i)
		if !lua.LVCanConvToString(v) {
			return // table.concat says which element is wrong
		}
		if size += len(lua.LVAsString(v)) + sep; size > l.MaxString {
			L.RaiseError("table.concat: result longer than %d bytes", l.MaxString)
		}
	}
}
