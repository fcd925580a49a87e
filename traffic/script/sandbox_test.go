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
