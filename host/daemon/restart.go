package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// A restart or reload runs as a start does (start.go), over every app the target names:
// resolve the targets, plan every app (overrides checked, ports allocated and held, hooks
// asked) before anything is touched, then replace each app's instances, wait for them, and
// commit. A bad override or a veto anywhere changes nothing anywhere.

// plan is a restart or reload of one app worked out before anything is touched.
type plan struct {
	spec     string // live spec after the operation
	override string
	ports    []int // per instance; nil without ports
	n        int
	wait     bool          // restart: wait for readiness (reload always does)
	timeout  time.Duration // how long readiness may take
	keep     []int         // ports the instances keep (spec unchanged); nil when all are new
}

// appNow is what planning needs of an app as it runs.
type appNow struct {
	cfg      config.App
	liveSpec string
	override string
	held     []int // each slot's port, in slot order
}

// planOverrides works out the spec, override and instance count req asks of the app now
// runs as, and which ports its instances keep. It changes nothing and allocates nothing.
func planOverrides(now appNow, req api.TargetRequest, reload bool) (*plan, error) {
	p := &plan{spec: now.liveSpec, override: now.override, n: len(now.held)}
	p.wait, p.timeout = readiness(now.cfg, req.WaitReady, req.WaitTimeout.Std())
	changed := false
	if req.Port != "" {
		ps, err := ports.ParseSpec(req.Port)
		if err != nil {
			return nil, &UserError{err.Error()}
		}
		p.spec, changed = ps.String(), ps.String() != p.spec
		p.override = ps.String()
		if cs, err := ports.ParseSpec(now.cfg.Port); err == nil && cs.String() == ps.String() {
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
	if !changed {
		p.keep = now.held
	}
	return p, nil
}

// appNowOf reads what planning needs of a; d.mu must be held.
func appNowOf(a *app) appNow {
	now := appNow{cfg: *a.cfg, liveSpec: a.liveSpec(), override: a.override}
	for _, s := range a.slots {
		now.held = append(now.held, s.port)
	}
	return now
}

// Restart stops and starts the target's instances. With --port or --instances (whole apps only)
// the live ports or count change and the saved configuration stays as it was. A client that
// goes away ends the wait for readiness; the instances restarted keep running.
func (d *Daemon) Restart(ctx context.Context, req api.TargetRequest) (*api.Result, error) {
	return d.restartOrReload(ctx, req, false)
}

// Reload is a graceful restart: new instances are up and past min_uptime before old ones stop.
// A reload whose client goes away before it is done is rolled back, as one whose new instances
// do not become ready is.
func (d *Daemon) Reload(ctx context.Context, req api.TargetRequest) (*api.Result, error) {
	return d.restartOrReload(ctx, req, true)
}

func (d *Daemon) restartOrReload(ctx context.Context, req api.TargetRequest, reload bool) (*api.Result, error) {
	end, err := d.beginBatchOp(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	ts, err := d.resolveRestart(req)
	if err != nil {
		return nil, err
	}
	plans, err := d.planAll(ts, req, reload)
	if err != nil {
		return nil, err
	}
	res := &api.Result{Apps: []api.Started{}, Warnings: plans.warnings}
	for i, t := range ts {
		err := d.replaceTarget(ctx, t, plans.of[i], req, reload)
		if err := d.waitSpawned(ctx, t.slots()); err != nil {
			d.logger.Printf("%s: %v", t.app.cfg.Name, err) // the readiness error, if any, says more
		}
		res.Apps = append(res.Apps, d.commitReplaced(t, plans.before[i]))
		if err != nil {
			plans.release(i + 1)
			d.mu.Lock()
			d.releaseUnusedLocked(t.app)
			d.mu.Unlock()
			return res, err
		}
	}
	return res, nil
}

// resolveRestart finds the targets of a restart or reload; --port and --instances need one
// whole app.
func (d *Daemon) resolveRestart(req api.TargetRequest) ([]target, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ts, err := d.resolve(req.Target)
	if err == nil && (req.Port != "" || req.Instances != 0) && (len(ts) != 1 || ts[0].slot != nil) {
		err = userErr("--port and --instances apply to one app: name the app, not an id or all")
	}
	return ts, err
}

// plans are the plans of every target of an operation, with the ports each holds until it
// runs, the hooks' warnings, and each app's ports before the operation.
type plans struct {
	d        *Daemon
	of       []*plan // nil for a target that is one instance
	held     []heldPorts
	before   [][]int
	warnings []string
}

type heldPorts struct {
	app   string
	ports []int
}

// release gives back the ports held for the plans from..end, which will not run.
func (ps *plans) release(from int) {
	ps.d.mu.Lock()
	defer ps.d.mu.Unlock()
	for _, h := range ps.held[from:] {
		ps.d.reg.Release(h.app, h.ports)
	}
}

// planAll plans every target and asks the hooks, before anything is touched. Each plan's new
// ports are held for its app while the next apps are planned, so that two stopped apps of one
// auto: range are not both given its lowest free port. On an error nothing is held.
func (d *Daemon) planAll(ts []target, req api.TargetRequest, reload bool) (*plans, error) {
	out := &plans{d: d, of: make([]*plan, len(ts)), held: make([]heldPorts, len(ts)), before: make([][]int, len(ts))}
	for i, t := range ts {
		d.mu.Lock()
		out.before[i] = slotPorts(t.app)
		d.mu.Unlock()
		var err error
		var warnings []string
		if t.slot == nil {
			out.of[i], warnings, err = d.planApp(t.app, req, reload)
		} else {
			warnings, err = d.admitSlot(t)
		}
		out.warnings = append(out.warnings, warnings...)
		if err == nil && out.of[i] != nil {
			out.held[i], err = d.holdNew(t.app.cfg.Name, out.of[i].ports)
		}
		if err != nil {
			out.release(0)
			return nil, err
		}
	}
	return out, nil
}

// planApp plans a restart or reload of the whole app a: overrides, then allocation (ports and
// hooks). d.mu must not be held.
func (d *Daemon) planApp(a *app, req api.TargetRequest, reload bool) (*plan, []string, error) {
	d.mu.Lock()
	now := appNowOf(a)
	d.mu.Unlock()
	p, err := planOverrides(now, req, reload)
	if err != nil {
		return nil, nil, err
	}
	var warnings []string
	p.ports, warnings, err = d.allocate(a, now.cfg.Name, p.spec, p.n, p.keep, holdOf(now.cfg))
	if err != nil {
		return nil, warnings, err
	}
	return p, warnings, nil
}

// admitSlot asks the hooks whether the one instance t names may start again on its port.
func (d *Daemon) admitSlot(t target) ([]string, error) {
	d.mu.Lock()
	lp := []launchPlan{{index: t.slot.index, id: t.slot.id, port: t.slot.port}}
	d.mu.Unlock()
	return d.starting(t.app.cfg.Name, lp)
}

// holdNew reserves for app those of ps that nobody holds yet (its own kept ports are held
// already), and returns what it reserved.
func (d *Daemon) holdNew(app string, ps []int) (heldPorts, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var fresh []int
	for _, p := range ps {
		if _, taken := d.reg.Holder(p); !taken {
			fresh = append(fresh, p)
		}
	}
	if err := d.reg.Reserve(app, fresh); err != nil {
		return heldPorts{}, err
	}
	return heldPorts{app, fresh}, nil
}

// replaceTarget runs one target's plan: one instance restarted, or a whole app reloaded or
// restarted (and waited for).
func (d *Daemon) replaceTarget(ctx context.Context, t target, p *plan, req api.TargetRequest, reload bool) error {
	switch {
	case t.slot != nil:
		d.mu.Lock()
		wait, timeout := readiness(*t.app.cfg, req.WaitReady || reload, req.WaitTimeout.Std())
		d.mu.Unlock()
		return d.restartSlot(ctx, t.app, t.slot, wait, timeout)
	case reload:
		return d.reloadApp(ctx, t.app, p)
	}
	if err := d.restartApp(t.app, p); err != nil {
		return err
	}
	return d.awaitReady(ctx, t.app, d.slotsOf(t.app), p.wait, p.timeout)
}

// commitReplaced ends one target's restart or reload: the hooks hear of changed ports, the
// state is written (or marked for the batch's write), and the app's row is returned.
func (d *Daemon) commitReplaced(t target, before []int) api.Started {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.portsChanged(t.app.cfg.Name, before, slotPorts(t.app))
	d.commitLocked()
	return *started(t.app)
}

// restartSlot restarts one instance on its port (or a fresh one if it had none).
func (d *Daemon) restartSlot(ctx context.Context, a *app, s *slot, wait bool, timeout time.Duration) error {
	d.stopSlots([]*slot{s}, false)
	if err := d.givePort(a, s); err != nil {
		return err
	}
	d.mu.Lock()
	s.wanted = true
	s.last.Restarts++
	d.countRestart(a, s, causeRequested)
	d.mu.Unlock()
	launched, err := d.startSlot(a, s)
	if err != nil {
		return cannotStart(a, s, err)
	}
	if !wait || !launched {
		return nil // an app whose command cannot run is errored with the reason already
	}
	return d.awaitReady(ctx, a, []*slot{s}, wait, timeout)
}

// givePort gives s, stopped, a port when it has none and a's spec has ports (it was stopped
// alone, and gave its port back).
func (d *Daemon) givePort(a *app, s *slot) error {
	d.mu.Lock()
	needPort := s.port == 0 && a.liveSpec() != ""
	d.mu.Unlock()
	if !needPort {
		return nil
	}
	port, err := d.slotPort(a, s)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.reg.Reserve(a.cfg.Name, []int{port}); err != nil {
		return err
	}
	s.port = port
	return nil
}

// restartApp stops all of a's instances, then starts p.n of them on p.ports. An instance whose
// port a stranger took meanwhile does not start (see portReady); the error names it.
func (d *Daemon) restartApp(a *app, p *plan) error {
	d.stopSlots(d.slotsOf(a), false)
	slots, err := d.reshape(a, p)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range slots {
		if _, err := d.startSlot(a, s); err != nil {
			errs = append(errs, cannotStart(a, s, err))
		}
	}
	return errors.Join(errs...)
}

// reshape gives a's stopped app the plan's ports, override and instance count, and returns
// its slots, each wanted and counted as restarted.
func (d *Daemon) reshape(a *app, p *plan) ([]*slot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reg.ReleaseApp(a.cfg.Name)
	if err := d.reg.Reserve(a.cfg.Name, p.ports); err != nil {
		return nil, err // cannot happen: the plan was made under opMu
	}
	d.closeStaleListeners(a)
	a.override = p.override
	d.resize(a, p.n)
	for i, s := range a.slots {
		s.index = i // after a delete by id, indexes are made dense again
		s.port = 0
		if p.ports != nil {
			s.port = p.ports[i]
		}
		s.wanted = true
		s.last.Restarts++
		d.countRestart(a, s, causeRequested)
	}
	return append([]*slot(nil), a.slots...), nil
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
