package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/logs"
)

// A start runs in one direction, one step after the other: resolve (the request is checked
// against the apps and the system), allocate (ports through the policy chain, then the
// starting hooks; allocate.go), launch (slots made, ports reserved, loops started; launch.go),
// wait ready (ready.go), commit (hooks told of the ports, state written). Nothing is changed
// before launch, so a start refused at any earlier step leaves no trace.

// Start starts a new app, once the apps it depends on (running already) meet their conditions.
// It is all-or-nothing: on any error before launch nothing runs and no port is held. A client
// that goes away during the wait for readiness ends the wait; the instances launched keep
// running, supervised (docs/behaviour.md, "Requests that are given up").
func (d *Daemon) Start(ctx context.Context, req api.StartRequest) (*api.Started, error) {
	end, err := d.beginOp(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	return d.startAfterDependencies(ctx, req, nil)
}

// StartMany starts the apps of an ecosystem file, as Start would each: in the file's order,
// each app after the apps it depends on (depends.go), once they meet its conditions. An app
// that fails does not stop the others; the apps that depend on it are not started, and say
// why. When the client goes away, no further app starts. The state file is written once, at
// the end, rather than once per app.
func (d *Daemon) StartMany(ctx context.Context, req api.StartManyRequest) (*api.StartManyResult, error) {
	end, err := d.beginBatchOp(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	res := &api.StartManyResult{Started: []api.Started{}, Failed: -1}
	failed := map[string]error{}
	for _, i := range startOrder(req) {
		r := req.Apps[i]
		st, err := d.startAfterDependencies(ctx, r, failed)
		if err == nil {
			res.Started = append(res.Started, *st)
			continue
		}
		failed[r.App.Name] = err
		res.Failures = append(res.Failures, api.StartFailure{Index: i, Name: r.App.Name, Error: err.Error()})
		if res.Failed < 0 {
			res.Failed, res.Error = i, err.Error()
		}
		if ctx.Err() != nil {
			break
		}
	}
	return res, nil
}

// startAfterDependencies waits for r's dependencies, then starts it. An app that is there
// already and is to be left alone waits for nothing. failed holds the apps of the same request
// that failed (nil for a request of one app).
func (d *Daemon) startAfterDependencies(ctx context.Context, r api.StartRequest, failed map[string]error) (*api.Started, error) {
	d.mu.Lock()
	_, exists := d.apps[r.App.Name]
	d.mu.Unlock()
	if !exists || r.IfExists != "keep" {
		if err := d.awaitDependencies(ctx, r.App, failed); err != nil {
			return nil, err
		}
	}
	return d.startOne(ctx, r)
}

// startOne resolves what a start request asks for: a new app, the existing one kept, or the
// existing one updated.
func (d *Daemon) startOne(ctx context.Context, req api.StartRequest) (*api.Started, error) {
	d.mu.Lock()
	a, exists := d.apps[req.App.Name]
	d.mu.Unlock()
	if exists {
		switch req.IfExists {
		case "keep":
			d.mu.Lock()
			defer d.mu.Unlock()
			st := started(a)
			st.Existed = true
			return st, nil
		case "update":
			return d.update(ctx, a, req.App, req.WaitTimeout.Std())
		case "":
		default:
			return nil, userErr("if_exists must be \"\", \"keep\" or \"update\", got %q", req.IfExists)
		}
	}
	return d.startNew(ctx, req.App, req.WaitTimeout.Std())
}

// startNew starts cfg as a new app: resolve, allocate, launch, wait ready, commit.
func (d *Daemon) startNew(ctx context.Context, cfg config.App, waitTimeout time.Duration) (*api.Started, error) {
	argv, err := d.resolveNew(cfg)
	if err != nil {
		return nil, err
	}
	ps, warnings, err := d.allocate(nil, cfg.Name, cfg.Port, cfg.Instances, nil, holdOf(cfg))
	if err != nil {
		return nil, err
	}
	a, err := d.launchNew(cfg, argv, ps)
	if err != nil {
		return nil, err
	}
	wait, timeout := readiness(cfg, false, waitTimeout)
	werr := d.awaitReady(ctx, a, a.slots, wait, timeout)
	return d.commitStarted(a, nil, warnings, werr), notReady(cfg.Name, werr)
}

// resolveNew checks that cfg can start as a new app: valid, runnable, its name free and its
// log files writable. It returns the command line.
func (d *Daemon) resolveNew(cfg config.App) ([]string, error) {
	argv, err := checkApp(cfg)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	_, exists := d.apps[cfg.Name]
	d.mu.Unlock()
	if exists {
		return nil, conflictErr("process '%s' already exists; restart it, or delete it first", cfg.Name)
	}
	if err := d.checkAllLogs(cfg); err != nil {
		return nil, err
	}
	return argv, nil
}

// launchNew makes the app with one slot per port (or per instance without ports), reserves the
// ports and starts a loop on every slot.
func (d *Daemon) launchNew(cfg config.App, argv []string, ps []int) (*app, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.reg.Reserve(cfg.Name, ps); err != nil {
		return nil, err // cannot happen: the ports were chosen under opMu
	}
	a := &app{argv: argv, created: time.Now()}
	d.setConfig(a, cfg)
	for i := 0; i < cfg.Instances; i++ {
		s := d.newSlot(a, i)
		s.wanted = true
		if ps != nil {
			s.port = ps[i]
		}
		a.slots = append(a.slots, s)
	}
	d.apps[cfg.Name] = a
	d.order = append(d.order, cfg.Name)
	for _, s := range a.slots {
		d.launch(a, s, nil)
	}
	return a, nil
}

// update replaces a's saved configuration with cfg and restarts it under that configuration
// (any runtime override ends). Nothing changes if cfg is invalid or its ports cannot be had.
func (d *Daemon) update(ctx context.Context, a *app, cfg config.App, waitTimeout time.Duration) (*api.Started, error) {
	argv, err := checkApp(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.checkAllLogs(cfg); err != nil {
		return nil, err
	}
	ps, warnings, err := d.allocate(a, cfg.Name, cfg.Port, cfg.Instances, nil, holdOf(cfg))
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	before := slotPorts(a)
	d.setConfig(a, cfg)
	a.argv, a.argvErr = argv, nil
	d.mu.Unlock()
	if err := d.restartApp(a, &plan{spec: cfg.Port, ports: ps, n: cfg.Instances}); err != nil {
		return nil, err
	}
	wait, timeout := readiness(cfg, false, waitTimeout)
	werr := d.awaitReady(ctx, a, d.slotsOf(a), wait, timeout)
	st := d.commitStarted(a, before, warnings, werr)
	st.Existed, st.Updated = true, true
	return st, notReady(cfg.Name, werr)
}

// commitStarted ends a start: the hooks hear of changed ports (before is nil for a new app),
// the state is written, and the answer is made.
func (d *Daemon) commitStarted(a *app, before []int, warnings []string, werr error) *api.Started {
	d.mu.Lock()
	defer d.mu.Unlock()
	if before != nil {
		d.portsChanged(a.cfg.Name, before, slotPorts(a))
	}
	d.commitLocked()
	st := started(a)
	st.Warnings = warnings
	return st
}

// slotsOf is a copy of a's slots, for a step that runs without d.mu.
func (d *Daemon) slotsOf(a *app) []*slot {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*slot(nil), a.slots...)
}

// checkApp validates cfg against the system (cwd, script) and returns its argv.
func checkApp(cfg config.App) ([]string, error) {
	if err := cfg.Validate(); err != nil {
		return nil, &UserError{err.Error()}
	}
	if !filepath.IsAbs(cfg.Cwd) {
		return nil, userErr("app %q: cwd %q must be an absolute path", cfg.Name, cfg.Cwd)
	}
	if st, err := os.Stat(cfg.Cwd); err != nil {
		return nil, userErr("app %q: cwd %s cannot be used: %v", cfg.Name, cfg.Cwd, errors.Unwrap(err))
	} else if !st.IsDir() {
		return nil, userErr("app %q: cwd %s is not a directory", cfg.Name, cfg.Cwd)
	}
	if f, err := os.Open(cfg.Cwd); err != nil {
		return nil, userErr("app %q: cwd %s cannot be read: %v", cfg.Name, cfg.Cwd, errors.Unwrap(err))
	} else {
		f.Close()
	}
	argv, err := cfg.Argv(pathOf(cfg.Env))
	if err != nil {
		return nil, &UserError{err.Error()}
	}
	if err := cfg.CheckRunFiles(); err != nil {
		return nil, &UserError{err.Error()}
	}
	return argv, nil
}

// notReady is a start or restart whose instances run but did not become ready in time (nil
// when err is nil); they are left running (as PM2 does), and the error says so. When the
// client went away, the error keeps the context's error for the caller to see.
func notReady(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s started, but the request ended before it was ready: %w (its instances keep running)", name, err)
	}
	return userErr("%s started but is not ready: %v (its instances keep running; see pmdaemon info %s)", name, err, name)
}

// checkAllLogs runs checkLogs on each of cfg's instances.
func (d *Daemon) checkAllLogs(cfg config.App) error {
	probe := &app{cfg: &cfg}
	for i := 0; i < cfg.Instances; i++ {
		if err := d.checkLogs(probe, &slot{index: i}); err != nil {
			return err
		}
	}
	return nil
}

// checkLogs makes sure an instance's log files can be written, safely, before anything starts:
// a log directory others can write in, a symbolic link or anything but a regular file at a log
// path is refused, and rotation must be able to create files beside each log (see
// logs.Prepare). The files are handed to the rotation loop, which watches them from then on.
func (d *Daemon) checkLogs(a *app, s *slot) error {
	size, keep := a.cfg.LogLimits()
	for _, p := range d.logsOf(a, s) {
		if err := logs.Prepare(p); err != nil {
			if p == d.combinedLog(a) {
				return userErr("app %q: log_file: %v", a.cfg.Name, err)
			}
			return userErr("app %q: %v", a.cfg.Name, err)
		}
		d.logw.add(p, logs.Rotator{MaxSize: size, Keep: keep})
	}
	return nil
}

func started(a *app) *api.Started {
	out := &api.Started{Name: a.cfg.Name, IDs: []int{}, Ports: []int{}}
	for _, s := range a.slots {
		out.IDs = append(out.IDs, s.id)
		if s.port > 0 {
			out.Ports = append(out.Ports, s.port)
		}
	}
	out.Instances = len(a.slots)
	return out
}
