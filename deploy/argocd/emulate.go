package argocd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	lua "github.com/yuin/gopher-lua"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

// How Argo CD runs resource customizations, reproduced from its source
// (argoproj/argo-cd at 37ee0097: util/lua/lua.go, util/lua/oslib_safe.go,
// util/settings/settings.go, server/application/application.go) so that
// tests run Sluice's scripts under the same rules:
//   - a fresh gopher-lua state per run, with only the package, base, table
//     and a safe os library (time, date) unless useOpenLibs is set for the
//     kind; a 1s time limit; the object in the global obj (numbers as Lua
//     numbers), action parameters in actionParams;
//   - the value the script returns, encoded to JSON by layeh.com/gopher-json
//     (an empty table is []);
//   - an action's returned object is cleaned (an empty table where the live
//     object had a map becomes {} again), diffed against the live object as
//     a JSON merge patch, and sent in two parts: when it changes status, the
//     whole patch to the status subresource, then the rest to the object.

// Customizations are resource customizations as Argo CD reads them from
// argocd-cm.
type Customizations struct {
	byKind map[string]*override
	// Now is the clock of the scripts' os.time and os.date; time.Now when
	// nil.
	Now func() time.Time
	// Timeout bounds one script run; Argo CD's 1s when zero. Tests on a
	// loaded machine raise it; BenchmarkScripts shows what the scripts
	// cost.
	Timeout time.Duration
}

type override struct {
	health      string
	useOpenLibs bool
	actions     *actionsValue
}

// ParseConfigMap reads customizations from argocd-cm data as Argo CD does:
// the keys resource.customizations.<health|actions|useOpenLibs>.<group>_<Kind>
// (the single resource.customizations key is not read here).
func ParseConfigMap(data map[string]string) (*Customizations, error) {
	c := &Customizations{byKind: map[string]*override{}}
	for k, v := range data {
		if !strings.HasPrefix(k, "resource.customizations") {
			continue
		}
		parts := strings.SplitN(k, ".", 4)
		if len(parts) < 4 {
			continue
		}
		gk := strings.Split(parts[3], "_")
		if len(gk) != 2 {
			return nil, fmt.Errorf("argocd-cm key %s: group kind should be <group>_<Kind>", k)
		}
		key := gk[0] + "/" + gk[1]
		o := c.byKind[key]
		if o == nil {
			o = &override{}
			c.byKind[key] = o
		}
		switch parts[2] {
		case "health":
			o.health = v
		case "useOpenLibs":
			o.useOpenLibs = v == "true"
		case "actions":
			a := &actionsValue{}
			if err := yaml.UnmarshalStrict([]byte(v), a); err != nil {
				return nil, fmt.Errorf("argocd-cm key %s: %w", k, err)
			}
			o.actions = a
		default:
			return nil, fmt.Errorf("argocd-cm key %s: resource customization type %s not supported", k, parts[2])
		}
	}
	return c, nil
}

// LoadConfigMap reads customizations from an argocd-cm manifest such as
// argocd-cm.yaml.
func LoadConfigMap(raw []byte) (*Customizations, error) {
	var cm struct {
		Kind string            `json:"kind"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		return nil, err
	}
	if cm.Kind != "ConfigMap" {
		return nil, fmt.Errorf("want a ConfigMap, got kind %q", cm.Kind)
	}
	return ParseConfigMap(cm.Data)
}

func kindKey(obj *unstructured.Unstructured) string {
	gvk := obj.GroupVersionKind()
	return gvk.Group + "/" + gvk.Kind
}

// Health is a health assessment (Argo CD's HealthStatus).
type Health struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

var validHealth = []string{"Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing"}

// Health runs obj's health check (ExecuteHealthLua).
func (c *Customizations) Health(obj *unstructured.Unstructured) (*Health, error) {
	o := c.byKind[kindKey(obj)]
	if o == nil || o.health == "" {
		return nil, fmt.Errorf("no health check for %s", kindKey(obj))
	}
	var h *Health
	err := c.run(obj, o.health, o.useOpenLibs, func(ret lua.LValue) error {
		switch ret.Type() {
		case lua.LTNil:
			h = &Health{}
			return nil
		case lua.LTTable:
		default:
			return fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
		}
		raw, err := luajson.Encode(ret)
		if err != nil {
			return err
		}
		h = &Health{}
		if err := json.Unmarshal(raw, h); err != nil {
			if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
				h = &Health{} // an empty table, encoded as []
				return nil
			}
			return err
		}
		if !slices.Contains(validHealth, h.Status) {
			h = &Health{Status: "Unknown", Message: "Lua returned an invalid health status"}
		}
		return nil
	})
	return h, err
}

// Action is an action as discovery offers it (Argo CD's ResourceAction).
type Action struct {
	Name        string `json:"name"`
	Disabled    bool   `json:"disabled,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	IconClass   string `json:"iconClass,omitempty"`
}

// Actions runs obj's action discovery (ExecuteResourceActionDiscovery),
// sorted by name.
func (c *Customizations) Actions(obj *unstructured.Unstructured) ([]Action, error) {
	o := c.byKind[kindKey(obj)]
	if o == nil || o.actions == nil {
		return nil, fmt.Errorf("no actions for %s", kindKey(obj))
	}
	var out []Action
	err := c.run(obj, o.actions.Discovery, o.useOpenLibs, func(ret lua.LValue) error {
		if ret.Type() != lua.LTTable {
			return fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
		}
		raw, err := luajson.Encode(ret)
		if err != nil {
			return fmt.Errorf("error in converting to lua table: %w", err)
		}
		if string(raw) == "[]" {
			return nil
		}
		m := map[string]any{}
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("error unmarshaling action table: %w", err)
		}
		for name, v := range m {
			a := Action{Name: name}
			if _, empty := v.([]any); !empty {
				b, err := json.Marshal(v)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &a); err != nil {
					return fmt.Errorf("error unmarshaling resource action: %w", err)
				}
			}
			out = append(out, a)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Action) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// Patch is what Argo CD sends for an action's returned object.
type Patch struct {
	// Status, when the action changes status, is the whole merge patch,
	// sent to the status subresource (which keeps only its status part).
	Status []byte
	// Main is the merge patch sent to the object itself: the part outside
	// status when Status is set, else the whole patch.
	Main []byte
}

// Empty reports whether the action changed nothing (Argo CD then sends
// nothing).
func (p *Patch) Empty() bool { return p.Status == nil && p.Main == nil }

// Run runs the named action on obj (ExecuteResourceAction) and returns
// the patches Argo CD would send (RunResourceActionV2, patchResource). A
// script that fails, for example by refusing the action with error(),
// returns its message as the error.
func (c *Customizations) Run(obj *unstructured.Unstructured, name string) (*Patch, error) {
	o := c.byKind[kindKey(obj)]
	if o == nil || o.actions == nil {
		return nil, fmt.Errorf("no actions for %s", kindKey(obj))
	}
	i := slices.IndexFunc(o.actions.Definitions, func(d actionDefinition) bool { return d.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("action %s of %s is not defined", name, kindKey(obj))
	}
	var returned []byte
	err := c.run(obj, o.actions.Definitions[i].Action, o.useOpenLibs, func(ret lua.LValue) error {
		if ret.Type() != lua.LTTable {
			return fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
		}
		raw, err := luajson.Encode(ret)
		if err != nil {
			return err
		}
		if len(raw) < 2 {
			return errors.New("Lua output was not a valid json object or array")
		}
		if raw[0] == '[' {
			return errors.New("actions returning a list of impacted resources are not emulated")
		}
		returned = raw
		return nil
	})
	if err != nil {
		return nil, err
	}
	newObj := map[string]any{}
	if err := json.Unmarshal(returned, &newObj); err != nil {
		return nil, err
	}
	cleanReturned(newObj, obj.Object)
	live, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	changed, err := json.Marshal(newObj)
	if err != nil {
		return nil, err
	}
	diff, err := jsonpatch.CreateMergePatch(live, changed)
	if err != nil {
		return nil, fmt.Errorf("error calculating merge patch: %w", err)
	}
	if string(diff) == "{}" {
		return &Patch{}, nil
	}
	var parts map[string]json.RawMessage
	if err := json.Unmarshal(diff, &parts); err != nil {
		return nil, err
	}
	if _, ok := parts["status"]; !ok {
		return &Patch{Main: diff}, nil
	}
	p := &Patch{Status: diff}
	delete(parts, "status")
	if len(parts) > 0 {
		if p.Main, err = json.Marshal(parts); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Apply sends the patch to the named object through ri, in Argo CD's
// order; a kind without a status subresource (404) gets the whole patch
// on the object, as in Argo CD.
func (p *Patch) Apply(ctx context.Context, ri dynamic.ResourceInterface, name string) error {
	main := p.Main
	if p.Status != nil {
		_, err := ri.Patch(ctx, name, types.MergePatchType, p.Status, metav1.PatchOptions{}, "status")
		switch {
		case apierrors.IsNotFound(err):
			main = p.Status
		case err != nil:
			return fmt.Errorf("error patching resource: %w", err)
		}
	}
	if main == nil {
		return nil
	}
	if _, err := ri.Patch(ctx, name, types.MergePatchType, main, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("error patching resource: %w", err)
	}
	return nil
}

// run runs script on obj in a state set up as Argo CD's runLua does and
// passes what it returns to read.
func (c *Customizations) run(obj *unstructured.Unstructured, script string, openLibs bool, read func(lua.LValue) error) error {
	L := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, c.openSafeOs},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return err
		}
	}
	L.PreloadModule(lua.OsLibName, func(L *lua.LState) int {
		L.Push(L.SetFuncs(L.NewTable(), c.osFuncs()))
		return 1
	})
	timeout := c.Timeout
	if timeout == 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("actionParams", L.CreateTable(0, 0))
	L.SetGlobal("obj", toLua(L, obj.Object))

	fn, err := L.LoadString(script)
	if err == nil {
		L.Push(fn)
		err = L.PCall(0, lua.MultRet, nil)
	}
	if apiErr, ok := errors.AsType[*lua.ApiError](err); ok && apiErr.Type == lua.ApiErrorRun {
		apiErr.StackTrace = "" // Argo CD shows the message without it
		err = apiErr
	}
	if err != nil {
		return err
	}
	return read(L.Get(-1))
}

func (c *Customizations) openSafeOs(L *lua.LState) int {
	L.Push(L.RegisterModule(lua.OsLibName, c.osFuncs()))
	return 1
}

// osFuncs is the safe os library: os.time() and os.date(format[, time]).
func (c *Customizations) osFuncs() map[string]lua.LGFunction {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	return map[string]lua.LGFunction{
		"time": func(L *lua.LState) int {
			if L.GetTop() != 0 {
				L.RaiseError("os.time with a table is not emulated")
			}
			L.Push(lua.LNumber(now().Unix()))
			return 1
		},
		"date": func(L *lua.LState) int {
			t, format := now(), "%c"
			if L.GetTop() >= 1 {
				format = L.CheckString(1)
				if f, ok := strings.CutPrefix(format, "!"); ok {
					t, format = t.UTC(), f
				}
				if L.GetTop() >= 2 {
					t = time.Unix(L.CheckInt64(2), 0)
				}
			}
			L.Push(lua.LString(strftime(t, format)))
			return 1
		},
	}
}

// strftimeLayouts maps C date flags to Go layouts, as Argo CD's os.date.
var strftimeLayouts = map[byte]string{
	'a': "mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'c': "02 Jan 06 15:04 MST", 'd': "02",
	'F': "2006-01-02", 'H': "15", 'I': "03", 'm': "01", 'M': "04", 'p': "PM", 'P': "pm", 'S': "05",
	'x': "15/04/05", 'X': "15:04:05", 'y': "06", 'Y': "2006", 'z': "-0700", 'Z': "MST",
}

func strftime(t time.Time, format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		ch := format[i]
		if ch != '%' || i == len(format)-1 {
			b.WriteByte(ch)
			continue
		}
		i++
		switch f := format[i]; {
		case f == '%':
			b.WriteByte('%')
		case f == 'w':
			fmt.Fprint(&b, int(t.Weekday()))
		case strftimeLayouts[f] != "":
			b.WriteString(t.Format(strftimeLayouts[f]))
		default:
			b.WriteByte('%')
			b.WriteByte(f)
		}
	}
	return b.String()
}

// toLua converts an unstructured value to Lua as Argo CD's decodeValue:
// numbers of any Go type become Lua numbers, other types nil.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, e := range v {
			t.RawSetH(lua.LString(k), toLua(L, e))
		}
		return t
	}
	return lua.LNil
}

// cleanReturned turns the empty lists of an action's returned object back
// into empty maps where the live object had a map (Lua has one empty
// table for both), as Argo CD's cleanReturnedObj.
func cleanReturned(returned, live map[string]any) {
	for k, old := range live {
		switch v := returned[k].(type) {
		case map[string]any:
			if o, ok := old.(map[string]any); ok {
				cleanReturned(v, o)
			}
		case []any:
			switch o := old.(type) {
			case map[string]any:
				if len(v) == 0 {
					returned[k] = map[string]any{}
				}
			case []any:
				cleanReturnedList(v, o)
			}
		}
	}
}

func cleanReturnedList(returned, live []any) {
	for i := range returned {
		if i >= len(live) {
			return
		}
		switch v := returned[i].(type) {
		case map[string]any:
			if o, ok := live[i].(map[string]any); ok {
				cleanReturned(v, o)
			}
		case []any:
			if o, ok := live[i].([]any); ok {
				cleanReturnedList(v, o)
			}
		}
	}
}
