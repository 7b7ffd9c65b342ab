package daemon

import (
	"syscall"
	"time"

	"github.com/pmdaemon/pmdaemon/host/cgroup"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// orphan is a process of an interrupted reload, to be stopped.
type orphan struct {
	app   string
	pid   int
	start uint64
	kill  time.Duration
	unit  string
}

// Restore brings every wanted instance back: a process still running from an earlier daemon
// (same pid and start time, in the slot's cgroup) is taken back, any other is started afresh
// on its old port. Before anything starts, every process of the home that no slot owns is
// killed (reconcile), so nothing runs twice and nothing runs unlisted.
func (d *Daemon) Restore() {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	// First decide, for every slot, whether its process is taken back; then kill everything
	// else; only then start anything, so that no fresh process is mistaken for a stray.
	keep := map[string]int{}   // unit -> the pid it keeps (0: none)
	spare := map[string]bool{} // units of an unfinished reload, stopped gracefully
	d.stopOrphans(keep, spare)
	adopt := d.decideAdoption(keep)
	d.reconcile(keep, spare)
	d.clearUnadopted(adopt)
	// Every listener is taken back before anything starts: an instance that died while no
	// daemon watched would otherwise bind its shared port anew and find its sibling on it.
	for _, a := range d.apps {
		for _, s := range a.slots {
			if adopt[s] != nil {
				d.recoverListener(a, s)
			}
		}
	}
	d.startRestored(adopt)
	for _, a := range d.apps {
		a.inodes = nil // taken back, or not to be
	}
	d.closeUnheldLocked()
	d.persistLocked()
}

// stopOrphans stops the new instances of a reload the previous daemon did not finish, noting
// their units in spare (cgroup mode) or the pid that drains in keep. d.mu must be held.
func (d *Daemon) stopOrphans(keep map[string]int, spare map[string]bool) {
	for _, o := range d.orphans {
		if d.cg != nil {
			spare[o.unit] = true
		} else if supervisor.Alive(o.pid, o.start) {
			keep[o.unit] = o.pid // its recorded process drains; any other process of it goes
		}
		d.stopOrphan(o)
	}
	d.orphans = nil
}

// decideAdoption resolves every app's command, rolls back a reload cut short, and decides
// which slots' processes are taken back; every unit's kept pid goes in keep. d.mu must be
// held.
func (d *Daemon) decideAdoption(keep map[string]int) map[*slot]*supervisor.Adopt {
	adopt := map[*slot]*supervisor.Adopt{}
	for _, name := range d.order {
		a := d.apps[name]
		a.argv, a.argvErr = a.cfg.Argv(pathOf(a.cfg.Env))
		d.rollBackInterrupted(a)
		for _, s := range a.slots {
			st := s.last.Status
			keep[s.unit] = 0
			if !s.wanted || st == supervisor.Errored || st == supervisor.Stopped || !d.adoptable(s) {
				continue
			}
			adopt[s] = &supervisor.Adopt{Pid: s.last.Pid, PidStart: s.last.PidStart, StartedAt: s.last.StartedAt}
			keep[s.unit] = s.last.Pid
		}
	}
	return adopt
}

// clearUnadopted empties every slot whose process is not taken back before any starts: a
// process of one slot may still hold the port another slot is to start on (a reload cut
// short). d.mu must be held.
func (d *Daemon) clearUnadopted(adopt map[*slot]*supervisor.Adopt) {
	for _, name := range d.order {
		for _, s := range d.apps[name].slots {
			if adopt[s] == nil {
				d.clearSlot(s)
			}
		}
	}
}

// startRestored reserves every wanted slot's port and takes back or starts its process; one
// that had finished or given up stays as it was. d.mu must be held.
func (d *Daemon) startRestored(adopt map[*slot]*supervisor.Adopt) {
	for _, name := range d.order {
		a := d.apps[name]
		for _, s := range a.slots {
			if !s.wanted {
				continue
			}
			if s.port > 0 {
				if err := d.reg.Reserve(name, []int{s.port}); err != nil {
					d.logger.Printf("restore %s[%d]: %v", name, s.index, err)
				}
			}
			if st := s.last.Status; st == supervisor.Errored || st == supervisor.Stopped {
				// It had given up (crash loop) or finished (autorestart off) before the daemon
				// went down; a restart of the daemon does not run it again. It keeps its ports.
				s.last.Pid, s.last.PidStart = 0, 0
				continue
			}
			if ad := adopt[s]; ad != nil {
				d.logger.Printf("took back %s[%d] pid %d", name, s.index, s.last.Pid)
				s.carry = s.last.Unstable
				d.launch(a, s, ad)
				continue
			}
			// It died while no daemon watched, was waiting for its restart, or was being
			// spawned when the daemon died: starting it again is a restart like any other.
			if s.last.Pid > 0 || s.last.Status == supervisor.WaitingRestart {
				s.last.Restarts++
				d.countRestart(a, s, causeRestore)
			}
			s.carry = s.last.Unstable
			d.mu.Unlock() // portReady takes it; nothing else changes the apps meanwhile (opMu)
			err := d.portReady(a, s)
			d.mu.Lock()
			if err != nil {
				continue // errored, with the reason
			}
			d.launch(a, s, nil)
		}
	}
}

// stopOrphan stops, in the background, the processes of a reload the previous daemon did not
// finish, as a stop would: SIGTERM, kill timeout, SIGKILL.
func (d *Daemon) stopOrphan(o orphan) {
	if p := d.cgroupOf(&slot{unit: o.unit}); p != "" {
		if cgroup.Populated(p) {
			d.logger.Printf("stopping %s of %s: a new instance of a reload the previous daemon did not finish", o.unit, o.app)
		}
		go func() {
			cgroup.Signal(p, syscall.SIGTERM)
			if !cgroup.WaitEmpty(p, time.Now().Add(o.kill)) {
				if err := cgroup.Kill(p); err != nil {
					d.logger.Printf("stopping %s of %s: %v", o.unit, o.app, err)
				}
			}
			d.dropUnit(&slot{unit: o.unit})
		}()
		return
	}
	if o.pid > 0 && supervisor.Alive(o.pid, o.start) {
		d.logger.Printf("stopping pid %d of %s: a new instance of a reload the previous daemon did not finish", o.pid, o.app)
		go supervisor.StopOrphan(o.pid, o.start, o.kill)
	}
}
