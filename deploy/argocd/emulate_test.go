package argocd

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The emulation keeps Argo CD's rules, so that a script that would fail in
// Argo CD fails here.

const thing = `
apiVersion: example.com/v1
kind: Thing
metadata: {name: t, generation: 3}
spec:
  steps: [{pause: {}}, {replicas: 2}]
  empty: {}
  list: []
status: {phase: Ready}
`

// testTimeout replaces Argo CD's 1s limit per script: the machine running
// the tests may be loaded; BenchmarkScripts shows what the scripts cost.
const testTimeout = 30 * time.Second

func thingObject(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(thing), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func customizationsFor(t *testing.T, data map[string]string) *Customizations {
	t.Helper()
	c, err := ParseConfigMap(data)
	if err != nil {
		t.Fatal(err)
	}
	c.Now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	c.Timeout = testTimeout
	return c
}

func TestHealthResults(t *testing.T) {
	for script, want := range map[string]Health{
		`return {status = "Healthy", message = obj.status.phase .. " " .. obj.metadata.generation}`: {Status: "Healthy", Message: "Ready 3"},
		`return {status = "Fine"}`: {Status: "Unknown", Message: "Lua returned an invalid health status"},
		`return {}`:                {},
		`return nil`:               {},
	} {
		c := customizationsFor(t, map[string]string{"resource.customizations.health.example.com_Thing": script})
		h, err := c.Health(thingObject(t))
		if err != nil {
			t.Errorf("%s: %v", script, err)
			continue
		}
		if *h != want {
			t.Errorf("%s: %+v, want %+v", script, *h, want)
		}
	}
	c := customizationsFor(t, map[string]string{"resource.customizations.health.example.com_Thing": `return "Healthy"`})
	if _, err := c.Health(thingObject(t)); err == nil || !strings.Contains(err.Error(), "expect table output") {
		t.Errorf("a string result: %v", err)
	}
}

// Without useOpenLibs a script has no string library; os is the safe one.
func TestLibraries(t *testing.T) {
	script := `return {status = "Healthy", message = string.upper(obj.status.phase)}`
	c := customizationsFor(t, map[string]string{"resource.customizations.health.example.com_Thing": script})
	if _, err := c.Health(thingObject(t)); err == nil {
		t.Error("string.upper ran without useOpenLibs")
	}
	c = customizationsFor(t, map[string]string{
		"resource.customizations.health.example.com_Thing":      script,
		"resource.customizations.useOpenLibs.example.com_Thing": "true",
	})
	if h, err := c.Health(thingObject(t)); err != nil || h.Message != "READY" {
		t.Errorf("with useOpenLibs: %+v %v", h, err)
	}
	c = customizationsFor(t, map[string]string{"resource.customizations.health.example.com_Thing": `
local os = require("os")
return {status = "Healthy", message = os.date("!%Y-%m-%dT%XZ %%") .. " " .. os.time()}`})
	if h, err := c.Health(thingObject(t)); err != nil || h.Message != "2026-01-02T03:04:05Z % 1767323045" {
		t.Errorf("os: %+v %v", h, err)
	}
	c = customizationsFor(t, map[string]string{"resource.customizations.health.example.com_Thing": `os.exit(1)`})
	if _, err := c.Health(thingObject(t)); err == nil {
		t.Error("os.exit is available")
	}
}

func TestActionPatchesSplit(t *testing.T) {
	actions := func(script string) map[string]string {
		return map[string]string{"resource.customizations.actions.example.com_Thing": "discovery.lua: |\n  return {go = {}, stop = {disabled = true}}\ndefinitions:\n- name: go\n  action.lua: |\n" + indent(script)}
	}
	for script, want := range map[string]Patch{
		// Empty tables come back as maps where the object had maps, so
		// an action that changes nothing sends nothing.
		`return obj`: {},
		`obj.spec.list = {"a"}
return obj`: {Main: []byte(`{"spec":{"list":["a"]}}`)},
		`obj.status.phase = "Go"
return obj`: {Status: []byte(`{"status":{"phase":"Go"}}`)},
		`obj.status.phase = "Go"
obj.spec.steps[2].replicas = 3
return obj`: {Status: []byte(`{"spec":{"steps":[{"pause":{}},{"replicas":3}]},"status":{"phase":"Go"}}`), Main: []byte(`{"spec":{"steps":[{"pause":{}},{"replicas":3}]}}`)},
	} {
		c := customizationsFor(t, actions(script))
		p, err := c.Run(thingObject(t), "go")
		if err != nil {
			t.Errorf("%s: %v", script, err)
			continue
		}
		if string(p.Status) != string(want.Status) || string(p.Main) != string(want.Main) {
			t.Errorf("%s: status %s main %s, want %s and %s", script, p.Status, p.Main, want.Status, want.Main)
		}
	}
	c := customizationsFor(t, actions(`error("no, because", 0)`))
	if _, err := c.Run(thingObject(t), "go"); err == nil || err.Error() != "no, because" {
		t.Errorf("a refusal: %v", err)
	}
	list, err := c.Actions(thingObject(t))
	if err != nil || len(list) != 2 || list[0] != (Action{Name: "go"}) || list[1] != (Action{Name: "stop", Disabled: true}) {
		t.Errorf("discovery: %+v %v", list, err)
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}
