package daemon

import (
	"context"
	"errors"
	"syscall"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// Signal answers `pmdaemon signal SIG TARGET`: the signal goes to the main process of every
// running instance the target names (the process pmdaemon started, as PM2's sendSignal does),
// not to its process group or cgroup: an app that forwards signals to its workers does so
// itself. Steps: resolve the signal and the running processes, then send to each one that is
// still the process resolved. It changes no state, so there is no commit; it does not wait on
// the operation lock, so a signal reaches an app while a long stop of another app runs.
func (d *Daemon) Signal(_ context.Context, req api.SignalRequest) (*api.Signalled, error) {
	name, sig, procs, err := d.resolveSignal(req)
	if err != nil {
		return nil, err
	}
	out := &api.Signalled{Signal: name, Number: int(sig), Sent: []api.SignalledInstance{}}
	for _, p := range procs {
		if !supervisor.Alive(p.pid, p.start) {
			continue // it exited since the resolve; its loop restarts or ends it
		}
		if err := syscall.Kill(p.pid, sig); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				continue
			}
			return out, conflictErr("cannot send %s to instance %d of %s (pid %d): %v", name, p.id, p.app, p.pid, err)
		}
		out.Sent = append(out.Sent, api.SignalledInstance{ID: p.id, Name: p.app, Pid: p.pid})
	}
	if len(out.Sent) == 0 {
		return nil, conflictErr("no instance of %s runs: %s was sent to none", req.Target, name)
	}
	return out, nil
}

// resolveSignal checks the signal and finds the target's running processes.
func (d *Daemon) resolveSignal(req api.SignalRequest) (string, syscall.Signal, []runningProc, error) {
	name, sig, err := api.ParseSignal(req.Signal)
	if err != nil {
		return "", 0, nil, &UserError{err.Error()}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ts, err := d.resolve(req.Target)
	if err != nil {
		return "", 0, nil, err
	}
	procs := runningOf(ts)
	if len(procs) == 0 {
		return "", 0, nil, conflictErr("no instance of %s runs: there is no process to send %s to", req.Target, name)
	}
	return name, sig, procs, nil
}
