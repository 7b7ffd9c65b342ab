package daemon

import (
	"context"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// Stop stops the target's instances; they give their ports back and stay listed as stopped.
func (d *Daemon) Stop(ctx context.Context, req api.TargetRequest) (*api.Result, error) {
	return d.stopTargets(ctx, req, false)
}

// Delete stops the target and forgets it.
func (d *Daemon) Delete(ctx context.Context, req api.TargetRequest) (*api.Result, error) {
	return d.stopTargets(ctx, req, true)
}

// stopTargets is stop and delete: resolve the target, stop its instances, then release their
// ports (stop) or forget them (delete), and commit. A stop under way always completes, even
// when the client goes away: it is bounded by kill_timeout, and a stop cut short would leave
// instances neither running nor released.
func (d *Daemon) stopTargets(ctx context.Context, req api.TargetRequest, forget bool) (*api.Result, error) {
	end, err := d.beginOp(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	d.mu.Lock()
	ts, err := d.resolve(req.Target)
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	ts = stopOrder(ts) // an app before those it depends on
	res := &api.Result{Apps: []api.Started{}}
	for _, t := range ts {
		d.stopSlots(t.slots(), true)
		res.Apps = append(res.Apps, d.afterStop(t, forget))
	}
	d.mu.Lock()
	d.commitLocked()
	d.mu.Unlock()
	return res, nil
}

// afterStop releases the ports of t's stopped instances, or forgets them, and returns the
// app's row: as it is after a stop, as it was for a delete.
func (d *Daemon) afterStop(t target, forget bool) api.Started {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !forget {
		for _, s := range t.slots() {
			d.releaseSlotPortLocked(t.app, s)
			s.port = 0
		}
		return *started(t.app)
	}
	row := *started(t.app)
	d.forgetLocked(t)
	return row
}

// forgetLocked removes t's instance from its app, or the whole app when t names it or the
// instance was its last, with their ports. d.mu must be held.
func (d *Daemon) forgetLocked(t target) {
	name := t.app.cfg.Name
	d.publishDeleted(name, t.slots())
	if t.slot != nil {
		d.releaseSlotPortLocked(t.app, t.slot)
		var keep []*slot
		for _, s := range t.app.slots {
			if s != t.slot {
				keep = append(keep, s)
			}
		}
		t.app.slots = keep
		if len(keep) > 0 {
			return
		}
	}
	d.reg.ReleaseApp(name)
	d.closeAppListeners(t.app)
	delete(d.apps, name)
	for i, n := range d.order {
		if n == name {
			d.order = append(d.order[:i:i], d.order[i+1:]...)
			break
		}
	}
}

// releaseSlotPortLocked gives back s's port unless another wanted instance of a is on it (a
// shared socket's port is every instance's). d.mu must be held.
func (d *Daemon) releaseSlotPortLocked(a *app, s *slot) {
	if s.port == 0 {
		return
	}
	for _, o := range a.slots {
		if o != s && o.wanted && o.port == s.port {
			return
		}
	}
	d.reg.Release(a.cfg.Name, []int{s.port})
}
