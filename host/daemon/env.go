package daemon

import (
	"bytes"
	"os"
	"strconv"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// Env answers `pmdaemon env ID`: the environment instance id's process runs with, read from
// /proc/PID/environ (what the process started with; a process that changes its own
// environment later is not seen). Steps: resolve the id to a running process, read it, and
// check the process is still the one resolved. Nothing is changed, so no commit.
func (d *Daemon) Env(id string) (*api.InstanceEnv, error) {
	p, err := d.resolveEnv(id)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/environ")
	if err != nil || !supervisor.Alive(p.pid, p.start) {
		// It ended between the resolve and the read, or its pid is another process's now.
		return nil, conflictErr("instance %d of %s exited while its environment was read; run pmdaemon env %d again", p.id, p.app, p.id)
	}
	out := &api.InstanceEnv{ID: p.id, Name: p.app, Pid: p.pid, Env: []string{}}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if len(kv) > 0 {
			out.Env = append(out.Env, string(kv))
		}
	}
	return out, nil
}

// resolveEnv finds the running process of instance id (checked by checkInstanceID): it must
// name an instance, and the instance must run.
func (d *Daemon) resolveEnv(id string) (runningProc, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ts, err := d.resolve(id)
	if err != nil {
		return runningProc{}, &NotFoundError{Target: id, What: "instance"}
	}
	procs := runningOf(ts)
	if len(procs) == 0 {
		return runningProc{}, conflictErr("instance %s of %s is %s and has no process to read the environment of; start it first",
			id, ts[0].app.cfg.Name, ts[0].slot.state().Status)
	}
	return procs[0], nil
}
