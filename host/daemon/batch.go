package daemon

import "context"

// beginOp takes the operation lock for a request and returns its release. A request whose
// client went away while it waited for its turn does nothing: it ends with ctx's error.
func (d *Daemon) beginOp(ctx context.Context) (end func(), err error) {
	d.opMu.Lock()
	if err := ctx.Err(); err != nil {
		d.opMu.Unlock()
		return nil, err
	}
	return d.endOp, nil
}

// endOp ends an operation: the sockets it bound and did not use are closed, as are those of
// ports it released; then the next operation may begin.
func (d *Daemon) endOp() {
	d.mu.Lock()
	d.closeUnheldLocked()
	d.mu.Unlock()
	d.opMu.Unlock()
}

// beginBatchOp is beginOp for an operation over several apps (start-many, restart, reload,
// resurrect): its state changes share one write (beginBatch), and a hook that hangs costs one
// timeout for the whole operation, not one per app (pluginhost.Manager.Operation). end undoes
// the three in reverse order.
func (d *Daemon) beginBatchOp(ctx context.Context) (end func(), err error) {
	endOp, err := d.beginOp(ctx)
	if err != nil {
		return nil, err
	}
	endBatch := d.beginBatch()
	endHooks := d.plugins.Operation()
	return func() {
		endHooks()
		endBatch()
		endOp()
	}, nil
}

// releaseUnusedLocked frees the ports a holds that none of its instances is on: what a failed
// operation had planned. d.mu must be held.
func (d *Daemon) releaseUnusedLocked(a *app) {
	used := map[int]bool{}
	for _, s := range a.slots {
		used[s.port] = true
	}
	var free []int
	for _, p := range d.reg.PortsOf(a.cfg.Name) {
		if !used[p] {
			free = append(free, p)
		}
	}
	d.reg.Release(a.cfg.Name, free)
}

// beginBatch makes the operations until the returned end share one state write, done by end.
// opMu must be held throughout.
func (d *Daemon) beginBatch() (end func()) {
	d.batch = true
	return func() {
		d.batch = false
		if d.batchDirty {
			d.batchDirty = false
			d.mu.Lock()
			d.persistLocked()
			d.mu.Unlock()
		}
	}
}

// commitLocked saves the state after a change, or, inside a batch, marks it for the save at
// the batch's end. d.mu and opMu must be held.
func (d *Daemon) commitLocked() {
	if d.batch {
		d.batchDirty = true
		return
	}
	d.persistLocked()
}
