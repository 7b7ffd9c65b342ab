package daemon

import (
	"slices"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// Allocation is the second step of every operation that starts instances (resolve, allocate,
// launch, wait ready, commit): the ports are chosen (through the allocator plugins' policy
// chain when there are any) and the hooks are asked whether the instances may start on them.
// Nothing is reserved or changed here; the caller reserves what it keeps.

// allocate picks n ports under spec for the app called name, keeping keep (see pickPorts),
// and asks the starting hooks about the instances a (nil for a new app) will have on them. It
// returns the ports and the hooks' warnings. opMu must be held; d.mu must not be.
func (d *Daemon) allocate(a *app, name, spec string, n int, keep []int, h sockHold) ([]int, []string, error) {
	ps, err := d.pickPorts(name, spec, n, keep, h)
	if err != nil {
		d.countAllocation(err, "pick")
		return nil, nil, err
	}
	d.mu.Lock()
	plans := d.launchPlans(a, n, ps)
	d.mu.Unlock()
	warnings, err := d.starting(name, plans)
	if err != nil {
		d.countAllocation(err, "vetoed")
		return nil, warnings, err
	}
	if spec != "" {
		d.countAllocation(nil, "")
	}
	return ps, warnings, nil
}

// maxPolicyCandidates bounds the candidates an allocator plugin sees for an auto: range, so that
// a request for auto:1-65535 does not probe every port of the machine first.
const maxPolicyCandidates = 4096

// maxSocketCandidates bounds them for a socket app, whose candidates are bound sockets until
// the operation ends.
const maxSocketCandidates = 256

// pickPorts allocates n ports under spec for the app called name (nil when there is no spec).
// keep holds ports that instances keep under an unchanged spec. Allocator plugins, when there
// are any, choose among the candidates; they are called without d.mu, which opMu makes safe:
// no other operation can change the registry meanwhile. For a socket app the probes bind the
// sockets (bindProber); the instances of a shared socket all get the one port. d.mu must not
// be held.
func (d *Daemon) pickPorts(name, spec string, n int, keep []int, h sockHold) ([]int, error) {
	if spec == "" {
		return nil, nil
	}
	if h.mode == config.SocketShared && n > 0 {
		// The port kept is any instance's that has one: a stopped instance has none (0).
		var one []int
		if i := slices.IndexFunc(keep, func(p int) bool { return p > 0 }); i >= 0 {
			one = keep[i : i+1]
		}
		ps, err := d.pickPorts(name, spec, 1, one, sockHold{mode: config.SocketInstance, bind: h.bind})
		if err != nil {
			return nil, err
		}
		return slices.Repeat(ps, n), nil
	}
	ps, err := ports.ParseSpec(spec)
	if err != nil {
		return nil, &UserError{err.Error()}
	}
	req := ports.Request{App: name, Instances: n, Spec: ps}
	policies := d.plugins.HasAllocators()
	limit := 0
	if policies {
		limit = maxPolicyCandidates
	}
	if h.mode != config.SocketNone {
		limit = min(limit, maxSocketCandidates)
	}
	d.mu.Lock()
	out, cands, err := ports.Prepare(req, keep, d.reg, d.proberFor(h), limit)
	// The registry's assignments are copied for policy plugins only: the built-in policy does
	// not read them, and the copy grows with everything running.
	var assigned map[int]string
	if policies {
		assigned = d.reg.Assigned()
	}
	d.mu.Unlock()
	if err != nil {
		return nil, portsErr(ps, n, err)
	}
	if cands == nil {
		return out, nil // every instance keeps its port
	}
	missing := 0
	for _, p := range out {
		if p == 0 {
			missing++
		}
	}
	// The chain always ends in the built-in policy (pluginhost.Builtin).
	cands, err = d.plugins.Allocate(sdk.AllocateRequest{
		App: name, Instances: missing, Spec: ps.String(), Candidates: cands, Assignments: assigned,
	})
	if err != nil {
		return nil, &UserError{err.Error()}
	}
	got, err := ports.Fill(req, out, cands)
	if err != nil {
		return nil, portsErr(ps, n, err)
	}
	return got, nil
}

// launchPlan is an instance a user operation is about to start, for the starting hooks.
type launchPlan struct{ index, id, port int }

// starting asks the hooks whether the instances of app may start. A veto is a UserError; hooks
// that fail do not stop the start and come back as warnings. A hook that hangs or crashes is
// asked no more during the operation (see pluginhost.Manager.Operation; an operation over
// several apps opens one around all of its starting calls). d.mu must not be held.
func (d *Daemon) starting(name string, plans []launchPlan) ([]string, error) {
	defer d.plugins.Operation()()
	var warnings []string
	for _, p := range plans {
		w, err := d.plugins.Starting(sdk.Event{
			Kind: sdk.Starting, App: name, Instance: p.index, ID: p.id, Ports: portList(p.port),
			AppPorts: d.live.ports(name), Time: time.Now(),
		})
		warnings = append(warnings, w...)
		if err != nil {
			return warnings, &UserError{err.Error()}
		}
	}
	return warnings, nil
}

// launchPlans describes the n instances an operation on a will start on ps, for the starting
// hooks: existing slots keep their ids, new ones get the ids they will be given. d.mu must be
// held.
func (d *Daemon) launchPlans(a *app, n int, ps []int) []launchPlan {
	out := make([]launchPlan, n)
	next := d.nextID
	for i := range out {
		out[i].index = i
		if a != nil && i < len(a.slots) {
			out[i].id = a.slots[i].id
		} else {
			out[i].id, next = next, next+1
		}
		if ps != nil {
			out[i].port = ps[i]
		}
	}
	return out
}

// slotPort picks a port for one instance of a whose other instances keep theirs: the index's
// port of a range, the single port, or a free port of an auto range that the app's other
// instances do not hold. d.mu must not be held.
func (d *Daemon) slotPort(a *app, s *slot) (int, error) {
	d.mu.Lock()
	spec, index, keep, h := a.liveSpec(), s.index, []int{}, holdOf(*a.cfg)
	for _, o := range a.slots {
		if o != s && o.port > 0 {
			keep = append(keep, o.port)
		}
	}
	d.mu.Unlock()
	if h.mode == config.SocketShared {
		// Every instance is on the one port: the others' when they have it.
		got, err := d.pickPorts(a.cfg.Name, spec, 1, keep[:min(1, len(keep))], h)
		if err != nil {
			return 0, err
		}
		return got[0], nil
	}
	ps, err := ports.ParseSpec(spec)
	if err != nil {
		return 0, &UserError{err.Error()}
	}
	if ps.Kind != ports.Auto {
		// Positions of a fixed spec are the instances' indexes.
		if index >= ps.Size() {
			return 0, userErr("instance %d of %s has no port in %s", index, a.cfg.Name, ps)
		}
		got, err := d.pickPorts(a.cfg.Name, spec, index+1, fillFixed(ps, index), h)
		if err != nil {
			return 0, err
		}
		return got[index], nil
	}
	got, err := d.pickPorts(a.cfg.Name, spec, len(keep)+1, keep, h)
	if err != nil {
		return 0, err
	}
	return got[len(keep)], nil
}

// fillFixed keeps every position of a fixed spec before index, so only index's port is
// allocated (and checked).
func fillFixed(ps ports.Spec, index int) []int {
	keep := make([]int, index+1)
	for i := 0; i < index; i++ {
		keep[i] = ps.Start + i
	}
	return keep
}
