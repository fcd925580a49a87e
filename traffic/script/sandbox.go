// Package script runs the Lua scripts of the traffic providers (Kruise's
// custom network providers and ingress classes) in a sandbox: only the
// base, table, string and math libraries plus a json helper, no file,
// process or module access, and limits (see Limits), so that a broken or
// hostile script fails one step with a message naming it, never the
// controller.
package script

import (
	"context"
	"errors"
	"fmt"
	"runtime/metrics"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

func init() {
	// gopher-lua keeps integer keys below MaxArrayIndex (64 Mi by
	// default) in a table's array part and fills the gap with nils one by
	// one: t[60000000] = 1 took 7 s and 3 GiB in one instruction. Above
	// the cap keys go to the hash part: the same table to a script, except
	// that # counts the array part only, so a list longer than 1 Mi
	// elements has a wrong length. Sluice is gopher-lua's only user in the
	// controller.
	lua.MaxArrayIndex = 1 << 20
}

// DefaultTimeout bounds one script run; Kruise uses the same 1s.
const DefaultTimeout = time.Second

// Limits bound one script run. gopher-lua checks its context before every
// instruction, so a timeout stops any loop; what one instruction does in
// Go is bounded by the rest: the Go functions that can build large
// strings or search long ones are wrapped (strings.go), the stack and the
// call depth are capped, and converting a result to Go is budgeted.
//
// What no check in front of a function can bound is gopher-lua's own
// instructions: s = s .. s doubles a string, t[n] = 1 fills a table's
// array part up to n. A watchdog stops a script whose run has grown the
// heap by MaxMemory, at its next instruction; and the array part is
// capped (see init), so one index costs at most 16 MiB.
type Limits struct {
	// Timeout bounds the run.
	Timeout time.Duration
	// MaxMemory bounds how much the Go heap may grow during the run. It
	// is the whole process's heap (Go cannot measure one goroutine's), so
	// it is set far above what a routing script needs.
	MaxMemory uint64
	// MaxString bounds the string one call of string.rep, string.format,
	// string.gsub or table.concat may build.
	MaxString int
	// MaxPatternWork bounds the estimated steps of one pattern search
	// (string.find, match, gmatch, gsub): Lua patterns backtrack, so
	// ".-.-.-b" over a few thousand characters would take years.
	MaxPatternWork float64
	// MaxValues and MaxResultBytes bound a table converted to Go: the
	// script's result, or the argument of json.encode.
	MaxValues, MaxResultBytes int
	// CallStackSize and RegistryMaxSize cap Lua's call depth and value
	// stack.
	CallStackSize, RegistryMaxSize int
}

// DefaultLimits are the limits of Run.
var DefaultLimits = Limits{
	Timeout:         DefaultTimeout,
	MaxMemory:       256 << 20,
	MaxString:       1 << 20,
	MaxPatternWork:  1e8,
	MaxValues:       100_000,
	MaxResultBytes:  16 << 20,
	CallStackSize:   256,
	RegistryMaxSize: 64 * 1024,
}

// Error is a script that failed to compile or run.
type Error struct {
	// Script names the script (e.g. "configmap sluice-configuration key lua.traffic.routing.ingress.kong").
	Script string
	// Message is the Lua error, with the line ("<script>:12: attempt to index a nil value");
	// for a timeout or a memory limit, where the script was stopped ("<script>:12").
	Message string
	// Timeout is set when the script did not finish in time, OutOfMemory
	// when it grew the heap past its limit.
	Timeout, OutOfMemory bool
	limits               Limits
}

func (e *Error) Error() string {
	switch {
	case e.Timeout:
		return fmt.Sprintf("lua script %s did not finish within %s (an endless loop?), stopped at %s", e.Script, e.limits.Timeout, e.Message)
	case e.OutOfMemory:
		return fmt.Sprintf("lua script %s used more than %d MiB of memory, stopped at %s", e.Script, e.limits.MaxMemory>>20, e.Message)
	}
	return fmt.Sprintf("lua script %s failed: %s", e.Script, e.Message)
}

// errOutOfMemory is why the watchdog cancels a run.
var errOutOfMemory = errors.New("out of memory")

// Run executes source with the global obj set to input and returns what
// the script returns, converted to Go (maps, slices, strings, float64 or
// int64, bools), within the DefaultLimits. name identifies the script in
// errors and line numbers.
func Run(ctx context.Context, name, source string, input any) (any, error) {
	return DefaultLimits.Run(ctx, name, source, input)
}

// Run executes source within these limits; see the package Run.
func (l Limits) Run(ctx context.Context, name, source string, input any) (any, error) {
	ctx, cancelTimeout := context.WithTimeout(ctx, l.Timeout)
	defer cancelTimeout()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer watchMemory(ctx, cancel, l.MaxMemory)()

	L, m := newSandbox(l)
	defer L.Close()
	fail := func(err error) (any, error) {
		msg := luaMessage(err)
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, errOutOfMemory), errors.Is(cause, context.DeadlineExceeded):
			// "name:line: context deadline exceeded" -> "name:line"
			at, _, _ := strings.Cut(msg, ": context")
			return nil, &Error{Script: name, Message: at, Timeout: cause != errOutOfMemory, OutOfMemory: cause == errOutOfMemory, limits: l}
		}
		return nil, &Error{Script: name, Message: msg, limits: l}
	}

	fn, err := L.Load(strings.NewReader(source), name)
	if err != nil {
		return nil, &Error{Script: name, Message: err.Error(), limits: l}
	}
	obj, err := m.toLua(L, input)
	if err != nil {
		return nil, fmt.Errorf("lua script %s: its input: %w", name, err)
	}
	L.SetContext(ctx)
	L.SetGlobal("obj", obj)
	L.Push(fn)
	if err := L.PCall(0, 1, nil); err != nil {
		return fail(err)
	}
	out, err := newConverter(m, l).fromLua(L.Get(-1), 0)
	if err != nil {
		return nil, &Error{Script: name, Message: "its result: " + err.Error(), limits: l}
	}
	return out, nil
}

// watchMemory cancels ctx with errOutOfMemory once the heap has grown by
// more than limit since it started, and stops when ctx ends or when the
// function it returns is called. It samples every millisecond: a script
// doubling a string is stopped a few doublings past the limit.
func watchMemory(ctx context.Context, cancel context.CancelCauseFunc, limit uint64) (stop func()) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				metrics.Read(sample)
				if now := sample[0].Value.Uint64(); now > base && now-base > limit {
					cancel(errOutOfMemory)
					return
				}
			}
		}
	}()
	return func() { close(done) }
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
func newSandbox(l Limits) (*lua.LState, marks) {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:    true,
		CallStackSize:   l.CallStackSize,
		RegistrySize:    1024,
		RegistryMaxSize: l.RegistryMaxSize,
		// gopher-lua copies the whole stack at every growth step: by 32
		// slots (its default), unpack({}, 1, 1e6) takes half a minute to
		// reach the maximum.
		RegistryGrowStep: 4096,
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
	bound(L, l)
	m := newMarks(L)
	json := jsonModule(L, m, l)
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
	return L, m
}
