package daemon

import (
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/state"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// requestSave asks the writer loop for a save; many requests collapse into one write.
func (d *Daemon) requestSave() {
	select {
	case d.saveCh <- struct{}{}:
	default:
	}
}

func (d *Daemon) saveLoop() {
	defer d.wg.Done()
	rest := time.NewTimer(maxSaveRest)
	rest.Stop()
	defer rest.Stop()
	for {
		select {
		case <-d.quit:
			return
		case <-d.saveCh:
			// The snapshot is taken under mu, the file written without it: with thousands
			// of apps a write takes tens of milliseconds, and every operation, list and
			// instance change would wait for it.
			began := time.Now()
			d.mu.Lock()
			snap, gen := d.snapshotLocked(), d.nextSaveGenLocked()
			d.mu.Unlock()
			err := d.writeState(snap, gen)
			took := time.Since(began)
			d.mu.Lock()
			if err != nil && d.savedGen.Load() > gen {
				err = nil // a newer snapshot was written since
			}
			d.recordSaveLocked(err)
			d.mu.Unlock()
			rest.Reset(min(max(savePace*took, minSaveRest), maxSaveRest))
			select {
			case <-d.quit:
				return
			case <-rest.C:
			}
		}
	}
}

// savePace and maxSaveRest bound the share of the daemon's time spent writing state on
// instance changes to about 1/(1+savePace), and how long a change waits to be written.
// minSaveRest bounds this loop's writes to ten a second however quick each is: a write begins
// with a snapshot of every app under d.mu, which with thousands of apps running held up the
// starts of a batch (200 writes in a 5 s batch of starts beside 4000 apps, once writes were
// quick). An operation's own write (persistLocked) does not wait for it.
const (
	savePace    = 4
	minSaveRest = 100 * time.Millisecond
	maxSaveRest = 500 * time.Millisecond
)

// The state file is written after every change. A failed write keeps the previous file intact
// (WriteAtomic); the change stands in memory, the failure is logged once, reported by every
// ping until a write succeeds, and the write is retried every second (recordSaveLocked). So
// most callers go on whatever the write does (persistLocked); the few that must not (a rolling
// reload's rollback record) use saveLocked and see the error too.

// persistLocked writes the state file; its outcome is handled by recordSaveLocked. d.mu must
// be held.
func (d *Daemon) persistLocked() {
	d.saveLocked()
}

// saveLocked is persistLocked for a caller that must know whether the write succeeded. d.mu
// must be held.
func (d *Daemon) saveLocked() error {
	err := d.writeState(d.snapshotLocked(), d.nextSaveGenLocked())
	d.recordSaveLocked(err)
	return err
}

// setConfig gives a its config cfg. Every change of an app's config goes through here: the
// new number tells the state writer to encode it again. The numbers are unique among all
// apps, so an app deleted and made again under its name between two writes is not taken for
// the old one. d.mu must be held for an app in d.apps.
func (d *Daemon) setConfig(a *app, cfg config.App) {
	a.cfg, a.cfgGen = &cfg, d.cfgGens.Add(1)
}

// nextSaveGenLocked numbers a snapshot just taken; d.mu must be held.
func (d *Daemon) nextSaveGenLocked() uint64 {
	d.saveGen++
	return d.saveGen
}

// writeState writes snapshot number gen to the state file, unless a newer one was written
// already. Writes go one at a time (saveMu, always taken after mu when both are held).
func (d *Daemon) writeState(snap *state.File, gen uint64) error {
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	if gen <= d.savedGen.Load() {
		return nil
	}
	err := d.stateWriter.Write(snap)
	if err == nil {
		d.savedGen.Store(gen)
	}
	return err
}

// snapshotLocked is the state file's content now; d.mu must be held.
func (d *Daemon) snapshotLocked() *state.File {
	// Sized up front and filled in place: this runs under d.mu, and appending thousands of
	// apps (600 bytes each) to a growing slice was most of its time beside 4000 running apps.
	f := &state.File{Version: state.Version, NextID: d.nextID, Apps: make([]state.App, len(d.order))}
	for i, name := range d.order {
		a := d.apps[name]
		sa := &f.Apps[i]
		*sa = state.App{Config: a.cfg, ConfigGen: a.cfgGen, PortOverride: a.override, CreatedAt: a.created,
			Rollback: a.rollback, Sockets: a.socketInodes(), Instances: make([]state.Instance, 0, len(a.slots))}
		for _, s := range a.slots {
			st := s.state()
			if s.restarting && (st.Status == supervisor.Stopping || st.Status == supervisor.Stopped) {
				st.Status = supervisor.WaitingRestart
			}
			sa.Instances = append(sa.Instances, state.Instance{
				ID: s.id, Index: s.index, Port: s.port, Wanted: s.wanted, Pid: st.Pid, PidStart: st.PidStart,
				StartedAt: st.StartedAt, Restarts: st.Restarts, Unstable: st.Unstable, Status: string(st.Status),
				Transient: s.transient, Unit: s.unit,
			})
		}
	}
	for _, p := range d.plugins.Specs() {
		f.Plugins = append(f.Plugins, state.Plugin(p))
	}
	return f
}

// recordSaveLocked handles a state write's outcome: a failure is logged (once), kept for ping
// (problems) and retried; a success after failures is logged and clears the problem. d.mu
// must be held.
func (d *Daemon) recordSaveLocked(err error) {
	if err == nil {
		if d.saveErr != "" {
			d.logger.Printf("state saved again after: %s", d.saveErr)
			d.saveErr = ""
		}
		return
	}
	if d.saveErr == "" {
		d.logger.Printf("saving state: %v (retrying every second)", err)
	}
	d.saveErr = err.Error()
	// The change lives in memory only until a write succeeds: try again soon, so that a disk
	// that was full loses nothing once it has room.
	if !d.saveRetry {
		d.saveRetry = true
		time.AfterFunc(time.Second, func() {
			d.mu.Lock()
			d.saveRetry = false
			d.mu.Unlock()
			d.requestSave()
		})
	}
}

// problems are the conditions ping reports on every call while they last.
func (d *Daemon) problems() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.saveErr == "" {
		return nil
	}
	return []string{"the daemon cannot write its state file (" + d.saveErr + "); changes are kept in memory " +
		"and written as soon as it can. Until then a daemon crash would lose them."}
}
