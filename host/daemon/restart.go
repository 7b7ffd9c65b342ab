package daemon

import (
	"errors"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

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
	p.wait, p.timeout = readiness(a.cfg, req.WaitReady, req.WaitTimeout.Std())
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
			if err := d.reg.Reserve(t.app.cfg.Name, fresh); err != nil {
				d.mu.Unlock()
				release(0)
				return nil, err
			}
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
			wait, timeout := readiness(t.app.cfg, req.WaitReady || reload, req.WaitTimeout.Std())
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
		err = d.reg.Reserve(a.cfg.Name, []int{port})
		if err == nil {
			s.port = port
		}
		d.mu.Unlock()
		if err != nil {
			return err
		}
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
