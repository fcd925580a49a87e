package script

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRunReturnsConvertedTable(t *testing.T) {
	in := map[string]any{"canaryWeight": 20, "data": map[string]any{"labels": map[string]any{"a": "b"}}}
	got, err := Run(context.Background(), "t", `
		local out = {}
		out.weight = obj.canaryWeight * 2
		out.half = obj.canaryWeight / 3
		out.list = {"x", "y"}
		out.label = obj.data.labels.a
		out.empty = {}
		out.encoded = json.encode({k = 1})
		out.decoded = require("json").decode('{"n":[1,2]}').n[2]
		return out`, in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"weight": int64(40), "half": 20.0 / 3, "list": []any{"x", "y"}, "label": "b",
		"encoded": `{"k":1}`, "decoded": int64(2)}
	if d := cmp.Diff(want, got); d != "" {
		t.Error(d)
	}
}

func TestSandboxContainsScripts(t *testing.T) {
	cases := []struct {
		name, src, want string
		timeout         bool
	}{
		{name: "endless loop", src: "local i = 0\nwhile true do\n  i = i + 1\nend", timeout: true, want: "did not finish within 1s (an endless loop?), stopped at bad.lua:"},
		{name: "endless loop under pcall", src: "while true do pcall(function() while true do end end) end", timeout: true},
		{name: "runtime error names the line", src: "local x = nil\nreturn x.y", want: "lua script bad.lua failed: bad.lua:2:"},
		{name: "syntax error", src: "return {", want: "lua script bad.lua failed: bad.lua"},
		{name: "error()", src: "error('no stable route')", want: "no stable route"},
		{name: "no io", src: "return io.open('/etc/passwd')", want: "attempt to index a non-table object(nil)"},
		{name: "no os", src: "return os.execute('true')", want: "attempt to index a non-table object(nil)"},
		{name: "no load", src: "return load('return 1')()", want: "attempt to call a non-function object"},
		{name: "no dofile", src: "return dofile('/etc/passwd')", want: "attempt to call a non-function object"},
		{name: "no require but json", src: "return require('os')", want: `only "json" is available`},
		{name: "bounded string.rep", src: "return string.rep('x', 1e9)", want: "result longer than"},
		// Each of these hung the controller or ran it out of memory inside
		// one Go call, where no timeout reaches.
		{name: "result that contains itself", src: "local t = {} t[1] = t t[2] = t return t", want: "its result: a table that contains itself"},
		{name: "result shared 2^40 times over", src: "local u = {} for i = 1, 40 do u = {u, u} end return u", want: "its result: more than 100000 values"},
		{name: "json.encode of a table shared 2^40 times over", src: "local u = {} for i = 1, 40 do u = {u, u} end return json.encode(u)", want: "json.encode: more than 100000 values"},
		{name: "backtracking pattern", src: "return string.find(string.rep('a', 5000), '.-.-.-.-b')", want: `pattern ".-.-.-.-b" over 5000 bytes could take`},
		{name: "backtracking pattern in gsub", src: "return string.gsub(string.rep('a', 200000), '.*.*b', '')", want: "could take"},
		{name: "format width", src: "return string.format('%999999s', '')", want: "width longer than two digits"},
		{name: "format width from an argument", src: "local t = {} for i = 1, 2000 do t[i] = 1000000 t[2000 + i] = 1 end return string.format(string.rep('%*d', 1000), unpack(t))", want: "%* is not Lua"},
		{name: "format precision from an argument", src: "return string.format('%.*f', 1000000, 1)", want: "%* is not Lua"},
		{name: "format argument index", src: "return string.format('%[2]d', 1, 2)", want: "%[ is not Lua"},
		{name: "format of long arguments", src: "local s = string.rep('x', 600000) return string.format('%s%s', s, s)", want: "string.format: result could be longer than 1048576 bytes"},
		{name: "gsub of every position by a long string", src: "return string.gsub(string.rep('x', 2^20), '', string.rep('y', 2^20))", want: "string.gsub: result could be longer than"},
		{name: "gsub through a function", src: "local y = string.rep('y', 2^19) return string.gsub(string.rep('x', 100), 'x', function() return y end)", want: "string.gsub: result longer than"},
		{name: "gsub through a table", src: "local y = string.rep('y', 2^19) return string.gsub(string.rep('x', 100), 'x', {x = y})", want: "string.gsub: result longer than"},
		{name: "table.concat", src: "local x = string.rep('x', 2^20) local t = {} for i = 1, 2000 do t[i] = x end return table.concat(t)", want: "table.concat: result longer than"},
		{name: "unpack onto the stack", src: "return unpack({}, 1, 1e8)", want: "registry overflow"},
		{name: "string.byte onto the stack", src: "return string.byte(string.rep('x', 2^20), 1, -1)", want: "registry overflow"},
		{name: "recursion", src: "local function f() return 1 + f() end return f()", want: "stack overflow"},
		{name: "__index recursion", src: "return setmetatable({}, {__index = function(t, k) return t[k] end}).x", want: "stack overflow"},
		{name: "endless __tostring", src: "return tostring(setmetatable({}, {__tostring = function() while true do end end}))", timeout: true},
		{name: "no coroutines", src: "return coroutine.create(function() end)", want: "attempt to index a non-table object(nil)"},
		{name: "no debug", src: "return debug.getinfo(1)", want: "attempt to index a non-table object(nil)"},
		{name: "no string.dump", src: "return string.dump(function() end)", want: "attempt to call a non-function object"},
		{name: "a table key in the result", src: "local t = {} t[t] = 1 return t", want: "a table key that is a table"},
		{name: "a function in the result", src: "return {f = print or tostring}", want: "a function is not data"},
		{name: "NaN in the result", src: "return {w = 0/0}", want: "is not a number JSON can hold"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := Run(context.Background(), "bad.lua", tc.src, nil)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *script.Error", err)
			}
			if se.Timeout != tc.timeout {
				t.Errorf("timeout = %v, want %v (%v)", se.Timeout, tc.timeout, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
			if d := time.Since(start); d > 3*DefaultTimeout {
				t.Errorf("took %s", d)
			}
		})
	}
}

// A script that builds strings or tables without end is stopped by the
// memory watchdog, at its next instruction (a smaller limit than the
// default keeps the test light).
func TestSandboxStopsMemoryGrowth(t *testing.T) {
	l := DefaultLimits
	l.MaxMemory = 32 << 20
	// The memory limit must be what stops these, also on a busy machine
	// where they would otherwise run out of time first.
	l.Timeout = time.Minute
	for name, src := range map[string]string{
		"doubling a string":        "local s = string.rep('x', 2^20) while true do s = s .. s end",
		"keeping megabyte strings": "local t = {} for i = 1, 1e5 do t[i] = string.rep('x', 2^20) .. i end",
		"keeping long arrays":      "local ts = {} for i = 1, 1000 do local t = {} t[1000000] = 1 ts[i] = t end",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := l.Run(context.Background(), "bomb.lua", src, nil)
			var se *Error
			if !errors.As(err, &se) || !se.OutOfMemory || !strings.Contains(err.Error(), "used more than 32 MiB of memory, stopped at bomb.lua:1") {
				t.Fatalf("err = %v, want the memory limit", err)
			}
		})
	}
}

// A huge integer key no longer fills the array part up to it in one
// instruction (7 s and 3 GiB before): it lands in the hash part.
func TestSandboxHugeIndexIsCheap(t *testing.T) {
	l := DefaultLimits
	l.MaxMemory = 32 << 20
	got, err := l.Run(context.Background(), "index.lua", "local t = {} t[60000000] = 'x' return t[60000000]", nil)
	if err != nil || got != "x" {
		t.Fatalf("got %v, %v", got, err)
	}
}

// An object the script returns unchanged comes back as it went in: empty
// maps and lists included (they are marked), nulls in lists kept.
func TestObjectRoundTrip(t *testing.T) {
	in := map[string]any{
		"spec":   map[string]any{"http": []any{map[string]any{"match": []any{map[string]any{}}, "route": []any{}}}, "tls": map[string]any{}},
		"list":   []any{int64(1), nil, "x", 2.5, true},
		"weight": int64(20),
	}
	for _, src := range []string{"return obj", "return json.decode(json.encode(obj))"} {
		got, err := Run(context.Background(), "t", src, in)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(in, got); d != "" {
			t.Errorf("%s changed the object (-in +out):\n%s", src, d)
		}
	}
}
