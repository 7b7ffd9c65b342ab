package daemon

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// `pmdaemon update` replaces the daemon without touching an app: the old daemon writes its
// state (every instance with its pid and start time), stops supervising and exits; the CLI
// starts the installed binary, whose Restore takes the processes back by the adoption path a
// daemon killed with SIGKILL already relies on (same pid, start time and cgroup). PM2's update
// restarts every app instead.

// shuttingDown is what requests that would change something are told once the daemon stops
// its apps and exits (kill, SIGTERM).
const shuttingDown = "the daemon is shutting down and stopping its apps; run the command again once it has exited"

// handingOver is what requests that would change something are told during an update.
const handingOver = "the daemon is handing its apps over to a new daemon (pmdaemon update); try again in a moment"

// update answers POST /v1/update: the state is written first, so that a daemon that cannot
// write it refuses and goes on running rather than leave the next one blind.
func (s *apiServer) update(w http.ResponseWriter, r *http.Request) {
	if s.ctl.handover == nil || s.ctl.noHandover != "" {
		why := s.ctl.noHandover
		if why == "" {
			why = "this daemon cannot hand over: it does not run as 'pmdaemon daemon'"
		}
		writeAPIErr(w, &api.Error{Code: api.CodeUnavailable, Message: why})
		return
	}
	why := handingOver
	if !s.ctl.closing.CompareAndSwap(nil, &why) {
		writeAPIErr(w, &api.Error{Code: api.CodeUnavailable, Message: *s.ctl.closing.Load()})
		return
	}
	n, err := s.d.checkHandover()
	if err != nil {
		s.ctl.closing.CompareAndSwap(&why, nil) // open again, unless a shutdown began meanwhile
		reply(w, nil, err)
		return
	}
	reply(w, api.Handover{Pid: os.Getpid(), Version: api.Version, Instances: n}, nil)
	flush(w)
	s.ctl.handover()
}

// systemdService says why a daemon that systemd started as a service cannot hand over, or ""
// when it was not: systemd ends a service when its main process exits and kills what is left
// in its cgroup, the apps included. It must be asked while the daemon's parent is the one that
// started it. Its sign is the invocation id systemd gives every service, with a systemd
// manager (pid 1, or a user's manager) as the parent.
func systemdService() string {
	if os.Getenv("INVOCATION_ID") == "" {
		return ""
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(os.Getppid()) + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "systemd" {
		return ""
	}
	return "this daemon runs as a systemd service, and systemd kills a service's processes when its daemon exits: " +
		"update cannot keep the apps running there; restart the service instead (systemctl restart pmdaemon, which restarts the apps)"
}

// checkHandover writes the state as it is now and counts the running instances: an update
// goes ahead only if the next daemon will find them.
func (d *Daemon) checkHandover() (int, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.saveLocked(); err != nil {
		return 0, fmt.Errorf("cannot hand over: the state file cannot be written, so the next daemon would not find the apps: %w", err)
	}
	n := 0
	for _, a := range d.apps {
		for _, s := range a.slots {
			if s.state().Pid > 0 {
				n++
			}
		}
	}
	return n, nil
}

// Handover ends supervision without stopping any app process, for the next daemon to take
// them back. Operations are shut out first (opMu), then the background loops end (the memory
// limit loop would restart instances), then the state is written with every instance as it
// runs. It returns with opMu and mu held for good, so that nothing the daemon does after the
// write can change what it recorded; the caller must exit. A supervisor may still restart a
// process that dies in that last moment: the next daemon finds its recorded pid gone, empties
// the slot's cgroup and starts it again, so it never runs twice.
func (d *Daemon) Handover() error {
	d.opMu.Lock()
	close(d.quit)
	d.wg.Wait()
	d.closeNotify() // before d.mu: a datagram being handled takes it
	d.mu.Lock()
	err := d.saveLocked()
	// Plugins are the daemon's own children and end with it; the next daemon starts them.
	// They get no stop events: no app stopped.
	d.plugins.Close()
	return err
}
