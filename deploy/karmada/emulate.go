package karmada

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

// How Karmada runs declarative customizations, reproduced from its source
// (karmada-io/karmada at f8fdd02d: pkg/resourceinterpreter/customized/
// declarative/luavm/lua.go and lua_convert.go, pkg/util/objectwatcher,
// pkg/controllers/status/common.go) so that tests run Sluice's scripts
// under the same rules:
//   - a gopher-lua state with the package, base, table, string and math
//     libraries (the os library is not emulated: no script uses it), the
//     unsafe base functions replaced by ones that fail, a 1s time limit;
//   - the script is run, then its global function (InterpretHealth,
//     ReflectStatus, AggregateStatus, Retain, GetDependencies) called with
//     the objects converted through JSON (numbers are Lua numbers; an empty
//     list of status items is nil);
//   - a returned table is encoded to JSON by layeh.com/gopher-json (an empty
//     table is []), then each empty list is turned back into an empty map
//     where the reference objects (Retain's desired and observed) had a map
//     at that path, kept where they had a list, and otherwise dropped.

// Interpreter runs customizations as Karmada's configurable interpreter.
type Interpreter struct {
	byTarget map[string]Rules
	// Timeout bounds one script run; Karmada's 1s when zero. Tests on a
	// loaded machine raise it; BenchmarkScripts shows what the scripts
	// cost.
	Timeout time.Duration
}

// Load reads customizations from a multi-document manifest such as
// customizations.yaml, strictly (a misspelt rule fails).
func Load(raw []byte) (*Interpreter, error) {
	in := &Interpreter{byTarget: map[string]Rules{}}
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := docs.Read()
		if err == io.EOF {
			return in, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 || string(bytes.TrimSpace(doc)) == "---" {
			continue
		}
		var c Customization
		if err := yaml.UnmarshalStrict(doc, &c); err != nil {
			return nil, err
		}
		if c.Kind == "" {
			continue // a document of comments only
		}
		if c.APIVersion != "config.karmada.io/v1alpha1" || c.Kind != "ResourceInterpreterCustomization" {
			return nil, fmt.Errorf("%s: want a config.karmada.io/v1alpha1 ResourceInterpreterCustomization, got %s %s", c.Metadata.Name, c.APIVersion, c.Kind)
		}
		key := c.Spec.Target.APIVersion + "/" + c.Spec.Target.Kind
		if _, dup := in.byTarget[key]; dup {
			return nil, fmt.Errorf("two customizations target %s", key)
		}
		in.byTarget[key] = c.Spec.Customizations
	}
}

func (in *Interpreter) rules(obj *unstructured.Unstructured) Rules {
	return in.byTarget[obj.GetAPIVersion()+"/"+obj.GetKind()]
}

func script(r *Rule, obj *unstructured.Unstructured, op string) (string, error) {
	if r == nil || r.LuaScript == "" {
		return "", fmt.Errorf("no %s customization for %s %s", op, obj.GetAPIVersion(), obj.GetKind())
	}
	return r.LuaScript, nil
}

// InterpretHealth runs the healthInterpretation of obj.
func (in *Interpreter) InterpretHealth(obj *unstructured.Unstructured) (bool, error) {
	s, err := script(in.rules(obj).HealthInterpretation, obj, "healthInterpretation")
	if err != nil {
		return false, err
	}
	ret, err := in.run(s, "InterpretHealth", obj)
	if err != nil {
		return false, err
	}
	b, ok := ret.(lua.LBool)
	if !ok {
		return false, fmt.Errorf("result type %s is not bool", ret.Type())
	}
	return bool(b), nil
}

// ReflectStatus runs the statusReflection of obj: what the hub keeps of
// a member's object.
func (in *Interpreter) ReflectStatus(obj *unstructured.Unstructured) (map[string]any, error) {
	s, err := script(in.rules(obj).StatusReflection, obj, "statusReflection")
	if err != nil {
		return nil, err
	}
	ret, err := in.run(s, "ReflectStatus", obj)
	if err != nil {
		return nil, err
	}
	t, ok := ret.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("expect the returned replica type is table but got %s", ret.Type())
	}
	raw, err := fromLua(t, true)
	if err != nil {
		return nil, err
	}
	var status map[string]any
	return status, json.Unmarshal(raw, &status)
}

// StatusItem is one member's reflected status (Karmada's
// AggregatedStatusItem).
type StatusItem struct {
	ClusterName    string         `json:"clusterName"`
	Status         map[string]any `json:"status,omitempty"`
	Applied        bool           `json:"applied,omitempty"`
	AppliedMessage string         `json:"appliedMessage,omitempty"`
	Health         string         `json:"health,omitempty"`
}

// AggregateStatus runs the statusAggregation of the hub's obj with the
// members' statuses; Karmada writes the returned object's status to the
// hub's object.
func (in *Interpreter) AggregateStatus(obj *unstructured.Unstructured, items []StatusItem) (*unstructured.Unstructured, error) {
	s, err := script(in.rules(obj).StatusAggregation, obj, "statusAggregation")
	if err != nil {
		return nil, err
	}
	ret, err := in.run(s, "AggregateStatus", obj, items)
	if err != nil {
		return nil, err
	}
	return objectFrom(ret)
}

// Retain runs the retention of a member's object: desired is what the hub
// asks for (after Karmada kept the member's labels, annotations,
// finalizers and owners), observed the member's live object; Karmada
// updates the member with the result.
func (in *Interpreter) Retain(desired, observed *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	s, err := script(in.rules(desired).Retention, desired, "retention")
	if err != nil {
		return nil, err
	}
	ret, err := in.run(s, "Retain", desired, observed)
	if err != nil {
		return nil, err
	}
	return objectFrom(ret, desired.Object, observed.Object)
}

// Dependency is an object that goes wherever the object that needs it
// goes (Karmada's DependentObjectReference).
type Dependency struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name,omitempty"`
}

// GetDependencies runs the dependencyInterpretation of obj.
func (in *Interpreter) GetDependencies(obj *unstructured.Unstructured) ([]Dependency, error) {
	s, err := script(in.rules(obj).DependencyInterpretation, obj, "dependencyInterpretation")
	if err != nil {
		return nil, err
	}
	ret, err := in.run(s, "GetDependencies", obj)
	if err != nil {
		return nil, err
	}
	t, ok := ret.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("expect the returned requires type is table but got %s", ret.Type())
	}
	raw, err := fromLua(t, false)
	if err != nil {
		return nil, err
	}
	var deps []Dependency
	if err := json.Unmarshal(raw, &deps); err != nil {
		return nil, err
	}
	for i, d := range deps {
		// Karmada's VerifyDependencies.
		if d.APIVersion == "" || d.Kind == "" || d.Name == "" {
			return nil, fmt.Errorf("dependencies[%d]: apiVersion, kind and name are required: %+v", i, d)
		}
	}
	return deps, nil
}

func objectFrom(ret lua.LValue, refs ...any) (*unstructured.Unstructured, error) {
	t, ok := ret.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("expect the returned requires type is table but got %s", ret.Type())
	}
	raw, err := fromLua(t, true, refs...)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	return u, u.UnmarshalJSON(raw)
}

// unsafeBase are the base functions Karmada replaces by ones that fail.
var unsafeBase = []string{"collectgarbage", "dofile", "getfenv", "getmetatable", "load", "loadfile",
	"loadstring", "rawequal", "rawget", "rawset", "setfenv", "setmetatable", "module", "newproxy"}

// run runs script and calls its global function fn with args.
func (in *Interpreter) run(script, fn string, args ...any) (lua.LValue, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	for _, name := range unsafeBase {
		if err := L.DoString(fmt.Sprintf("function %s() error('call function %s is not supported in karmada customized resourceinterpreter.') end", name, name)); err != nil {
			return nil, err
		}
	}
	timeout := in.Timeout
	if timeout == 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	L.SetContext(ctx)
	if err := L.DoString(script); err != nil {
		return nil, err
	}
	values := make([]lua.LValue, len(args))
	for i, a := range args {
		raw, err := json.Marshal(a)
		if err != nil {
			return nil, err
		}
		if values[i], err = luajson.Decode(L, raw); err != nil {
			return nil, err
		}
	}
	f := L.GetGlobal(fn)
	if f.Type() != lua.LTFunction {
		return nil, fmt.Errorf("not found function %v", fn)
	}
	if err := L.CallByParam(lua.P{Fn: f, NRet: 1, Protect: true}, values...); err != nil {
		return nil, err
	}
	return L.Get(-1), nil
}

// fromLua encodes a returned table to JSON and repairs its empty tables
// (Karmada's ConvertLuaResultInto): a root [] is {} when the result is an
// object; below the root an empty list stays where a reference had a list
// at that path (list indexes left out of paths), becomes {} where a
// reference had a map, and is dropped otherwise.
func fromLua(t *lua.LTable, object bool, refs ...any) ([]byte, error) {
	raw, err := luajson.Encode(t)
	if err != nil {
		return nil, fmt.Errorf("encode lua result to json failed: %w", err)
	}
	if string(raw) == "[]" {
		if object {
			return []byte("{}"), nil
		}
		return raw, nil
	}
	lists, maps := map[string]bool{}, map[string]bool{}
	for _, r := range refs {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, err
		}
		findEmpty(v, nil, lists, maps)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	repairEmpty(v, nil, lists, maps)
	return json.Marshal(v)
}

func pathKey(p []string) string { return strings.Join(p, "\x00") }

func findEmpty(v any, p []string, lists, maps map[string]bool) {
	visit := func(child any, cp []string) {
		switch c := child.(type) {
		case []any:
			if len(c) == 0 {
				lists[pathKey(cp)] = true
				return
			}
		case map[string]any:
			if len(c) == 0 {
				maps[pathKey(cp)] = true
				return
			}
		default:
			return
		}
		findEmpty(child, cp, lists, maps)
	}
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			visit(child, append(p[:len(p):len(p)], k))
		}
	case []any:
		for _, child := range v {
			visit(child, p)
		}
	}
}

func repairEmpty(v any, p []string, lists, maps map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			cp := append(p[:len(p):len(p)], k)
			if l, ok := child.([]any); ok && len(l) == 0 {
				switch {
				case maps[pathKey(cp)]:
					v[k] = map[string]any{}
				case !lists[pathKey(cp)]:
					delete(v, k)
				}
				continue
			}
			repairEmpty(child, cp, lists, maps)
		}
	case []any:
		for _, child := range v {
			repairEmpty(child, p, lists, maps)
		}
	}
}

// RetainClusterFields is what Karmada's object watcher keeps of a member's
// object before the retention customization runs (retainClusterFields):
// its resourceVersion, finalizers and owner references, and the labels
// and annotations the hub's object does not set.
func RetainClusterFields(desired, observed *unstructured.Unstructured) {
	desired.SetResourceVersion(observed.GetResourceVersion())
	desired.SetFinalizers(observed.GetFinalizers())
	desired.SetOwnerReferences(observed.GetOwnerReferences())
	desired.SetAnnotations(mergeMissing(desired.GetAnnotations(), observed.GetAnnotations()))
	desired.SetLabels(mergeMissing(desired.GetLabels(), observed.GetLabels()))
}

func mergeMissing(desired, observed map[string]string) map[string]string {
	if len(desired) == 0 && len(observed) == 0 {
		return desired
	}
	out := map[string]string{}
	for k, v := range observed {
		out[k] = v
	}
	for k, v := range desired {
		out[k] = v
	}
	return out
}
