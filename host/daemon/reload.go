package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// reloadApp replaces a's instances gracefully. When the new ports do not overlap the old ones,
// all new instances start beside the old and the old stop only once every new one is ready.
// Otherwise instances are replaced one at a time, so the app never has none running.
func (d *Daemon) reloadApp(ctx context.Context, a *app, p *plan) error {
	if d.replacesInPlace(a, p) {
		return d.rollingReload(ctx, a, p)
	}
	old, fresh, err := d.launchBeside(a, p)
	if err != nil {
		return err
	}
	if err := d.waitAllReady(ctx, a, fresh, p.timeout); err != nil {
		d.dropBeside(a, p, old, fresh)
		return fmt.Errorf("reload of %s failed, the old instances keep running: %w", a.cfg.Name, err)
	}
	d.swapBeside(a, p, old, fresh)
	return nil
}

// replacesInPlace tells whether a's reload must replace instances one at a time: its new ports
// overlap the old, nothing runs to keep serving, or nothing new is wanted beside the old.
func (d *Daemon) replacesInPlace(a *app, p *plan) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	overlap, running := false, 0
	for _, s := range a.slots {
		if s.loop != nil {
			running++
		}
		if s.port > 0 && contains(p.ports, s.port) {
			overlap = true
		}
	}
	if a.cfg.Socket != config.SocketNone && running > 0 {
		// New instances go on the same sockets beside the old (ports it holds are its own),
		// which stop only once the new are ready: nothing is refused meanwhile.
		return false
	}
	return overlap || running == 0 || p.ports == nil && p.n <= len(a.slots)
}

// launchBeside reserves the new ports beside the old and starts the new instances there. They
// are transient until the swap: a daemon that dies meanwhile (kill -9) leaves a state file in
// which they are marked so, and the next daemon stops them and keeps the old ones, as if the
// reload had not begun. The override changes at the swap.
func (d *Daemon) launchBeside(a *app, p *plan) (old, fresh []*slot, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.reg.Reserve(a.cfg.Name, p.ports); err != nil {
		return nil, nil, err
	}
	old = append([]*slot(nil), a.slots...)
	fresh = make([]*slot, p.n)
	for i := range fresh {
		s := d.newSlot(a, i)
		s.wanted, s.transient = true, true
		if p.ports != nil {
			s.port = p.ports[i]
		}
		if i < len(old) {
			s.last.Restarts = old[i].state().Restarts + 1
			d.countRestart(a, old[i], causeRequested) // the new instance takes this id at the swap
		}
		fresh[i] = s
		d.launch(a, s, nil)
	}
	a.slots = append(old, fresh...)
	return old, fresh, nil
}

// dropBeside undoes launchBeside: the new instances stop and their ports go; the old, never
// stopped, keep theirs.
func (d *Daemon) dropBeside(a *app, p *plan, old, fresh []*slot) {
	d.stopSlots(fresh, true)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reg.Release(a.cfg.Name, p.ports)
	for _, s := range old {
		if s.port > 0 {
			if err := d.reg.Reserve(a.cfg.Name, []int{s.port}); err != nil {
				d.logger.Printf("reload of %s failed and %s[%d] cannot have its port back: %v", a.cfg.Name, a.cfg.Name, s.index, err)
			}
		}
	}
	a.slots = old
}

// swapBeside commits to the new instances, then stops the old. The commit is written before
// anything stops: from then a daemon that dies keeps the new ones and stops the old (now the
// transient ones) on its next start.
func (d *Daemon) swapBeside(a *app, p *plan, old, fresh []*slot) {
	d.mu.Lock()
	for _, s := range fresh {
		s.transient = false
	}
	for _, s := range old {
		s.transient = true
	}
	a.override = p.override
	d.persistLocked()
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
			if s.loop != nil {
				s.loop.SetID(s.id)
			}
		}
	}
	a.slots = fresh
}

// rollingReload replaces instances one by one on ports that may be the same as before. The
// order is chosen so that an instance's new port is free when it starts: with 3000-3002
// reloaded onto 3001-3003, instance 2 goes first (to 3003, freeing 3002), then 1, then 0.
func (d *Daemon) rollingReload(ctx context.Context, a *app, p *plan) error {
	d.mu.Lock()
	old := append([]*slot(nil), a.slots...)
	d.mu.Unlock()
	order, err := replaceOrder(old, p)
	if err != nil {
		return userErr("reload of %s onto %s: %v", a.cfg.Name, p.spec, err)
	}
	d.mu.Lock()
	if err = d.beginRollback(a); err != nil {
		a.rollback = nil
	}
	d.mu.Unlock()
	if err != nil {
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
		if err := ctx.Err(); err != nil {
			return fail(fmt.Errorf("reload of %s stopped before instance %d: the request ended: %w", a.cfg.Name, i, err))
		}
		if err := d.replaceOne(ctx, a, p, old, i); err != nil {
			return fail(err)
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

// replaceOne is one step of a rolling reload: instance i (old[i], or a new slot when the
// reload adds instances) is stopped, moved to its new port and started, and waited for. An
// error leaves the app for the caller to roll back.
func (d *Daemon) replaceOne(ctx context.Context, a *app, p *plan, old []*slot, i int) error {
	var s *slot
	if i < len(old) {
		s = old[i]
		d.stopSlots([]*slot{s}, false)
	}
	d.mu.Lock()
	if s == nil {
		s = d.newSlot(a, i)
		a.slots = append(a.slots, s)
	} else {
		s.index = i
		s.last.Restarts++
		d.countRestart(a, s, causeRequested)
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
			return err
		}
	}
	s.wanted = true
	d.mu.Unlock()
	launched, err := d.startSlot(a, s)
	if err != nil {
		return fmt.Errorf("reload of %s stopped at instance %d: %w", a.cfg.Name, i, err)
	}
	if !launched {
		return nil
	}
	if err := d.waitAllReady(ctx, a, []*slot{s}, p.timeout); err != nil {
		return fmt.Errorf("reload of %s stopped at instance %d: %w", a.cfg.Name, i, err)
	}
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
