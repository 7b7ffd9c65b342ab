package daemon

import (
	"slices"

	"github.com/pmdaemon/pmdaemon/host/state"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// A rolling reload replaces instances one at a time, so for a while some run on the new ports
// and some on the old. Before it starts, the app's previous override and ports are written
// down (app.rollback, saved); a reload that fails puts the app back as it was (rollBack), and so
// does the next daemon when the one running it died (rollBackInterrupted). Either way the app
// ends as it was before or as the reload wanted, never in between.

// beginRollback records what a runs as before a rolling reload; d.mu must be held.
func (d *Daemon) beginRollback(a *app) error {
	rb := &state.Rollback{Override: a.override, Ports: make([]int, len(a.slots))}
	for _, s := range a.slots {
		if s.index < len(rb.Ports) {
			rb.Ports[s.index] = s.port
		}
	}
	a.rollback = rb
	return d.saveLocked()
}

// rollBack puts a back as its rollback record says: every instance whose port differs (or that
// the reload added) is stopped, and the app's instances run again on their old ports. opMu
// must be held; d.mu must not be.
func (d *Daemon) rollBack(a *app) {
	d.mu.Lock()
	rb := a.rollback
	if rb == nil {
		d.mu.Unlock()
		return
	}
	var wrong []*slot
	for _, s := range a.slots {
		if s.index >= len(rb.Ports) || s.port != rb.Ports[s.index] || s.loop == nil {
			wrong = append(wrong, s)
		}
	}
	d.mu.Unlock()
	d.stopSlots(wrong, false)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.restoreShape(a)
	for _, s := range a.slots {
		if s.loop == nil {
			s.wanted = true
			s.last.Restarts++
			d.countRestart(a, s, causeRollback)
			d.launch(a, s, nil)
		}
	}
	d.logger.Printf("reload of %s rolled back: instances on %v again", a.cfg.Name, rb.Ports)
}

// restoreShape makes a's slots and registry entries those of its rollback record, and clears
// the record: slots the reload added go, slots it removed come back (with new ids), and every
// slot not running where it ran before is set to start there. d.mu must be held.
func (d *Daemon) restoreShape(a *app) {
	rb := a.rollback
	a.slots = slices.DeleteFunc(a.slots, func(s *slot) bool {
		if s.index < len(rb.Ports) {
			return false
		}
		d.dropUnit(s)
		return true
	})
	for i := range rb.Ports {
		if !slices.ContainsFunc(a.slots, func(s *slot) bool { return s.index == i }) {
			s := d.newSlot(a, i)
			s.wanted = true
			s.last.Status = supervisor.WaitingRestart
			a.slots = append(a.slots, s)
		}
	}
	slices.SortStableFunc(a.slots, func(x, y *slot) int { return x.index - y.index })
	d.reg.ReleaseApp(a.cfg.Name)
	for _, s := range a.slots {
		if s.port != rb.Ports[s.index] {
			// Not where it ran before the reload: its process (if any) is not taken back.
			s.port = rb.Ports[s.index]
			s.last.Pid, s.last.PidStart = 0, 0
			if s.loop == nil && s.last.Status != supervisor.Errored {
				s.last.Status = supervisor.WaitingRestart
			}
		}
		if s.port > 0 {
			if err := d.reg.Reserve(a.cfg.Name, []int{s.port}); err != nil {
				d.logger.Printf("rollback of %s[%d]: %v", a.cfg.Name, s.index, err)
			}
		}
	}
	a.override = rb.Override
	a.rollback = nil
}

// rollBackInterrupted puts back an app whose rolling reload the previous daemon did not
// finish, before Restore takes its processes back. d.mu must be held.
func (d *Daemon) rollBackInterrupted(a *app) {
	if a.rollback == nil {
		return
	}
	d.logger.Printf("a rolling reload of %s was cut short by the daemon's death; putting it back on %v", a.cfg.Name, a.rollback.Ports)
	d.restoreShape(a)
	for _, s := range a.slots {
		s.wanted = true
	}
	// Registry entries are made again by Restore.
	d.reg.ReleaseApp(a.cfg.Name)
}
