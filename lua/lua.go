// Package lua runs ecosystem scripts (`pmdaemon run ecosystem.lua`) in a sandboxed gopher-lua
// state: only the base, table, string and math libraries, a safe os subset and a require that
// loads modules from the script's directory; a wall-clock limit, a memory limit and call-stack
// limits; errors as `ecosystem.lua:12: message`. The modules of package stdlib are preloaded.
// The script talks to the daemon only through host/api, and a dry run never changes it.
package lua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/metrics"
	"strings"
	"sync"
	"time"

	glua "github.com/yuin/gopher-lua"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/stdlib"
)

// Limits of one evaluation.
const (
	// DefaultTimeout is the wall-clock limit when Options.Timeout is zero.
	DefaultTimeout = 30 * time.Second
	// DefaultMemoryLimit bounds how much the Go heap may grow while a script runs.
	DefaultMemoryLimit = 256 << 20
	// CallStackSize bounds nested calls (deep recursion is an error, not a crash).
	CallStackSize = 200
	// RegistryMaxSize bounds the Lua value stack (huge unpack, string.byte of a huge string).
	RegistryMaxSize = 256 << 10
	// MaxScriptSize bounds the script and each module file.
	MaxScriptSize = 1 << 20
	// MaxStringSize bounds a string built by string.rep.
	MaxStringSize = 16 << 20
)

// stopGrace is how long Run waits, after the limit, for the script to stop at its next
// instruction before it gives up on a Go function that does not return (a pathological
// pattern match) and returns anyway.
const stopGrace = 200 * time.Millisecond

// Options configure one run.
type Options struct {
	// Client is the daemon connection; it may be nil with DryRun.
	Client *api.Client
	// DryRun evaluates the script and plans: cluster.start validates and records the app in
	// Result.Planned, stop/restart/reload/delete are recorded in Result.Actions, and nothing
	// in the daemon changes. Read-only queries still ask the daemon when Client is set.
	DryRun bool
	// Update makes cluster.start restart an app that is already running with the script's
	// config; otherwise such an app is left alone (and reported with existed = true).
	Update bool
	// Only, when set, limits the run to the app of that name (`run --only NAME`): cluster.start
	// of any other app validates it and returns a table with skipped = true, stop/restart/
	// reload/delete of another target are skipped, and Declared keeps only that app. A script
	// without an app of that name is an error.
	Only string
	// Timeout is the wall-clock limit of the evaluation; zero means DefaultTimeout.
	Timeout time.Duration
	// MemoryLimit bounds the heap growth during the evaluation; zero means DefaultMemoryLimit.
	MemoryLimit int64
	// Log receives log.info/warn/error and print output (the CLI's stderr); nil means
	// os.Stderr.
	Log io.Writer
}

// Result is what a run did or would do. Run returns it even with an error, so that the apps
// started before the error are known.
type Result struct {
	// Declared are the apps of `return { apps = {...} }`, validated, not started.
	Declared []config.App
	// Started are the answers of the cluster.start calls made during the run, in order. An
	// app that was already running and left alone has Existed set.
	Started []api.Started
	// Plugins are the answers of the plugins.add calls made during the run, in order.
	Plugins []api.PluginEnsured
	// Planned are, with DryRun, the apps cluster.start would have started.
	Planned []config.App
	// Actions are, with DryRun, the other changes the script asked for, as CLI commands
	// (`restart web --port 4000-4003`).
	Actions []string
}

var (
	errTimeLimit   = errors.New("time limit")
	errMemoryLimit = errors.New("memory limit")
)

// outcome is what the evaluating goroutine hands back.
type outcome struct {
	declared []config.App
	err      error
}

// Run evaluates the ecosystem script at path.
func Run(ctx context.Context, path string, opts Options) (*Result, error) {
	res := &Result{}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MemoryLimit <= 0 {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	if !opts.DryRun && opts.Client == nil {
		return res, errors.New("lua.Run: no daemon client (Options.Client is nil and DryRun is off)")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return res, err
	}
	file := filepath.Base(abs)
	dir := filepath.Dir(abs)
	src, err := readSource(abs, file)
	if err != nil {
		return res, err
	}

	evalCtx, cancelTime := context.WithTimeoutCause(ctx, opts.Timeout, errTimeLimit)
	defer cancelTime()
	evalCtx, cancelMem := context.WithCancelCause(evalCtx)
	defer cancelMem(nil)
	stopWatch := watchMemory(opts.MemoryLimit, cancelMem)
	defer stopWatch()

	host := &stdlib.Host{
		Ctx:     evalCtx,
		CallCtx: ctx,
		Client:  opts.Client,
		DryRun:  opts.DryRun,
		Update:  opts.Update,
		Only:    opts.Only,
		Log:     opts.Log,
		Dir:     dir,
	}
	done := make(chan outcome, 1)
	go func() {
		var out outcome
		defer func() {
			if r := recover(); r != nil {
				if ae, ok := r.(*glua.ApiError); ok {
					// gopher-lua lets a registry overflow escape PCall when its message
					// handler cannot be pushed.
					out = outcome{err: luaError(ae, file)}
				} else {
					out = outcome{err: fmt.Errorf("%s: internal error in the Lua runtime: %v", file, r)}
				}
			}
			done <- out
		}()
		out = evaluate(evalCtx, host, src, file, dir)
	}()
	var out outcome
	select {
	case out = <-done:
	case <-evalCtx.Done():
		select {
		case out = <-done:
		case <-time.After(stopGrace):
			out = outcome{err: evalCtx.Err()}
		}
	}
	// From here on no daemon call can start; a call in flight has finished.
	host.Close()
	res.Started = host.Started()
	res.Plugins = host.Plugins()
	res.Planned = host.Planned()
	res.Actions = host.Actions()
	if out.err == nil {
		res.Declared = out.declared
		if opts.Only == "" {
			return res, nil
		}
		var kept []config.App
		for _, a := range res.Declared {
			if a.Name == opts.Only {
				kept = append(kept, a)
			}
		}
		res.Declared = kept
		names := host.Names()
		for _, n := range names {
			if n == opts.Only {
				return res, nil
			}
		}
		return res, fmt.Errorf("%s has no app named %q (it has: %s)", file, opts.Only, strings.Join(names, ", "))
	}
	err = out.err
	if evalCtx.Err() != nil {
		err = stopError(evalCtx, ctx, file, opts, err)
	}
	if names := host.StartedNames(); len(names) > 0 {
		err = fmt.Errorf("%w (started before the error: %s)", err, strings.Join(names, ", "))
	}
	return res, err
}

var posRe = lazyRegexp(`^([^\s:]+:\d+): `)

// stopError words an evaluation that was stopped from outside.
func stopError(evalCtx, parent context.Context, file string, opts Options, lerr error) error {
	at := ""
	if m := posRe().FindStringSubmatch(lerr.Error()); m != nil {
		at = " (stopped at " + m[1] + ")"
	}
	switch cause := context.Cause(evalCtx); {
	case errors.Is(cause, errMemoryLimit):
		return fmt.Errorf("%s: evaluation exceeded the memory limit of %d MB%s", file, opts.MemoryLimit>>20, at)
	case errors.Is(cause, errTimeLimit):
		return fmt.Errorf("%s: evaluation exceeded the %s limit%s", file, opts.Timeout, at)
	default:
		return fmt.Errorf("%s: evaluation cancelled: %v%s", file, context.Cause(parent), at)
	}
}

// watchMemory cancels the evaluation when the heap grows by more than limit bytes. It reads
// runtime/metrics, which does not stop the world.
func watchMemory(limit int64, cancel context.CancelCauseFunc) (stop func()) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() int64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(sample[0].Value.Uint64())
	}
	base := read()
	quit := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if read()-base > limit {
					cancel(errMemoryLimit)
					return
				}
			}
		}
	}()
	return func() { close(quit) }
}

// evaluate runs the script in a fresh sandboxed state and converts its returned apps.
func evaluate(ctx context.Context, host *stdlib.Host, src []byte, file, dir string) outcome {
	L := newState(ctx, host, dir)
	defer L.Close()
	fn, err := compile(L, src, file)
	if err != nil {
		return outcome{err: err}
	}
	L.Push(fn)
	if err := L.PCall(0, 1, passError(L)); err != nil {
		return outcome{err: luaError(err, file)}
	}
	apps, err := declared(L.Get(-1), host, file, dir)
	return outcome{declared: apps, err: err}
}

// luaError words an error raised by the script: `file:line: message`.
func luaError(err error, file string) error {
	var ae *glua.ApiError
	if !errors.As(err, &ae) {
		return fmt.Errorf("%s: %v", file, err)
	}
	var msg string
	switch obj := ae.Object.(type) {
	case glua.LString:
		msg = string(obj)
	case *glua.LNilType:
		msg = "error raised with nil as its message"
	default:
		msg = fmt.Sprintf("error raised with a %s value instead of a message (use error(\"message\"))", obj.Type())
	}
	if ae.Type == glua.ApiErrorPanic {
		msg = "internal error in the Lua runtime: " + msg
	}
	switch {
	case strings.HasSuffix(msg, "stack overflow"):
		msg += fmt.Sprintf(" (calls nested deeper than %d levels: endless recursion?)", CallStackSize)
	case strings.HasSuffix(msg, "registry overflow"):
		msg = strings.TrimSuffix(msg, "registry overflow") + fmt.Sprintf("too many values on the Lua stack (more than %d)", RegistryMaxSize)
	}
	if !posRe().MatchString(msg) {
		msg = file + ": " + msg
	}
	return errors.New(msg)
}

// declared turns the script's return value into apps.
func declared(ret glua.LValue, host *stdlib.Host, file, dir string) ([]config.App, error) {
	if ret == glua.LNil {
		return nil, nil
	}
	t, ok := ret.(*glua.LTable)
	if !ok {
		return nil, fmt.Errorf("%s: the script returned %s; return { apps = { ... } } or nothing", file, ret.Type())
	}
	appsV := t.RawGetString("apps")
	if appsV == glua.LNil {
		if t.RawGetString("script") != glua.LNil {
			// One app object, as an ecosystem.json may hold.
			return declaredApps(host, file, dir, []glua.LValue{t}, true)
		}
		return nil, fmt.Errorf("%s: the returned table has no \"apps\"; return { apps = { ... } }", file)
	}
	var bad []string
	t.ForEach(func(k, _ glua.LValue) {
		if s, ok := k.(glua.LString); !ok || s != "apps" {
			bad = append(bad, k.String())
		}
	})
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: unknown top-level key %q in the returned table (it has \"apps\")", file, bad[0])
	}
	list, ok := appsV.(*glua.LTable)
	if !ok {
		return nil, fmt.Errorf("%s: \"apps\" must be a table of app tables, got %s", file, appsV.Type())
	}
	n := list.Len()
	count := 0
	list.ForEach(func(glua.LValue, glua.LValue) { count++ })
	if count != n {
		return nil, fmt.Errorf("%s: \"apps\" must be an array { {...}, {...} } with keys 1..n", file)
	}
	if n > stdlib.MaxEntries {
		return nil, fmt.Errorf("%s: \"apps\" has %d apps, more than the limit of %d", file, n, stdlib.MaxEntries)
	}
	vals := make([]glua.LValue, n)
	for i := range vals {
		vals[i] = list.RawGetInt(i + 1)
	}
	return declaredApps(host, file, dir, vals, false)
}

func declaredApps(host *stdlib.Host, file, dir string, vals []glua.LValue, single bool) ([]config.App, error) {
	apps := make([]config.App, 0, len(vals))
	seen := map[string]int{}
	for i, v := range vals {
		where := fmt.Sprintf("%s: apps[%d]", file, i+1)
		if single {
			where = file + ": returned app"
		}
		m, err := stdlib.AppMap(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		app, err := config.AppFromMap(m, where, dir)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[app.Name]; dup {
			return nil, fmt.Errorf("%s (%s): duplicate name %q (also apps[%d])", where, app.Name, app.Name, j+1)
		}
		if err := host.ClaimName(app.Name, where); err != nil {
			return nil, fmt.Errorf("%s (%s): %v", where, app.Name, err)
		}
		seen[app.Name] = i
		apps = append(apps, app)
	}
	return apps, nil
}

// lazyRegexp compiles expr on first use, not in every pmdaemon process at start-up.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
