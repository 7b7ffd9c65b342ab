package daemon

import (
	"encoding/json"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/pluginhost"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// livePorts tracks the ports of every running instance, per app, from the instances' own
// reports, so a hook event can say where the app answers right now without taking d.mu.
type livePorts struct {
	mu   sync.Mutex
	byID map[string]map[int]int // app -> instance id -> port
}

func (l *livePorts) set(app string, id, port int, up bool) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID = map[string]map[int]int{}
	}
	m := l.byID[app]
	if m == nil {
		m = map[int]int{}
		l.byID[app] = m
	}
	if up {
		m[id] = port
	} else {
		delete(m, id)
	}
	return l.portsLocked(app)
}

func (l *livePorts) ports(app string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.portsLocked(app)
}

func (l *livePorts) portsLocked(app string) []int {
	out := []int{}
	for _, p := range l.byID[app] {
		if p > 0 && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// instanceChanged is every instance's notify callback: persist, and tell the hooks. It runs on
// the instance's goroutine and never blocks.
func (d *Daemon) instanceChanged(c supervisor.Change) {
	d.requestSave()
	// One lock over the app_ports snapshots and the queueing, so that hooks see the events of
	// two instances in the order their snapshots were taken.
	d.emitMu.Lock()
	defer d.emitMu.Unlock()
	evs := d.lifecycleEvents(c)
	for _, ev := range evs {
		d.plugins.Emit(ev)
	}
	d.observe(c, evs)
}

// lifecycleEvents translates one state change into the events hooks see.
func (d *Daemon) lifecycleEvents(c supervisor.Change) []sdk.Event {
	o, n, sp := c.Old, c.New, c.Spec
	ev := func(kind sdk.EventKind, pid int, up bool) sdk.Event {
		e := sdk.Event{
			Kind: kind, App: sp.App, Instance: sp.Index, ID: c.ID, Pid: pid,
			Ports: portList(sp.Port), ExitCode: n.ExitCode, Time: time.Now(), Reason: n.Reason,
		}
		e.AppPorts = d.live.set(sp.App, sp.ID, sp.Port, up)
		return e
	}
	var out []sdk.Event
	switch {
	case n.Status == supervisor.Online && (o.Status != supervisor.Online || o.Pid != n.Pid):
		out = append(out, ev(sdk.Started, n.Pid, true))
	case n.Status == supervisor.Stopping && o.Status != supervisor.Stopping:
		out = append(out, ev(sdk.Stopping, o.Pid, false))
	case o.Status == supervisor.Stopping && n.Status != supervisor.Stopping:
		out = append(out, ev(sdk.Stopped, 0, false))
	case o.Status == supervisor.Online && n.Status != supervisor.Online:
		kind := sdk.Exited
		if n.ExitCode != 0 {
			kind = sdk.Crashed
		}
		out = append(out, ev(kind, o.Pid, false))
	}
	if n.Status == supervisor.Errored && o.Status != supervisor.Errored {
		out = append(out, ev(sdk.Errored, 0, false))
	}
	return out
}

func portList(p int) []int {
	if p > 0 {
		return []int{p}
	}
	return []int{}
}

// portsChanged tells the hooks that app's assigned ports changed from before to now.
func (d *Daemon) portsChanged(name string, before, now []int) {
	b, n := sortedCopy(before), sortedCopy(now)
	if slices.Equal(b, n) {
		return
	}
	d.emitMu.Lock()
	defer d.emitMu.Unlock()
	ev := sdk.Event{
		Kind: sdk.PortsChanged, App: name, Instance: -1, ID: -1, Ports: n, AppPorts: d.live.ports(name), Time: time.Now(),
	}
	d.plugins.Emit(ev)
	d.events.publish(hookEvent(ev))
}

func sortedCopy(xs []int) []int {
	out := []int{}
	for _, x := range xs {
		if x > 0 {
			out = append(out, x)
		}
	}
	sort.Ints(out)
	return out
}

// slotPorts lists the ports a's slots hold; d.mu must be held.
func slotPorts(a *app) []int {
	var out []int
	for _, s := range a.slots {
		out = append(out, s.port)
	}
	return out
}

// AddPlugin registers a plugin: the binary is checked, started, asked what it implements and
// given its config; only then is it saved.
func (d *Daemon) AddPlugin(req api.PluginAddRequest) (*api.PluginRow, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	p, err := d.probePlugin(req, false)
	if err != nil {
		return nil, err
	}
	if err := d.plugins.Add(p); err != nil {
		p.Kill()
		return nil, &UserError{err.Error()}
	}
	d.mu.Lock()
	d.persistLocked()
	d.mu.Unlock()
	return d.pluginRow(req.Name), nil
}

func (d *Daemon) probePlugin(req api.PluginAddRequest, replace bool) (*pluginhost.Plugin, error) {
	timeout, err := parsePluginTimeout(req.Timeout)
	if err != nil {
		return nil, err
	}
	if _, ok := d.plugins.Get(req.Name); ok && !replace {
		return nil, conflictErr("a plugin named '%s' is already registered; remove it first or choose another name", req.Name)
	}
	p, err := d.plugins.Probe(pluginhost.AddRequest{Name: req.Name, Path: req.Path, Config: req.Config, Timeout: timeout})
	if err != nil {
		return nil, &UserError{err.Error()}
	}
	return p, nil
}

func parsePluginTimeout(t api.Duration) (time.Duration, error) {
	if t < 0 {
		return 0, userErr("plugin timeout %q is not a positive duration such as 2s or 500ms", t.String())
	}
	return t.Std(), nil
}

// EnsurePlugin is an ecosystem file's plugin declaration: registered when absent, left alone
// when registered with the same binary and config, replaced when it differs and update is set.
func (d *Daemon) EnsurePlugin(req api.PluginAddRequest) (*api.PluginEnsured, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	cur, exists := d.plugins.Get(req.Name)
	if exists {
		spec := cur.Spec()
		sum, _ := pluginhost.Hash(req.Path)
		timeout, err := parsePluginTimeout(req.Timeout)
		if err != nil {
			return nil, err
		}
		same := spec.Path == req.Path && spec.SHA256 == sum && jsonEqual(spec.Config, req.Config) && spec.Timeout == timeout
		if same || !req.Update {
			return &api.PluginEnsured{Plugin: *d.pluginRow(req.Name), Existed: true, Differs: !same}, nil
		}
	}
	p, err := d.probePlugin(req, exists)
	if err != nil {
		return nil, err
	}
	if exists {
		d.plugins.Replace(p)
	} else if err := d.plugins.Add(p); err != nil {
		p.Kill()
		return nil, &UserError{err.Error()}
	}
	d.mu.Lock()
	d.persistLocked()
	d.mu.Unlock()
	return &api.PluginEnsured{Plugin: *d.pluginRow(req.Name), Existed: exists, Updated: exists}, nil
}

// TrustPlugin pins a plugin's binary as it is now (after an upgrade), keeping its config,
// timeout and place in the chain; the binary is started and configured first.
func (d *Daemon) TrustPlugin(name string) (*api.PluginRow, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	cur, ok := d.plugins.Get(name)
	if !ok {
		return nil, &NotFoundError{Target: name, What: "plugin"}
	}
	spec := cur.Spec()
	req := api.PluginAddRequest{Name: name, Path: spec.Path, Config: spec.Config}
	if spec.Timeout > 0 {
		req.Timeout = api.Duration(spec.Timeout)
	}
	p, err := d.probePlugin(req, true)
	if err != nil {
		return nil, err
	}
	d.plugins.Replace(p)
	d.mu.Lock()
	d.persistLocked()
	d.mu.Unlock()
	return d.pluginRow(name), nil
}

// RemovePlugin unregisters a plugin and stops it.
func (d *Daemon) RemovePlugin(name string) error {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if err := d.plugins.Remove(name); err != nil {
		return &NotFoundError{Target: name, What: "plugin"}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.persistLocked()
	return nil
}

// Plugins lists the registered plugins.
func (d *Daemon) Plugins() []api.PluginRow { return d.plugins.List() }

func (d *Daemon) pluginRow(name string) *api.PluginRow {
	for _, r := range d.Plugins() {
		if r.Name == name {
			return &r
		}
	}
	return nil
}

// jsonEqual compares two JSON documents by value (key order and spacing aside).
func jsonEqual(a, b []byte) bool { return canonicalJSON(a) == canonicalJSON(b) }

func canonicalJSON(b []byte) string {
	if len(b) == 0 {
		return "null"
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}
