package daemon

import (
	"github.com/pmdaemon/pmdaemon/host/api"
)

// Stop stops the target's instances; they give their ports back and stay listed as stopped.
func (d *Daemon) Stop(req api.TargetRequest) (*api.Result, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	ts, err := d.resolve(req.Target)
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	res := &api.Result{Apps: []api.Started{}}
	for _, t := range ts {
		d.stopSlots(t.slots(), true)
		d.mu.Lock()
		for _, s := range t.slots() {
			d.reg.Release(t.app.cfg.Name, []int{s.port})
			s.port = 0
		}
		res.Apps = append(res.Apps, *started(t.app))
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.commitLocked()
	d.mu.Unlock()
	return res, nil
}

// Delete stops the target and forgets it.
func (d *Daemon) Delete(req api.TargetRequest) (*api.Result, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	ts, err := d.resolve(req.Target)
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	res := &api.Result{Apps: []api.Started{}}
	for _, t := range ts {
		d.stopSlots(t.slots(), true)
		d.mu.Lock()
		name := t.app.cfg.Name
		res.Apps = append(res.Apps, *started(t.app))
		if t.slot != nil {
			d.reg.Release(name, []int{t.slot.port})
			var keep []*slot
			for _, s := range t.app.slots {
				if s != t.slot {
					keep = append(keep, s)
				}
			}
			t.app.slots = keep
		}
		if t.slot == nil || len(t.app.slots) == 0 {
			d.reg.ReleaseApp(name)
			delete(d.apps, name)
			for i, n := range d.order {
				if n == name {
					d.order = append(d.order[:i:i], d.order[i+1:]...)
					break
				}
			}
		}
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.commitLocked()
	d.mu.Unlock()
	return res, nil
}
