package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/logs"
	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/host/state"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// UserError is a request the daemon refuses; the API answers it with 4xx.
type UserError struct{ msg string }

func (e *UserError) Error() string { return e.msg }

func userErr(format string, a ...any) error { return &UserError{fmt.Sprintf(format, a...)} }

// NotFoundError is a target that names nothing.
type NotFoundError struct {
	Target string
	What   string // "process" when empty
}

func (e *NotFoundError) Error() string {
	what := e.What
	if what == "" {
		what = "process"
	}
	return fmt.Sprintf("%s '%s' not found", what, e.Target)
}

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

// releaseUnusedLocked frees the ports a holds that none of its instances is on: what a failed
// operation had planned. d.mu must be held.
func (d *Daemon) releaseUnusedLocked(a *app) {
	used := map[int]bool{}
	for _, s := range a.slots {
		used[s.port] = true
	}
	var free []int
	for _, p := range d.reg.PortsOf(a.cfg.Name) {
		if !used[p] {
			free = append(free, p)
		}
	}
	d.reg.Release(a.cfg.Name, free)
}

// beginBatch makes the operations until the returned end share one state write, done by end.
// opMu must be held throughout.
func (d *Daemon) beginBatch() (end func()) {
	d.batch = true
	return func() {
		d.batch = false
		if d.batchDirty {
			d.batchDirty = false
			d.mu.Lock()
			d.saveLocked()
			d.mu.Unlock()
		}
	}
}

// commitLocked saves the state after a change, or, inside a batch, marks it for the save at
// the batch's end. d.mu and opMu must be held.
func (d *Daemon) commitLocked() {
	if d.batch {
		d.batchDirty = true
		return
	}
	d.saveLocked()
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
			return d.update(a, req.App, req.WaitTimeout)
		case "":
		default:
			return nil, userErr("if_exists must be \"\", \"keep\" or \"update\", got %q", req.IfExists)
		}
	}
	return d.startLocked(req.App, req.WaitTimeout)
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
		return nil, userErr("process '%s' already exists; restart it, or delete it first", cfg.Name)
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

// target is what a TARGET names: whole apps, or one slot of one app.
type target struct {
	app  *app
	slot *slot // nil: the whole app
}

// resolve finds TARGET: an app name, an instance id (decimal digits only), or "all". The
// target is taken exactly as given, never trimmed: "all " or " 3" name an app of that name or
// nothing (app names cannot have such spaces, be numbers or be "all"). d.mu must be held.
func (d *Daemon) resolve(t string) ([]target, error) {
	if t == "" {
		return nil, userErr("no target given: name an app, an instance id, or all")
	}
	if t == "all" {
		var out []target
		for _, name := range d.order {
			out = append(out, target{app: d.apps[name]})
		}
		return out, nil
	}
	if a, ok := d.apps[t]; ok {
		return []target{{app: a}}, nil
	}
	if id, err := strconv.Atoi(t); err == nil && strings.Trim(t, "0123456789") == "" {
		for _, name := range d.order {
			a := d.apps[name]
			for _, s := range a.slots {
				if s.id == id {
					return []target{{app: a, slot: s}}, nil
				}
			}
		}
	}
	return nil, &NotFoundError{Target: t}
}

func (t target) slots() []*slot {
	if t.slot != nil {
		return []*slot{t.slot}
	}
	return t.app.slots
}

// Stop stops the target's instances; they give their ports back and stay listed as stopped.
func (d *Daemon) Stop(req api.TargetRequest) (*api.Result, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	ts, err := d.resolve(req.Target)
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	res := &api.Result{Apps: []api.Started{}}
	for _, t := range ts {
		d.stopSlots(t.slots(), true)
		d.mu.Lock()
		for _, s := range t.slots() {
			d.reg.Release(t.app.cfg.Name, []int{s.port})
			s.port = 0
		}
		res.Apps = append(res.Apps, *started(t.app))
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.commitLocked()
	d.mu.Unlock()
	return res, nil
}

// Delete stops the target and forgets it.
func (d *Daemon) Delete(req api.TargetRequest) (*api.Result, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	ts, err := d.resolve(req.Target)
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	res := &api.Result{Apps: []api.Started{}}
	for _, t := range ts {
		d.stopSlots(t.slots(), true)
		d.mu.Lock()
		name := t.app.cfg.Name
		res.Apps = append(res.Apps, *started(t.app))
		if t.slot != nil {
			d.reg.Release(name, []int{t.slot.port})
			var keep []*slot
			for _, s := range t.app.slots {
				if s != t.slot {
					keep = append(keep, s)
				}
			}
			t.app.slots = keep
		}
		if t.slot == nil || len(t.app.slots) == 0 {
			d.reg.ReleaseApp(name)
			delete(d.apps, name)
			for i, n := range d.order {
				if n == name {
					d.order = append(d.order[:i:i], d.order[i+1:]...)
					break
				}
			}
		}
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.commitLocked()
	d.mu.Unlock()
	return res, nil
}

// plan is a restart or reload of one app worked out before anything is touched.
type plan struct {
	spec     string // live spec after the operation
	override string
	ports    []int // per instance; nil without ports
	n        int
	wait     bool          // restart: wait for readiness (reload always does)
	timeout  time.Duration // how long readiness may take
}

// planFor validates the overrides of req for app a and allocates the ports; d.mu must not be
// held. Nothing is changed, so a failed plan leaves the app exactly as it runs.
func (d *Daemon) planFor(a *app, req api.TargetRequest, reload bool) (*plan, error) {
	d.mu.Lock()
	p := &plan{spec: a.liveSpec(), override: a.override, n: len(a.slots)}
	p.wait, p.timeout = readiness(a.cfg, req.WaitReady, req.WaitTimeout)
	cfgPort := a.cfg.Port
	var held []int
	for _, s := range a.slots {
		held = append(held, s.port)
	}
	d.mu.Unlock()
	changed := false
	if req.Port != "" {
		ps, err := ports.ParseSpec(req.Port)
		if err != nil {
			return nil, &UserError{err.Error()}
		}
		p.spec, changed = ps.String(), ps.String() != p.spec
		p.override = ps.String()
		if cs, err := ports.ParseSpec(cfgPort); err == nil && cs.String() == ps.String() {
			p.override = "" // back to the saved configuration
		}
		if reload && req.Instances == 0 && ps.Kind == ports.Range {
			p.n = ps.Size()
		}
	}
	if req.Instances < 0 {
		return nil, userErr("instances must be at least 1, got %d", req.Instances)
	}
	if req.Instances > 0 {
		p.n = req.Instances
	}
	var keep []int
	if !changed {
		keep = held
	}
	var err error
	p.ports, err = d.pickPorts(a.cfg.Name, p.spec, p.n, keep)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Restart stops and starts the target's instances. With --port or --instances (whole apps only)
// the live ports or count change and the saved configuration stays as it was.
func (d *Daemon) Restart(req api.TargetRequest) (*api.Result, error) {
	return d.restartOrReload(req, false)
}

// Reload is a graceful restart: new instances are up and past min_uptime before old ones stop.
func (d *Daemon) Reload(req api.TargetRequest) (*api.Result, error) {
	return d.restartOrReload(req, true)
}

func (d *Daemon) restartOrReload(req api.TargetRequest, reload bool) (*api.Result, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	defer d.beginBatch()()
	defer d.plugins.Operation()() // a hook that hangs costs one timeout per operation, not per app
	d.mu.Lock()
	ts, err := d.resolve(req.Target)
	if err == nil && (req.Port != "" || req.Instances != 0) && (len(ts) != 1 || ts[0].slot != nil) {
		err = userErr("--port and --instances apply to one app: name the app, not an id or all")
	}
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// Plan every app first and ask the hooks, so that a bad override or a veto changes nothing
	// anywhere.
	// Each plan's new ports are held for its app while the next apps are planned, so that two
	// stopped apps of one auto: range are not both given its lowest free port.
	plans := make([]*plan, len(ts))
	var warnings []string
	type held struct {
		app   string
		ports []int
	}
	tentative := make([]held, len(ts))
	release := func(from int) { // the reservations of plans from..end, which will not run
		d.mu.Lock()
		for _, h := range tentative[from:] {
			d.reg.Release(h.app, h.ports)
		}
		d.mu.Unlock()
	}
	for i, t := range ts {
		var lp []launchPlan
		if t.slot == nil {
			if plans[i], err = d.planFor(t.app, req, reload); err != nil {
				release(0)
				return nil, err
			}
			d.mu.Lock()
			var fresh []int
			for _, p := range plans[i].ports {
				if _, taken := d.reg.Holder(p); !taken {
					fresh = append(fresh, p)
				}
			}
			d.reg.Reserve(t.app.cfg.Name, fresh)
			tentative[i] = held{t.app.cfg.Name, fresh}
			lp = d.launchPlans(t.app, plans[i].n, plans[i].ports)
			d.mu.Unlock()
		} else {
			d.mu.Lock()
			lp = []launchPlan{{index: t.slot.index, id: t.slot.id, port: t.slot.port}}
			d.mu.Unlock()
		}
		w, err := d.starting(t.app.cfg.Name, lp)
		warnings = append(warnings, w...)
		if err != nil {
			release(0)
			return nil, err
		}
	}
	res := &api.Result{Apps: []api.Started{}, Warnings: warnings}
	for i, t := range ts {
		d.mu.Lock()
		before := slotPorts(t.app)
		d.mu.Unlock()
		var err error
		switch {
		case t.slot != nil:
			d.mu.Lock()
			wait, timeout := readiness(t.app.cfg, req.WaitReady || reload, req.WaitTimeout)
			d.mu.Unlock()
			err = d.restartSlot(t.app, t.slot, wait, timeout)
		case reload:
			err = d.reloadApp(t.app, plans[i])
		default:
			err = d.restartApp(t.app, plans[i])
			if err == nil && plans[i].wait {
				d.waitSpawned(t.slots())
				d.mu.Lock()
				slots := append([]*slot(nil), t.app.slots...)
				d.mu.Unlock()
				err = waitAllReady(t.app, slots, plans[i].timeout)
			}
		}
		d.waitSpawned(t.slots())
		d.mu.Lock()
		d.portsChanged(t.app.cfg.Name, before, slotPorts(t.app))
		res.Apps = append(res.Apps, *started(t.app))
		d.commitLocked()
		d.mu.Unlock()
		if err != nil {
			release(i + 1)
			d.mu.Lock()
			d.releaseUnusedLocked(t.app)
			d.mu.Unlock()
			return res, err
		}
	}
	return res, nil
}

// restartSlot restarts one instance on its port (or a fresh one if it had none).
func (d *Daemon) restartSlot(a *app, s *slot, wait bool, timeout time.Duration) error {
	d.stopSlots([]*slot{s}, false)
	d.mu.Lock()
	needPort := s.port == 0 && a.liveSpec() != ""
	d.mu.Unlock()
	if needPort {
		port, err := d.slotPort(a, s)
		if err != nil {
			return err
		}
		d.mu.Lock()
		s.port = port
		d.reg.Reserve(a.cfg.Name, []int{s.port})
		d.mu.Unlock()
	}
	d.mu.Lock()
	s.wanted = true
	s.last.Restarts++
	d.mu.Unlock()
	if err := d.portReady(a, s); err != nil {
		return cannotStart(a, s, err)
	}
	d.mu.Lock()
	d.launch(a, s, nil)
	inst := s.inst
	d.mu.Unlock()
	if wait && inst != nil {
		return waitReady(a, inst, timeout)
	}
	return nil
}

// slotPort picks a port for one instance of a whose other instances keep theirs: the index's
// port of a range, the single port, or a free port of an auto range that the app's other
// instances do not hold. d.mu must not be held.
func (d *Daemon) slotPort(a *app, s *slot) (int, error) {
	d.mu.Lock()
	spec, index, keep := a.liveSpec(), s.index, []int{}
	for _, o := range a.slots {
		if o != s && o.port > 0 {
			keep = append(keep, o.port)
		}
	}
	d.mu.Unlock()
	ps, err := ports.ParseSpec(spec)
	if err != nil {
		return 0, &UserError{err.Error()}
	}
	if ps.Kind != ports.Auto {
		// Positions of a fixed spec are the instances' indexes.
		if index >= ps.Size() {
			return 0, userErr("instance %d of %s has no port in %s", index, a.cfg.Name, ps)
		}
		got, err := d.pickPorts(a.cfg.Name, spec, index+1, fillFixed(ps, index))
		if err != nil {
			return 0, err
		}
		return got[index], nil
	}
	got, err := d.pickPorts(a.cfg.Name, spec, len(keep)+1, keep)
	if err != nil {
		return 0, err
	}
	return got[len(keep)], nil
}

// fillFixed keeps every position of a fixed spec before index, so only index's port is
// allocated (and checked).
func fillFixed(ps ports.Spec, index int) []int {
	keep := make([]int, index+1)
	for i := 0; i < index; i++ {
		keep[i] = ps.Start + i
	}
	return keep
}

// restartApp stops all of a's instances, then starts p.n of them on p.ports. An instance whose
// port a stranger took meanwhile does not start (see portReady); the error names it.
func (d *Daemon) restartApp(a *app, p *plan) error {
	d.stopSlots(a.slots, false)
	d.mu.Lock()
	d.reg.ReleaseApp(a.cfg.Name)
	if err := d.reg.Reserve(a.cfg.Name, p.ports); err != nil {
		d.mu.Unlock()
		return err // cannot happen: the plan was made under opMu
	}
	a.override = p.override
	d.resize(a, p.n)
	slots := append([]*slot(nil), a.slots...)
	for i, s := range slots {
		s.index = i // after a delete by id, indexes are made dense again
		s.port = 0
		if p.ports != nil {
			s.port = p.ports[i]
		}
		s.wanted = true
		s.last.Restarts++
	}
	d.mu.Unlock()
	var errs []error
	for _, s := range slots {
		if err := d.portReady(a, s); err != nil {
			errs = append(errs, cannotStart(a, s, err))
			continue
		}
		d.mu.Lock()
		d.launch(a, s, nil)
		d.mu.Unlock()
	}
	return errors.Join(errs...)
}

// resize grows or shrinks a's slots to n; removed slots must already be stopped.
func (d *Daemon) resize(a *app, n int) {
	for len(a.slots) < n {
		s := d.newSlot(a, len(a.slots))
		s.last = supervisor.State{Status: supervisor.Stopped}
		a.slots = append(a.slots, s)
	}
	a.slots = a.slots[:n]
}

// reloadApp replaces a's instances gracefully. When the new ports do not overlap the old ones,
// all new instances start beside the old and the old stop only once every new one is ready.
// Otherwise instances are replaced one at a time, so the app never has none running.
func (d *Daemon) reloadApp(a *app, p *plan) error {
	d.mu.Lock()
	old := append([]*slot(nil), a.slots...)
	overlap := false
	running := 0
	for _, s := range old {
		if s.inst != nil {
			running++
		}
		for _, np := range p.ports {
			if s.port > 0 && s.port == np {
				overlap = true
			}
		}
	}
	if overlap || running == 0 || p.ports == nil && p.n <= len(old) {
		d.mu.Unlock()
		return d.rollingReload(a, p)
	}
	// Side by side: reserve the new ports beside the old, start, wait, then swap.
	if err := d.reg.Reserve(a.cfg.Name, p.ports); err != nil {
		d.mu.Unlock()
		return err
	}
	// The new instances are transient until the swap: a daemon that dies meanwhile (kill -9)
	// leaves a state file in which they are marked so, and the next daemon stops them and
	// keeps the old ones, as if the reload had not begun. The override changes at the swap.
	fresh := make([]*slot, p.n)
	for i := range fresh {
		s := d.newSlot(a, i)
		s.wanted, s.transient = true, true
		if p.ports != nil {
			s.port = p.ports[i]
		}
		if i < len(old) {
			s.last.Restarts = old[i].state().Restarts + 1
		}
		fresh[i] = s
		d.launch(a, s, nil)
	}
	a.slots = append(old, fresh...)
	d.mu.Unlock()

	if err := waitAllReady(a, fresh, p.timeout); err != nil {
		d.stopSlots(fresh, true)
		d.mu.Lock()
		d.reg.Release(a.cfg.Name, p.ports)
		for _, s := range old {
			if s.port > 0 {
				d.reg.Reserve(a.cfg.Name, []int{s.port})
			}
		}
		a.slots = old
		d.mu.Unlock()
		return fmt.Errorf("reload of %s failed, the old instances keep running: %w", a.cfg.Name, err)
	}
	// Commit to the new instances before stopping the old: from here a daemon that dies keeps
	// the new ones and stops the old (now the transient ones) on its next start.
	d.mu.Lock()
	for _, s := range fresh {
		s.transient = false
	}
	for _, s := range old {
		s.transient = true
	}
	a.override = p.override
	d.saveLocked()
	d.mu.Unlock()
	// Hooks (a load balancer's, say) learn of the new instances before the old ones go.
	d.plugins.Flush()
	d.stopSlots(old, true)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range old {
		if s.port > 0 && !contains(p.ports, s.port) {
			d.reg.Release(a.cfg.Name, []int{s.port})
		}
	}
	// The new instances take over the old ids, so scripts that name ids keep working.
	for i, s := range fresh {
		if i < len(old) {
			s.id = old[i].id
			if s.inst != nil {
				s.inst.SetID(s.id)
			}
		}
	}
	a.slots = fresh
	return nil
}

// rollingReload replaces instances one by one on ports that may be the same as before. The
// order is chosen so that an instance's new port is free when it starts: with 3000-3002
// reloaded onto 3001-3003, instance 2 goes first (to 3003, freeing 3002), then 1, then 0.
func (d *Daemon) rollingReload(a *app, p *plan) error {
	d.mu.Lock()
	old := append([]*slot(nil), a.slots...)
	d.mu.Unlock()
	order, err := replaceOrder(old, p)
	if err != nil {
		return userErr("reload of %s onto %s: %v", a.cfg.Name, p.spec, err)
	}
	d.mu.Lock()
	err = d.beginRollback(a)
	d.mu.Unlock()
	if err != nil {
		d.mu.Lock()
		a.rollback = nil
		d.mu.Unlock()
		return fmt.Errorf("reload of %s not begun: its rollback record cannot be written: %w", a.cfg.Name, err)
	}
	fail := func(err error) error {
		d.rollBack(a)
		return fmt.Errorf("%w; the reload was rolled back and %s runs as before", err, a.cfg.Name)
	}
	var extra []*slot
	if p.n < len(old) {
		extra = old[p.n:]
	}
	stopExtra := func() {
		d.stopSlots(extra, true)
		d.mu.Lock()
		for _, s := range extra {
			d.reg.Release(a.cfg.Name, []int{s.port})
		}
		a.slots = slices.DeleteFunc(a.slots, func(s *slot) bool { return slices.Contains(extra, s) })
		d.mu.Unlock()
		extra = nil
	}
	// Instances that go away are stopped first when one of their ports is wanted, else last
	// (so the app keeps its capacity while the others are replaced).
	for _, s := range extra {
		if s.port > 0 && slices.Contains(p.ports, s.port) {
			stopExtra()
			break
		}
	}
	for _, i := range order {
		d.mu.Lock()
		var s *slot
		if i < len(old) {
			s = old[i]
		}
		d.mu.Unlock()
		if s != nil {
			d.stopSlots([]*slot{s}, false)
		}
		d.mu.Lock()
		if s == nil {
			s = d.newSlot(a, i)
			a.slots = append(a.slots, s)
		} else {
			s.index = i
			s.last.Restarts++
		}
		newPort := 0
		if p.ports != nil {
			newPort = p.ports[i]
		}
		if s.port != newPort {
			d.reg.Release(a.cfg.Name, []int{s.port})
		}
		s.port = newPort
		if newPort > 0 {
			if err := d.reg.Reserve(a.cfg.Name, []int{newPort}); err != nil {
				d.mu.Unlock()
				return fail(err)
			}
		}
		s.wanted = true
		d.mu.Unlock()
		if err := d.portReady(a, s); err != nil {
			return fail(fmt.Errorf("reload of %s stopped at instance %d: %w", a.cfg.Name, i, err))
		}
		d.mu.Lock()
		d.launch(a, s, nil)
		inst := s.inst
		d.mu.Unlock()
		if inst != nil {
			if err := waitReady(a, inst, p.timeout); err != nil {
				return fail(fmt.Errorf("reload of %s stopped at instance %d: %w", a.cfg.Name, i, err))
			}
		}
	}
	if extra != nil {
		stopExtra()
	}
	d.mu.Lock()
	a.rollback = nil
	a.override = p.override
	sort.SliceStable(a.slots, func(i, j int) bool { return a.slots[i].index < a.slots[j].index })
	d.mu.Unlock()
	return nil
}

// replaceOrder orders the instance indexes 0..p.n-1 so that each one's new port is no longer
// held by another old instance when its turn comes. Ports that would have to swap between
// instances have no such order.
func replaceOrder(old []*slot, p *plan) ([]int, error) {
	holder := map[int]int{} // port -> index of the old instance still on it
	for i, s := range old {
		if i < p.n && s.port > 0 {
			holder[s.port] = i
		}
	}
	done := make([]bool, p.n)
	var order []int
	for len(order) < p.n {
		progress := false
		for i := 0; i < p.n; i++ {
			if done[i] {
				continue
			}
			target := 0
			if p.ports != nil {
				target = p.ports[i]
			}
			if h, held := holder[target]; target > 0 && held && h != i {
				continue
			}
			done[i], progress = true, true
			order = append(order, i)
			if i < len(old) && holder[old[i].port] == i {
				delete(holder, old[i].port)
			}
		}
		if !progress {
			return nil, errors.New("instances would have to swap ports, which cannot be done one at a time; " +
				"restart the app instead, or reload onto ports it does not use")
		}
	}
	return order, nil
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// waitReady waits until inst is ready: healthy when the app has a health check, else online
// for the app's min_uptime. It fails when the instance exits or timeout passes.
func waitReady(a *app, inst *supervisor.Instance, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	name, index := a.cfg.Name, inst.Spec().Index
	checked := inst.Spec().Health != nil
	for {
		st := inst.State()
		switch st.Status {
		case supervisor.Online:
			if checked && st.Health == supervisor.HealthHealthy {
				return nil
			}
			if !checked && time.Since(st.StartedAt) >= a.cfg.MinUptime {
				return nil
			}
		case supervisor.Errored, supervisor.Stopped, supervisor.WaitingRestart:
			why := st.Reason
			if why == "" {
				why = fmt.Sprintf("exit code %d", st.ExitCode)
			}
			return fmt.Errorf("instance %d of %s did not stay up (%s)", index, name, why)
		}
		if time.Now().After(deadline) {
			if checked {
				last := st.HealthError
				if last == "" {
					last = "no check has answered yet"
				}
				return fmt.Errorf("instance %d of %s was not healthy within %s (last check: %s)", index, name, timeout, last)
			}
			return fmt.Errorf("instance %d of %s was not up for min_uptime %s within %s", index, name, a.cfg.MinUptime, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitAllReady(a *app, slots []*slot, timeout time.Duration) error {
	errs := make([]error, len(slots))
	var wg sync.WaitGroup
	for i, s := range slots {
		if s.inst == nil {
			errs[i] = fmt.Errorf("instance %d of %s could not start: %s", s.index, a.cfg.Name, s.last.Reason)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = waitReady(a, s.inst, timeout)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readiness is how long an operation waits for readiness, and whether a start or restart
// waits at all (a reload always does).
func readiness(cfg config.App, wait bool, timeout time.Duration) (bool, time.Duration) {
	if timeout <= 0 {
		timeout = cfg.Waiting()
	}
	return wait || cfg.WaitReady, timeout
}

// List returns one row per instance, in creation order.
func (d *Daemon) List() []api.Instance {
	d.freshMetrics()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []api.Instance{}
	for _, name := range d.order {
		a := d.apps[name]
		for _, s := range a.slots {
			out = append(out, d.row(a, s))
		}
	}
	return out
}

func (d *Daemon) row(a *app, s *slot) api.Instance {
	st := s.state()
	r := api.Instance{
		ID: s.id, Name: a.cfg.Name, Instance: s.index, Status: string(st.Status), Pid: st.Pid,
		Restarts: st.Restarts, Reason: st.Reason, StartedAt: st.StartedAt,
		OutLog: d.outLog(a, s), ErrLog: d.errLog(a, s), Cgroup: d.cgroupOf(s),
	}
	if s.port > 0 {
		p := s.port
		r.Port = &p
	}
	if st.Pid > 0 {
		m := d.sampler.Get(s.id)
		r.CPU, r.Memory = m.CPU, m.Memory
		r.UptimeMS = time.Since(st.StartedAt).Milliseconds()
		r.Health, r.HealthError = st.Health, st.HealthError
	}
	return r
}

// Info describes the app a target names (for an id, the app it belongs to).
func (d *Daemon) Info(t string) (*api.App, error) {
	d.freshMetrics()
	d.mu.Lock()
	defer d.mu.Unlock()
	ts, err := d.resolve(t)
	if err != nil {
		return nil, err
	}
	if len(ts) != 1 {
		return nil, userErr("info takes one app name or instance id, not all")
	}
	a := ts[0].app
	out := &api.App{
		Name: a.cfg.Name, Config: a.cfg, Command: a.argv, PortSpec: a.cfg.Port, LivePortSpec: a.liveSpec(),
		PortOverride: a.override != "", Ports: []int{}, CreatedAt: a.created, InstancesCount: len(a.slots),
	}
	for _, s := range a.slots {
		out.Instances = append(out.Instances, d.row(a, s))
		if s.port > 0 {
			out.Ports = append(out.Ports, s.port)
		}
	}
	return out, nil
}

// Save writes every app's saved configuration to dump.json.
func (d *Daemon) Save() (string, error) {
	d.mu.Lock()
	dump := state.Dump{Apps: []config.App{}}
	for _, name := range d.order {
		dump.Apps = append(dump.Apps, d.apps[name].cfg)
	}
	d.mu.Unlock()
	b, err := json.MarshalIndent(dump, "", "  ")
	if err != nil {
		return "", err
	}
	if err := state.WriteAtomic(d.paths.Dump(), b, 0o600); err != nil {
		return "", err
	}
	return d.paths.Dump(), nil
}

// Resurrect starts every app of dump.json that is not running, with its saved configuration.
func (d *Daemon) Resurrect() (*api.Result, error) {
	dump, err := state.LoadDump(d.paths.Dump())
	if err != nil {
		return nil, &UserError{err.Error()}
	}
	res := &api.Result{Apps: []api.Started{}}
	var errs []error
	// The whole resurrect is one operation: an app is looked up and started under opMu, so a
	// delete cannot slip in between and have a deleted app brought back unlisted.
	d.opMu.Lock()
	defer d.opMu.Unlock()
	defer d.beginBatch()()
	defer d.plugins.Operation()() // a hook that hangs costs one timeout per operation, not per app
	for _, cfg := range dump.Apps {
		d.mu.Lock()
		a, exists := d.apps[cfg.Name]
		idle := exists
		if exists {
			for _, s := range a.slots {
				if s.wanted {
					idle = false
				}
			}
		}
		d.mu.Unlock()
		var st *api.Started
		var err error
		switch {
		case !exists:
			st, err = d.startLocked(cfg, 0)
		case idle:
			// The dump's config is the saved one; any runtime override ends here.
			st, err = d.update(a, cfg, 0)
		default:
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res.Apps = append(res.Apps, *st)
	}
	sort.Slice(res.Apps, func(i, j int) bool { return res.Apps[i].Name < res.Apps[j].Name })
	return res, errors.Join(errs...)
}

// PortsAssigned returns the registry.
func (d *Daemon) PortsAssigned() map[int]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reg.Assigned()
}

// PortFree tells whether a new app could get port now.
func (d *Daemon) PortFree(port int) api.PortFree {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := api.PortFree{Port: port}
	if port < 1 || port > 65535 {
		out.Reason = fmt.Sprintf("port %d is out of range (1-65535)", port)
		return out
	}
	if err := ports.CheckFixed("", []int{port}, d.reg, d.prober); err != nil {
		out.Reason = err.Error()
		return out
	}
	out.Free = true
	return out
}
