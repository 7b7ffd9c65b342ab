package daemon

import (
	"fmt"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// List returns one row per instance, in creation order.
func (d *Daemon) List() []api.Instance {
	d.freshMetrics()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []api.Instance{}
	for _, name := range d.order {
		a := d.apps[name]
		for _, s := range a.slots {
			out = append(out, d.row(a, s))
		}
	}
	return out
}

func (d *Daemon) row(a *app, s *slot) api.Instance {
	st := s.state()
	r := api.Instance{
		ID: s.id, Name: a.cfg.Name, Namespace: a.cfg.NamespaceOf(), Index: s.index, Status: string(st.Status), Pid: st.Pid,
		Restarts: st.Restarts, Reason: st.Reason, StartedAt: st.StartedAt,
		OutLog: d.outLog(a, s), ErrLog: d.errLog(a, s), Cgroup: d.cgroupOf(s),
		LogFile: d.combinedLog(a), LogTime: a.cfg.LogTimeLayout(),
	}
	if a.cfg.LogType == config.LogTypeJSON {
		r.LogType = config.LogTypeJSON
	}
	if s.port > 0 {
		p := s.port
		r.Port = &p
	}
	if st.Pid > 0 {
		m := d.sampler.Get(s.id)
		r.CPU, r.Memory = m.CPU, m.Memory
		r.UptimeMS = time.Since(st.StartedAt).Milliseconds()
		r.Health, r.HealthError = st.Health, st.HealthError
		r.StatusText, r.AppStopping = st.StatusText, st.AppStopping
	}
	if a.cfg.Socket != config.SocketNone {
		r.Socket = string(a.cfg.Socket)
	}
	r.Notice = s.notice
	if r.Notice == "" && a.cfg.Socket != config.SocketNone && s.port > 0 &&
		(st.Status == supervisor.Errored || st.Status == supervisor.WaitingRestart && st.Restarts > 0) {
		r.Notice = socketNotice(s.port)
	}
	return r
}

// Info describes the app a target names (for an id, the app it belongs to).
func (d *Daemon) Info(t string) (*api.App, error) {
	d.freshMetrics()
	d.mu.Lock()
	defer d.mu.Unlock()
	ts, err := d.resolve(t)
	if err != nil {
		return nil, err
	}
	if len(ts) != 1 {
		return nil, userErr("info takes one app name or instance id; %q names %d apps", t, len(ts))
	}
	a := ts[0].app
	out := &api.App{
		Name: a.cfg.Name, Config: api.NewAppConfig(*a.cfg), Command: a.argv, PortSpec: a.cfg.Port, LivePortSpec: a.liveSpec(),
		PortOverride: a.override != "", Ports: []int{}, CreatedAt: a.created, InstancesCount: len(a.slots),
	}
	for _, s := range a.slots {
		out.Instances = append(out.Instances, d.row(a, s))
		if s.port > 0 {
			out.Ports = append(out.Ports, s.port)
		}
	}
	return out, nil
}

// PortsAssigned returns the registry.
func (d *Daemon) PortsAssigned() map[int]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reg.Assigned()
}

// PortFree tells whether a new app could get port now.
func (d *Daemon) PortFree(port int) api.PortFree {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := api.PortFree{Port: port}
	if port < 1 || port > 65535 {
		out.Reason = fmt.Sprintf("port %d is out of range (1-65535)", port)
		return out
	}
	if err := ports.CheckFixed("", []int{port}, d.reg, d.prober); err != nil {
		out.Reason = err.Error()
		return out
	}
	out.Free = true
	return out
}
