package daemon

import (
	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// runningProc is the process of one running instance, named by pid and start time so that an
// action on it never reaches a later process that reused the pid.
type runningProc struct {
	app   string
	id    int
	pid   int
	start uint64
}

// runningOf lists the processes of ts's instances that have one; d.mu must be held.
func runningOf(ts []target) []runningProc {
	var out []runningProc
	for _, t := range ts {
		for _, s := range t.slots() {
			st := s.state()
			if st.Pid > 0 && st.Status != supervisor.Stopped {
				out = append(out, runningProc{app: t.app.cfg.Name, id: s.id, pid: st.Pid, start: st.PidStart})
			}
		}
	}
	return out
}

// startedOfTarget is the row of what t names: the whole app, or only the instance when t is
// one, so that `restart 3` or `reset 3` says it touched id 3 and not its siblings. d.mu must
// be held.
func startedOfTarget(t target) api.Started {
	st := *started(t.app)
	if t.slot != nil {
		st.IDs, st.Ports, st.Instances = []int{t.slot.id}, []int{}, 1
		if t.slot.port > 0 {
			st.Ports = []int{t.slot.port}
		}
	}
	return st
}
