// Package script runs the Lua scripts of the traffic providers (Kruise's
// custom network providers and ingress classes) in a sandbox: only the
// base, table, string and math libraries plus a json helper, no file,
// process or module access, and a time limit, so that a broken or hostile
// script fails one step with a message naming it, never the controller.
package script

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// DefaultTimeout bounds one script run; Kruise uses the same 1s.
const DefaultTimeout = time.Second

// maxStringLen caps string.rep so a script cannot exhaust memory in one call.
const maxStringLen = 1 << 20

// Error is a script that failed to compile or run.
type Error struct {
	// Script names the script (e.g. "configmap sluice-configuration key lua.traffic.routing.ingress.kong").
	Script string
	// Message is the Lua error, with the line ("<script>:12: attempt to index a nil value");
	// for a timeout, where the script was stopped ("<script>:12").
	Message string
	// Timeout is set when the script did not finish in time.
	Timeout bool
}

func (e *Error) Error() string {
	if e.Timeout {
		return fmt.Sprintf("lua script %s did not finish within %s (an endless loop?), stopped at %s", e.Script, DefaultTimeout, e.Message)
	}
	return fmt.Sprintf("lua script %s failed: %s", e.Script, e.Message)
}

// Run executes source with the global obj set to input and returns what
// the script returns, converted to Go (maps, slices, strings, float64 or
// int64, bools). name identifies the script in errors and line numbers.
func Run(ctx context.Context, name, source string, input any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()

	L := newSandbox()
	defer L.Close()
	L.SetContext(ctx)

	fn, err := L.Load(strings.NewReader(source), name)
	if err != nil {
		return nil, &Error{Script: name, Message: err.Error()}
	}
	L.SetGlobal("obj", toLua(L, input))
	L.Push(fn)
	if err := L.PCall(0, 1, nil); err != nil {
		if ctx.Err() != nil {
			// "name:line: context deadline exceeded" -> "name:line"
			at, _, _ := strings.Cut(luaMessage(err), ": context")
			return nil, &Error{Script: name, Timeout: true, Message: at}
		}
		return nil, &Error{Script: name, Message: luaMessage(err)}
	}
	out := fromLua(L.Get(-1), 0)
	L.Pop(1)
	return out, nil
}

// luaMessage drops gopher-lua's Go stack traceback and keeps the first line
// ("name:line: message").
func luaMessage(err error) string {
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) && apiErr.Object != nil {
		return apiErr.Object.String()
	}
	msg, _, _ := strings.Cut(err.Error(), "\nstack traceback:")
	return msg
}

// newSandbox opens only the safe libraries and removes what could reach
// the file system, load code or write to the controller's stdout.
func newSandbox() *lua.LState {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:    true,
		CallStackSize:   256,
		RegistrySize:    1024,
		RegistryMaxSize: 256 * 1024,
	})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	for _, unsafe := range []string{"dofile", "loadfile", "load", "loadstring", "module",
		"print", "collectgarbage", "_printregs", "newproxy", "getfenv", "setfenv"} {
		L.SetGlobal(unsafe, lua.LNil)
	}
	str := L.GetGlobal(lua.StringLibName).(*lua.LTable)
	str.RawSetString("dump", lua.LNil)
	str.RawSetString("rep", L.NewFunction(boundedRep))
	json := jsonModule(L)
	L.SetGlobal("json", json)
	// Kruise's scripts load the json helper with require("json"); nothing
	// else can be required.
	L.SetGlobal("require", L.NewFunction(func(L *lua.LState) int {
		if name := L.CheckString(1); name != "json" {
			L.RaiseError("require(%q): only \"json\" is available to traffic routing scripts", name)
		}
		L.Push(json)
		return 1
	}))
	return L
}

func boundedRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n <= 0 {
		L.Push(lua.LString(""))
		return 1
	}
	if len(s)*n > maxStringLen || len(s)*n < 0 {
		L.RaiseError("string.rep: result longer than %d bytes", maxStringLen)
	}
	L.Push(lua.LString(strings.Repeat(s, n)))
	return 1
}
