package script

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fuzzLimits are DefaultLimits with a shorter timeout and a smaller
// memory limit, so that fuzzing spends its time on many inputs.
func fuzzLimits() Limits {
	l := DefaultLimits
	l.Timeout = 200 * time.Millisecond
	l.MaxMemory = 64 << 20
	return l
}

// kruiseInput is the obj of a custom network script, as Render makes it.
const kruiseInput = `{"data":{"spec":{"hosts":["echoserver.example.com"],"http":[{"route":[{"destination":{"host":"echoserver","subset":"v1"},"weight":90},{"destination":{"host":"legacy"},"weight":10}]}]},"labels":{"app":"echoserver"},"annotations":{"team":"web"}},"canaryWeight":20,"stableWeight":80,"matches":[{"headers":[{"type":"Exact","name":"User-Agent","value":"Andriod"}]}],"canaryService":"echoserver-canary","stableService":"echoserver","requestHeaderModifier":{"set":[{"name":"X-Version","value":"canary"}]}}`

// ingressInput is the obj of an ingress class script.
const ingressInput = `{"annotations":{"kubernetes.io/ingress.class":"nginx"},"weight":"50","matches":[{"headers":[{"name":"X-Canary","value":"yes"}]}],"canaryService":"echoserver-canary"}`

// FuzzRun runs any text as a traffic script on an object decoded from the
// fuzz bytes and checks that it is contained: Run returns, never panics,
// well within a bound, with a result JSON can hold or a *script.Error.
// The seeds are the built-in scripts (traffic/custom/scripts) and the
// scripts of the e2e and unit tests; testdata/fuzz/FuzzRun holds hostile
// ones (loops, recursion, allocation bombs, backtracking patterns, removed
// libraries).
func FuzzRun(f *testing.F) {
	builtins, err := filepath.Glob("../custom/scripts/*.lua")
	if err != nil || len(builtins) == 0 {
		f.Fatalf("no built-in scripts: %v", err)
	}
	for _, path := range builtins {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(src), []byte(kruiseInput))
	}
	for _, src := range []string{
		// e2e/traffic's custom Route and kong ingress class.
		`local spec = obj.data.spec
		if obj.canaryWeight >= 0 then
			spec.backends[1].weight = obj.stableWeight
			table.insert(spec.backends, {service = obj.canaryService, weight = obj.canaryWeight})
		end
		if obj.matches then
			spec.canaryHeader = obj.matches[1].headers[1].name .. "=" .. obj.matches[1].headers[1].value
		end
		local labels = obj.data.labels or {}
		labels["routing.example.com/canary"] = "on"
		return {spec = spec, labels = labels, annotations = obj.data.annotations}`,
		`local a = obj.annotations
		a["konghq.com/canary"] = "true"
		a["konghq.com/canary-weight"] = nil
		if obj.weight ~= "-1" then a["konghq.com/canary-weight"] = obj.weight end
		return a`,
		// The sandbox's unit test.
		`local out = {}
		out.weight = obj.canaryWeight * 2
		out.list = {"x", "y"}
		out.encoded = json.encode({k = 1})
		out.decoded = require("json").decode('{"n":[1,2]}').n[2]
		return out`,
	} {
		f.Add(src, []byte(kruiseInput))
		f.Add(src, []byte(ingressInput))
	}
	l := fuzzLimits()
	// bound is what "contained" means here: far above the timeout, so
	// that a loaded machine does not fail it, far below a hang.
	const bound = 10 * time.Second
	f.Fuzz(func(t *testing.T, src string, input []byte) {
		var obj any
		if json.Unmarshal(input, &obj) != nil {
			obj = nil
		}
		start := time.Now()
		out, err := l.Run(context.Background(), "fuzz.lua", src, obj)
		if d := time.Since(start); d > bound {
			t.Fatalf("the script ran %s (timeout %s): %v", d, l.Timeout, err)
		}
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v (%T), want a *script.Error", err, err)
			}
			return
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("the result %v cannot be written as JSON: %v", out, err)
		}
	})
}

// FuzzObjectRoundTrip passes an object decoded from the fuzz bytes to a
// script that returns it unchanged, directly and through json.encode and
// json.decode, and checks that it comes back as it went in: numbers as
// int64 when whole, null members of objects and nulls at the end of a
// list dropped (a Lua table cannot hold nil, and a list's length ends at
// its last element), everything else, empty objects and lists included,
// equal.
// The seeds are the inputs of the custom and ingress scripts.
func FuzzObjectRoundTrip(f *testing.F) {
	for _, in := range []string{kruiseInput, ingressInput, `{"spec":{"http":[{"match":[{}],"route":[]}],"tls":{}}}`, `[1,null,"x",2.5,true]`, `{"1":"a","2":"b"}`, `{"a":null}`, `1e300`, `-0`} {
		f.Add([]byte(in))
	}
	l := fuzzLimits()
	f.Fuzz(func(t *testing.T, input []byte) {
		var obj any
		if json.Unmarshal(input, &obj) != nil {
			return
		}
		want := normalize(obj)
		for _, src := range []string{"return obj", "return json.decode(json.encode(obj))"} {
			got, err := l.Run(context.Background(), "identity.lua", src, obj)
			if err != nil {
				var se *Error
				if errors.As(err, &se) && !se.Timeout && !se.OutOfMemory {
					t.Fatalf("%s: %v", src, err)
				}
				return // a machine too busy to copy the object in time
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("%s changed the object (-want +got):\n%s", src, d)
			}
		}
	})
}

// normalize is what a round trip through Lua makes of a JSON value.
func normalize(v any) any {
	switch v := v.(type) {
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v)
		}
		return v
	case []any:
		for len(v) > 0 && v[len(v)-1] == nil {
			v = v[:len(v)-1]
		}
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			if e != nil {
				out[k] = normalize(e)
			}
		}
		return out
	}
	return v
}
