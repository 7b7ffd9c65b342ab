package daemon

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/pmdaemon/pmdaemon/host/cgroup"
	"github.com/pmdaemon/pmdaemon/host/procfs"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// Ownership (DESIGN §9): every process the daemon starts is written down before it can be
// lost. The record is made in the kernel before the spawn: the slot's cgroup directory (the
// process is cloned into it), or in process-group mode the PMDAEMON_UNIT marker in its
// environment. A daemon killed at any instant leaves nothing the next one cannot find: at
// start-up it takes back the processes its state file names, and kills every other process
// of the home (reconcile).

// unitEnv is the environment variable that marks every process of a slot.
const unitEnv = "PMDAEMON_UNIT"

// unitName is a slot's unit: the app and the id the slot was made with. Ids are unique in the
// daemon, while instance indexes repeat during a side-by-side reload.
func unitName(app string, id int) string { return app + "-" + strconv.Itoa(id) }

// newSlot makes slot index of a with the next id; d.mu must be held.
func (d *Daemon) newSlot(a *app, index int) *slot {
	s := &slot{id: d.nextID, index: index, unit: unitName(a.cfg.Name, d.nextID)}
	d.nextID++
	return s
}

// setupOwnership picks cgroup mode or the process-group fallback, and logs which.
func (d *Daemon) setupOwnership() {
	d.cg, d.cgReason = cgroup.Setup(d.paths.Home)
	if d.cg != nil {
		d.logger.Printf("process mode: cgroup (%s)", d.cg.Dir())
		return
	}
	d.logger.Printf("process mode: process-group, because %s; a child that leaves its process group "+
		"(setsid) escapes stop until the next daemon start", d.cgReason)
}

// processMode is what ping reports.
func (d *Daemon) processMode() (mode, root, reason string) {
	if d.cg != nil {
		return "cgroup", d.cg.Dir(), ""
	}
	return "process-group", "", d.cgReason
}

// cgroupOf is slot s's cgroup directory; "" in process-group mode.
func (d *Daemon) cgroupOf(s *slot) string {
	if d.cg == nil || s.unit == "" {
		return ""
	}
	return d.cg.Path(s.unit)
}

// owns reports whether the live process pid, recorded for s, is s's own: in cgroup mode it
// must be in s's cgroup. A process started by a daemon that ran without cgroups is moved in.
func (d *Daemon) owns(s *slot, pid int) bool {
	p := d.cgroupOf(s)
	if p == "" || cgroup.Contains(p, pid) {
		return true
	}
	if _, err := cgroup.Open(p); err == nil && cgroup.Move(p, pid) == nil {
		d.logger.Printf("moved pid %d into cgroup %s", pid, p)
		return true
	}
	return false
}

// clearSlot kills whatever is left in s's cgroup, before a fresh process is started for it.
func (d *Daemon) clearSlot(s *slot) {
	if p := d.cgroupOf(s); p != "" {
		if procs, _ := cgroup.Procs(p); len(procs) > 0 {
			d.logger.Printf("killing %d unrecorded process(es) of %s in %s", len(procs), s.unit, p)
		}
		if err := cgroup.KillAll(p, 2*time.Second); err != nil {
			d.logger.Printf("%v", err)
		}
	}
}

// dropUnit removes the cgroup of a slot that is no longer wanted.
func (d *Daemon) dropUnit(s *slot) {
	if d.cg != nil && s.unit != "" {
		if err := d.cg.Remove(s.unit); err != nil {
			d.logger.Printf("%v", err)
		}
	}
}

// reconcile kills every process of the home that no slot owns: cgroups of units the state
// file does not name (a spawn whose record the previous daemon never wrote), and in
// process-group mode every process carrying this home's marker that is not an adopted
// instance or one of its descendants. keep maps the units to leave alone to the pid taken
// back for them (0: none, everything in the unit goes). d.mu must be held.
func (d *Daemon) reconcile(keep map[string]int, spare map[string]bool) {
	if d.cg != nil {
		units, err := d.cg.Units()
		if err != nil {
			d.logger.Printf("reading %s: %v", d.cg.Dir(), err)
			return
		}
		for _, u := range units {
			if _, ok := keep[u]; ok || spare[u] {
				continue
			}
			d.logger.Printf("removing cgroup %s: no instance of the state file owns it", d.cg.Path(u))
			if err := d.cg.Remove(u); err != nil {
				d.logger.Printf("%v", err)
			}
		}
		return
	}
	home := []byte("PMDAEMON_HOME=" + d.paths.Home + "\x00")
	marker := []byte(unitEnv + "=")
	self := os.Getpid()
	var killed []int
	ents, err := os.ReadDir("/proc")
	if err != nil {
		// Nothing can be scanned: strays of an earlier daemon, if any, live on. Say so.
		d.logger.Printf("cannot look for processes of this home no instance owns: %v", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		env = append(env, 0)
		if !bytes.Contains(env, home) {
			continue
		}
		unit := envValue(env, marker)
		if unit == "" || spare[unit] {
			continue
		}
		if root := keep[unit]; root > 0 && descends(pid, root) {
			continue
		}
		d.logger.Printf("killing pid %d (unit %s): no instance of the state file owns it", pid, unit)
		if st, err := procfs.Read(pid); err == nil && st.Pgid == pid {
			d.killOrLog(-pid)
		}
		d.killOrLog(pid)
		killed = append(killed, pid)
	}
	// Wait for them to be gone: one may hold a port an instance is about to start on.
	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range killed {
		for procfs.Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// envValue finds KEY=value (key given with its '=') in a NUL-separated environment.
func envValue(env, key []byte) string {
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, key); ok {
			return string(v)
		}
	}
	return ""
}

// descends reports whether pid is root, in root's process group, or a descendant of root.
func descends(pid, root int) bool {
	for p, hops := pid, 0; p > 1 && hops < 64; hops++ {
		if p == root {
			return true
		}
		st, err := procfs.Read(p)
		if err != nil {
			return false
		}
		if st.Pgid == root {
			return true
		}
		p = st.Ppid
	}
	return false
}

// adoptable reports whether s's recorded process still runs and is s's own.
func (d *Daemon) adoptable(s *slot) bool {
	return supervisor.Alive(s.last.Pid, s.last.PidStart) && d.owns(s, s.last.Pid)
}

// killOrLog SIGKILLs pid (a process group when negative); a failure other than the process
// being gone already is logged.
func (d *Daemon) killOrLog(pid int) {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		d.logger.Printf("cannot kill %d: %v", pid, err)
	}
}
