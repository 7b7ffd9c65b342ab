// Package stdlib holds the Lua modules preloaded for ecosystem scripts: ports, cluster, env,
// json, log and plugins. They talk to the daemon only through host/api; the runtime (package lua)
// builds a Host for each script run and calls Open on its Lua state.
package stdlib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	glua "github.com/yuin/gopher-lua"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
)

// ErrStopped is raised by daemon calls once the evaluation has been stopped (time limit,
// memory limit, cancellation): no call starts after that.
var ErrStopped = errors.New("the evaluation was stopped; no further daemon call is made")

// Host is what the modules of one script run share with the runtime.
type Host struct {
	// Ctx is the evaluation context: it ends at the wall-clock limit. Read-only daemon calls
	// (list, info, ports) use it.
	Ctx context.Context
	// CallCtx carries the daemon calls that change something (start, stop, restart, ...). It
	// does not end at the wall-clock limit, so a call in flight then completes and is
	// reported rather than left half-done; it should end on cancellation by the user.
	CallCtx context.Context
	// Client is the daemon connection; nil in a dry run without a daemon.
	Client *api.Client
	// DryRun makes every call that would change the daemon plan instead.
	DryRun bool
	// Update makes cluster.start replace an app that already exists (if_exists "update");
	// otherwise such an app is left as it is ("keep").
	Update bool
	// Only, when set, limits the run to the app of that name: cluster.start of another app
	// validates it but starts (or plans) nothing, and stop/restart/reload/delete of another
	// target are skipped. Their tables carry skipped = true.
	Only string
	// Log receives log.* and print output.
	Log io.Writer
	// Dir is the script's directory: the default cwd of apps.
	Dir string

	mu      sync.Mutex
	closed  bool
	started []api.Started
	plugins []api.PluginEnsured
	planned []config.App
	actions []string
	names   map[string]string // app name -> where this run started or planned it
	order   []string          // the names, in order
}

// Close forbids any further daemon call that changes something. It waits for a call in
// flight to finish, so that what Started returns afterwards is complete.
func (h *Host) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
}

// Started returns the answers of the cluster.start calls made so far, in order.
func (h *Host) Started() []api.Started {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]api.Started(nil), h.started...)
}

// Plugins returns the answers of the plugins.add calls made so far, in order.
func (h *Host) Plugins() []api.PluginEnsured {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]api.PluginEnsured(nil), h.plugins...)
}

// StartedNames names the apps that cluster.start started or restarted (not those left alone
// because they were already running).
func (h *Host) StartedNames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for _, s := range h.started {
		if !s.Existed || s.Updated {
			names = append(names, s.Name)
		}
	}
	return names
}

// Planned returns, in a dry run, the apps cluster.start would have started.
func (h *Host) Planned() []config.App {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]config.App(nil), h.planned...)
}

// Actions returns, in a dry run, the other changes the script asked for (stop, restart,
// reload, delete), written as the CLI command that does the same.
func (h *Host) Actions() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.actions...)
}

// ClaimName records that this run starts app name at where; it fails when the run already
// started or planned an app of that name.
func (h *Host) ClaimName(name, where string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.names == nil {
		h.names = map[string]string{}
	}
	if prev, ok := h.names[name]; ok {
		return fmt.Errorf("app %q is already started by this script (%s)", name, prev)
	}
	if len(h.order) >= config.MaxApps {
		return fmt.Errorf("app %q would be app number %d of this script; an ecosystem file starts at most %d", name, len(h.order)+1, config.MaxApps)
	}
	h.names[name] = where
	h.order = append(h.order, name)
	return nil
}

// Names lists the apps the script started, planned, skipped or declared, in order.
func (h *Host) Names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.order...)
}

// change runs a daemon call that changes something, unless the run has been stopped. Calls
// are serialised with Close, so a call that has begun is always reported.
func (h *Host) change(f func(ctx context.Context) error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.Ctx.Err() != nil {
		return ErrStopped
	}
	return f(h.CallCtx)
}

// Open registers the modules as globals and in package.loaded.
func Open(L *glua.LState, h *Host) {
	loaded := L.FindTable(L.Get(glua.RegistryIndex).(*glua.LTable), "_LOADED", 8).(*glua.LTable)
	for name, funcs := range map[string]map[string]glua.LGFunction{
		"ports":   h.portsFuncs(),
		"cluster": h.clusterFuncs(),
		"env":     h.envFuncs(),
		"json":    h.jsonFuncs(),
		"log":     h.logFuncs(),
		"plugins": h.pluginsFuncs(),
	} {
		t := L.CreateTable(0, len(funcs))
		for fname, fn := range funcs {
			t.RawSetString(fname, L.NewFunction(fn))
		}
		L.SetGlobal(name, t)
		loaded.RawSetString(name, t)
	}
}

// Where names the Lua code that called the running Go function: `ecosystem.lua:12`.
func Where(L *glua.LState) string {
	for level := 1; ; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			return "?"
		}
		if _, err := L.GetInfo("Sl", dbg, glua.LNil); err != nil {
			return "?"
		}
		if dbg.What == "G" || dbg.Source == "" {
			continue
		}
		return fmt.Sprintf("%s:%d", dbg.Source, dbg.CurrentLine)
	}
}

// raise raises a Lua error `file:line: fn: message`.
func raise(L *glua.LState, fn string, format string, a ...any) {
	L.RaiseError("%s: %s", fn, fmt.Sprintf(format, a...))
}

// raiseAt raises a message that already names its place.
func raiseAt(L *glua.LState, msg string) {
	L.Error(glua.LString(msg), 0)
}

// checkNumber returns argument n as an integer; what names it in errors ("start port").
func checkInt(L *glua.LState, fn string, n int, what string) int {
	v := L.Get(n)
	num, ok := v.(glua.LNumber)
	if !ok {
		raise(L, fn, "%s must be a number, got %s", what, typeName(v))
	}
	f := float64(num)
	if f != math.Trunc(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<31 {
		raise(L, fn, "%s must be a whole number, got %v", what, num)
	}
	return int(f)
}

func checkPort(L *glua.LState, fn string, n int, what string) int {
	p := checkInt(L, fn, n, what)
	if p < 1 || p > 65535 {
		raise(L, fn, "%s %d is out of range (1-65535)", what, p)
	}
	return p
}

func checkString(L *glua.LState, fn string, n int, what string) string {
	v := L.Get(n)
	s, ok := v.(glua.LString)
	if !ok {
		raise(L, fn, "%s must be a string, got %s", what, typeName(v))
	}
	return string(s)
}

// checkTable returns argument n as a table, or nil when it is absent and optional.
func checkTable(L *glua.LState, fn string, n int, what string, optional bool) *glua.LTable {
	v := L.Get(n)
	if v == glua.LNil && optional {
		return nil
	}
	t, ok := v.(*glua.LTable)
	if !ok {
		raise(L, fn, "%s must be a table, got %s", what, typeName(v))
	}
	return t
}

// push converts v and pushes it, raising on a conversion error.
func push(L *glua.LState, fn string, v any) {
	lv, err := ToLua(L, v)
	if err != nil {
		raise(L, fn, "%v", err)
	}
	L.Push(lv)
}

// daemonErr words an api error for a Lua message.
func daemonErr(err error) string {
	if errors.Is(err, api.ErrNoDaemon) {
		return err.Error() + "; start it with `pmdaemon daemon` or any pmdaemon command"
	}
	return err.Error()
}
