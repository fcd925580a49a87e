package karmada

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The emulation keeps Karmada's rules, so that a script that would fail or
// lose a field in Karmada does here too.

// testTimeout replaces Karmada's 1s limit per script: the machine running
// the tests may be loaded; BenchmarkScripts shows what the scripts cost.
const testTimeout = 30 * time.Second

func thing(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(`{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"t"},
		"spec":{"steps":[{"pause":{}},{"replicas":2}],"list":[],"empty":{}}}`)); err != nil {
		t.Fatal(err)
	}
	return u
}

func interpreter(rules Rules) *Interpreter {
	return &Interpreter{byTarget: map[string]Rules{"example.com/v1/Thing": rules}, Timeout: testTimeout}
}

// Lua has one empty table for [] and {}: Karmada repairs an empty table
// by what the reference objects had at that path, and drops one they did
// not have.
func TestEmptyTables(t *testing.T) {
	in := interpreter(Rules{
		Retention:        &Rule{LuaScript: `function Retain(desired, observed) desired.spec.added = {}; return desired end`},
		StatusReflection: &Rule{LuaScript: `function ReflectStatus(observed) return {} end`},
	})
	retained, err := in.Retain(thing(t), thing(t))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(retained.Object["spec"])
	if want := `{"empty":{},"list":[],"steps":[{"pause":{}},{"replicas":2}]}`; string(got) != want {
		t.Errorf("retained spec %s, want %s", got, want)
	}
	status, err := in.ReflectStatus(thing(t))
	if err != nil || status == nil || len(status) != 0 {
		t.Errorf("an empty status: %v %v", status, err)
	}
}

// The unsafe base functions fail; string and math are there.
func TestSandbox(t *testing.T) {
	in := interpreter(Rules{HealthInterpretation: &Rule{LuaScript: `function InterpretHealth(o) setmetatable({}, {}) return true end`}})
	if _, err := in.InterpretHealth(thing(t)); err == nil || !strings.Contains(err.Error(), "not supported in karmada") {
		t.Errorf("setmetatable: %v", err)
	}
	in = interpreter(Rules{HealthInterpretation: &Rule{LuaScript: `function InterpretHealth(o) return string.upper(o.kind) == "THING" and math.max(1, 2) == 2 end`}})
	if ok, err := in.InterpretHealth(thing(t)); err != nil || !ok {
		t.Errorf("string and math: %t %v", ok, err)
	}
	in = interpreter(Rules{HealthInterpretation: &Rule{LuaScript: `function InterpretHealth(o) return "yes" end`}})
	if _, err := in.InterpretHealth(thing(t)); err == nil {
		t.Error("a string taken for a health")
	}
}
