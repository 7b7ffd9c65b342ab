package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/logs"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// Start starts a new app. It is all-or-nothing: on any error nothing runs and no port is held.
func (d *Daemon) Start(req api.StartRequest) (*api.Started, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	return d.startOne(req)
}

// StartMany starts the apps of an ecosystem file in order, as Start would each, and stops at
// the first that fails. The state file is written once, at the end, rather than once per app.
func (d *Daemon) StartMany(req api.StartManyRequest) (*api.StartManyResult, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	defer d.beginBatch()()
	defer d.plugins.Operation()() // a hook that hangs costs one timeout per operation, not per app
	res := &api.StartManyResult{Started: []api.Started{}, Failed: -1}
	for i, r := range req.Apps {
		st, err := d.startOne(r)
		if err != nil {
			res.Failed, res.Error = i, err.Error()
			return res, nil
		}
		res.Started = append(res.Started, *st)
	}
	return res, nil
}

func (d *Daemon) startOne(req api.StartRequest) (*api.Started, error) {
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
			return d.update(a, req.App, req.WaitTimeout.Std())
		case "":
		default:
			return nil, userErr("if_exists must be \"\", \"keep\" or \"update\", got %q", req.IfExists)
		}
	}
	return d.startLocked(req.App, req.WaitTimeout.Std())
}

// update replaces a's saved configuration with cfg and restarts it under that configuration
// (any runtime override ends). Nothing changes if cfg is invalid or its ports cannot be had.
func (d *Daemon) update(a *app, cfg config.App, waitTimeout time.Duration) (*api.Started, error) {
	argv, err := checkApp(cfg)
	if err != nil {
		return nil, err
	}
	probe := &app{cfg: cfg}
	for i := 0; i < cfg.Instances; i++ {
		if err := d.checkLogs(probe, &slot{index: i}); err != nil {
			return nil, err
		}
	}
	ps, err := d.pickPorts(cfg.Name, cfg.Port, cfg.Instances, nil)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	before := slotPorts(a)
	plans := d.launchPlans(a, cfg.Instances, ps)
	d.mu.Unlock()
	warnings, err := d.starting(cfg.Name, plans)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	a.cfg, a.argv, a.argvErr = cfg, argv, nil
	d.mu.Unlock()
	if err := d.restartApp(a, &plan{spec: cfg.Port, ports: ps, n: cfg.Instances}); err != nil {
		return nil, err
	}
	d.waitSpawned(a.slots)
	var werr error
	if wait, timeout := readiness(cfg, false, waitTimeout); wait {
		d.mu.Lock()
		slots := append([]*slot(nil), a.slots...)
		d.mu.Unlock()
		if werr = waitAllReady(a, slots, timeout); werr != nil {
			werr = notReady(cfg.Name, werr)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.portsChanged(cfg.Name, before, slotPorts(a))
	d.commitLocked()
	st := started(a)
	st.Existed, st.Updated, st.Warnings = true, true, warnings
	return st, werr
}

// launchPlans describes the n instances an operation on a will start on ps, for the starting
// hooks: existing slots keep their ids, new ones get the ids they will be given. d.mu must be
// held.
func (d *Daemon) launchPlans(a *app, n int, ps []int) []launchPlan {
	out := make([]launchPlan, n)
	next := d.nextID
	for i := range out {
		out[i].index = i
		if a != nil && i < len(a.slots) {
			out[i].id = a.slots[i].id
		} else {
			out[i].id, next = next, next+1
		}
		if ps != nil {
			out[i].port = ps[i]
		}
	}
	return out
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
	return argv, nil
}

// waitSpawned waits until every given slot's process has been started, so the answer to a
// start or restart shows pids. d.mu must not be held.
func (d *Daemon) waitSpawned(slots []*slot) {
	d.mu.Lock()
	var insts []*supervisor.Instance
	for _, s := range slots {
		if s.inst != nil {
			insts = append(insts, s.inst)
		}
	}
	d.mu.Unlock()
	for _, in := range insts {
		<-in.Spawned()
	}
}

func (d *Daemon) startLocked(cfg config.App, waitTimeout time.Duration) (*api.Started, error) {
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
	a := &app{cfg: cfg, argv: argv, created: time.Now()}
	ps, err := d.pickPorts(cfg.Name, a.liveSpec(), cfg.Instances, nil)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	plans := d.launchPlans(nil, cfg.Instances, ps)
	d.mu.Unlock()
	warnings, err := d.starting(cfg.Name, plans)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := 0; i < cfg.Instances; i++ {
		s := &slot{id: d.nextID, index: i, wanted: true}
		if ps != nil {
			s.port = ps[i]
		}
		if err := d.checkLogs(a, s); err != nil {
			return nil, err
		}
		s.unit = unitName(cfg.Name, d.nextID)
		d.nextID++
		a.slots = append(a.slots, s)
	}
	if err := d.reg.Reserve(cfg.Name, ps); err != nil {
		return nil, err
	}
	d.apps[cfg.Name] = a
	d.order = append(d.order, cfg.Name)
	for _, s := range a.slots {
		d.launch(a, s, nil)
	}
	d.mu.Unlock()
	d.waitSpawned(a.slots)
	var werr error
	if wait, timeout := readiness(cfg, false, waitTimeout); wait {
		werr = waitAllReady(a, a.slots, timeout)
	}
	d.mu.Lock()
	d.commitLocked()
	st := started(a)
	st.Warnings = warnings
	if werr != nil {
		return st, notReady(cfg.Name, werr)
	}
	return st, nil
}

// notReady is a start or restart whose instances run but did not become ready in time; they
// are left running (as PM2 does), and the error says so.
func notReady(name string, err error) error {
	return userErr("%s started but is not ready: %v (its instances keep running; see pmdaemon info %s)", name, err, name)
}

// checkLogs makes sure an instance's log files can be written, safely, before anything starts:
// a log directory others can write in, a symbolic link or anything but a regular file at a log
// path is refused, and rotation must be able to create files beside each log (see
// logs.Prepare). The files are handed to the rotation loop, which watches them from then on.
func (d *Daemon) checkLogs(a *app, s *slot) error {
	size, keep := a.cfg.LogLimits()
	for _, p := range []string{d.outLog(a, s), d.errLog(a, s)} {
		if err := logs.Prepare(p); err != nil {
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
