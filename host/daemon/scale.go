package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// Scale answers `pmdaemon scale NAME N`: the app runs N instances from now on and its saved
// configuration says so (as PM2's scale does). Instances that run are left alone: scaling up
// starts new ones on ports from the app's spec (a range grows with them, an auto: range picks
// more, a shared socket's instances join its one port); scaling down stops and forgets the
// highest indexes. Steps: resolve (the new count and specs worked out and checked), allocate
// and launch or stop, wait, commit.
func (d *Daemon) Scale(ctx context.Context, req api.ScaleRequest) (*api.Scaled, error) {
	end, err := d.beginOp(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	a, sp, err := d.resolveScale(req)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	before := slotPorts(a)
	d.mu.Unlock()
	out := &api.Scaled{Added: []int{}, Removed: []int{}}
	switch {
	case sp.n < sp.from:
		out.Removed = d.scaleDown(a, sp)
	case sp.n > sp.from:
		out.Added, out.Warnings, err = d.scaleUp(ctx, a, sp)
	}
	d.mu.Lock()
	d.portsChanged(a.cfg.Name, before, slotPorts(a))
	d.commitLocked()
	out.Started = *started(a)
	d.mu.Unlock()
	if sp.cfg.Port != sp.oldPort {
		out.Spec = sp.cfg.Port
	}
	return out, err
}

// scalePlan is a scale worked out before anything is touched.
type scalePlan struct {
	from, n  int
	cfg      config.App // the saved configuration after the scale
	oldPort  string
	live     string // the live port spec after the scale
	override string
}

// resolveScale checks the request against the app as it is and works out its configuration
// after the scale: the instance count, and a range grown to hold it.
func (d *Daemon) resolveScale(req api.ScaleRequest) (*app, *scalePlan, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.apps[req.Name]
	if !ok {
		if req.Name != "" && strings.Trim(req.Name, "0123456789") == "" {
			return nil, nil, userErr("scale takes an app name, not an instance id (%s); see pmdaemon list", req.Name)
		}
		return nil, nil, &NotFoundError{Target: req.Name}
	}
	sp := &scalePlan{from: len(a.slots), n: req.Instances, cfg: *a.cfg, oldPort: a.cfg.Port, override: a.override}
	if sp.n > sp.from && !denseIndexes(a) {
		// New instances take the next indexes, and a range gives ports by index: with a gap
		// left by a delete by id, the two would disagree.
		return nil, nil, userErr("cannot scale %s up: an instance was deleted by id and its indexes have a gap; "+
			"pmdaemon restart %s renumbers them", req.Name, req.Name)
	}
	live, err := grownSpec(*a.cfg, a.liveSpec(), req.Instances)
	if err != nil {
		return nil, nil, err
	}
	sp.live = live
	if a.override != "" {
		sp.override = live
		// The saved spec grows too when it can, so that the next restart without the
		// override still fits the saved count; when it cannot, the count is what fails.
		if grown, err := grownSpec(*a.cfg, a.cfg.Port, req.Instances); err == nil {
			sp.cfg.Port = grown
		}
	} else {
		sp.cfg.Port = live
	}
	sp.cfg.Instances = req.Instances
	if err := sp.cfg.Validate(); err != nil {
		return nil, nil, userErr("cannot scale %s to %d: %v", req.Name, req.Instances, err)
	}
	return a, sp, nil
}

// grownSpec is spec made to hold n instances of cfg: a range START-END shorter than n grows to
// START-(START+n-1); a shared socket keeps its one port; an auto: range is left to the
// allocation (which says when it has no more free ports). A single port cannot hold more
// than one instance of its own.
func grownSpec(cfg config.App, spec string, n int) (string, error) {
	if spec == "" || cfg.Socket == config.SocketShared {
		return spec, nil
	}
	ps, err := ports.ParseSpec(spec)
	if err != nil {
		return "", &UserError{err.Error()}
	}
	switch {
	case ps.Kind == ports.Single && n > 1:
		return "", userErr("cannot scale %s to %d: its port spec is the single port %d; give it a range first "+
			"(pmdaemon restart %s --port %d-%d) or an auto: range", cfg.Name, n, ps.Start, cfg.Name, ps.Start, min(ps.Start+n-1, 65535))
	case ps.Kind == ports.Range && ps.Size() < n:
		if ps.Start+n-1 > 65535 {
			return "", userErr("cannot scale %s to %d: its range %s would have to grow to port %d, past 65535",
				cfg.Name, n, ps, ps.Start+n-1)
		}
		ps.End = ps.Start + n - 1
	}
	return ps.String(), nil
}

// denseIndexes reports whether a's instances have the indexes 0..len-1 in order; d.mu must be
// held.
func denseIndexes(a *app) bool {
	for i, s := range a.slots {
		if s.index != i {
			return false
		}
	}
	return true
}

// scaleDown stops and forgets the instances of the highest indexes, keeping n, and gives their
// ports back.
func (d *Daemon) scaleDown(a *app, sp *scalePlan) []int {
	d.mu.Lock()
	byIndex := append([]*slot(nil), a.slots...)
	slices.SortFunc(byIndex, func(x, y *slot) int { return x.index - y.index })
	gone := byIndex[sp.n:]
	d.mu.Unlock()
	d.stopSlots(gone, true)
	d.mu.Lock()
	defer d.mu.Unlock()
	removed := []int{}
	for _, s := range gone {
		removed = append(removed, s.id)
		d.forgetLocked(target{app: a, slot: s})
	}
	cfg := *a.cfg
	cfg.Instances = sp.n
	d.setConfig(a, cfg)
	return removed
}

// scaleUp allocates ports for the new instances (the running ones keep theirs), asks the
// starting hooks, then makes the slots, launches them and waits for them as a start does.
func (d *Daemon) scaleUp(ctx context.Context, a *app, sp *scalePlan) ([]int, []string, error) {
	for i := sp.from; i < sp.n; i++ {
		if err := d.checkLogs(&app{cfg: &sp.cfg}, &slot{index: i}); err != nil {
			return nil, nil, err
		}
	}
	d.mu.Lock()
	stopped := !slices.ContainsFunc(a.slots, func(s *slot) bool { return s.wanted })
	d.mu.Unlock()
	if stopped {
		// A stopped app stays stopped: its new instances are made stopped too, and get their
		// ports when it starts again, as its other instances do.
		fresh, err := d.launchAdded(a, sp, nil, false)
		return idsOf(fresh), nil, err
	}
	ps, warnings, err := d.allocateAdded(a, sp)
	if err != nil {
		return nil, warnings, err
	}
	fresh, err := d.launchAdded(a, sp, ps, true)
	if err != nil {
		return nil, warnings, err
	}
	added := idsOf(fresh)
	var errs []error
	for _, s := range fresh {
		if _, err := d.startSlot(a, s); err != nil {
			errs = append(errs, cannotStart(a, s, err))
		}
	}
	if err := d.waitSpawned(ctx, fresh); err != nil {
		d.logger.Printf("%s: %v", a.cfg.Name, err)
	}
	if err := errors.Join(errs...); err != nil {
		return added, warnings, err
	}
	wait, timeout := readiness(sp.cfg, false, 0)
	return added, warnings, notReady(a.cfg.Name, d.awaitReady(ctx, a, fresh, wait, timeout))
}

// allocateAdded picks the ports of the instances sp adds, keeping the running ones' ports, and
// asks the hooks whether the new instances may start on them. Nothing is reserved. d.mu must
// not be held.
func (d *Daemon) allocateAdded(a *app, sp *scalePlan) ([]int, []string, error) {
	d.mu.Lock()
	keep := slotPorts(a)
	next := d.nextID
	d.mu.Unlock()
	ps, err := d.pickPorts(a.cfg.Name, sp.live, sp.n, keep, holdOf(sp.cfg))
	if err != nil {
		return nil, nil, fmt.Errorf("cannot scale %s to %d: %w", a.cfg.Name, sp.n, err)
	}
	var plans []launchPlan
	for i := sp.from; i < sp.n; i++ {
		lp := launchPlan{index: i, id: next + i - sp.from}
		if ps != nil {
			lp.port = ps[i]
		}
		plans = append(plans, lp)
	}
	warnings, err := d.starting(a.cfg.Name, plans)
	return ps, warnings, err
}

// launchAdded reserves the new instances' ports, saves the configuration the scale leads to,
// and makes the new slots, wanted (to be launched) or stopped.
func (d *Daemon) launchAdded(a *app, sp *scalePlan, ps []int, wanted bool) ([]*slot, error) {
	if ps != nil {
		if _, err := d.holdNew(a.cfg.Name, ps[sp.from:]); err != nil {
			return nil, err // cannot happen: the ports were chosen under opMu
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setConfig(a, sp.cfg)
	a.override = sp.override
	var fresh []*slot
	for i := sp.from; i < sp.n; i++ {
		s := d.newSlot(a, i)
		s.wanted = wanted
		s.last = supervisor.State{Status: supervisor.Stopped}
		if ps != nil {
			s.port = ps[i]
		}
		a.slots = append(a.slots, s)
		fresh = append(fresh, s)
	}
	return fresh, nil
}

func idsOf(slots []*slot) []int {
	out := []int{}
	for _, s := range slots {
		out = append(out, s.id)
	}
	return out
}
