package pluginhost

import (
	"fmt"
	"sync"
	"time"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// maxQueued bounds the events waiting for one hook; beyond it the oldest are dropped (and the
// drop logged), so that a hook that is slow for long cannot grow the daemon without limit.
const maxQueued = 10000

// dispatcher delivers one hook's events in order, from its own goroutine, so that supervision
// only ever appends to a queue.
type dispatcher struct {
	p         *Plugin
	mu        sync.Mutex
	cond      *sync.Cond
	queue     []queued
	enqueued  uint64 // sequence number of the last event queued
	delivered uint64 // ... and of the last one handled (or dropped)
	closed    bool
	drainBy   time.Time // after close: queued events after this are dropped, not delivered
	done      chan struct{}
}

type queued struct {
	seq uint64
	ev  sdk.Event
}

func newDispatcher(p *Plugin) *dispatcher {
	d := &dispatcher{p: p, done: make(chan struct{})}
	d.cond = sync.NewCond(&d.mu)
	go d.run()
	return d
}

func (d *dispatcher) push(ev sdk.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.enqueued++
	if len(d.queue) >= maxQueued {
		d.p.logger.Warn("hook is too slow; dropped an event", "kind", d.queue[0].ev.Kind, "app", d.queue[0].ev.App)
		d.queue = d.queue[1:]
	}
	d.queue = append(d.queue, queued{seq: d.enqueued, ev: ev})
	d.cond.Broadcast()
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		for len(d.queue) == 0 && !d.closed {
			d.cond.Wait()
		}
		if len(d.queue) == 0 || d.closed && time.Now().After(d.drainBy) {
			if n := len(d.queue); n > 0 {
				d.p.logger.Warn(fmt.Sprintf("closing: dropped %d queued event(s) not delivered in time", n))
			}
			d.queue = nil
			d.delivered = d.enqueued
			d.cond.Broadcast()
			d.mu.Unlock()
			return
		}
		q := d.queue[0]
		d.queue = d.queue[1:]
		d.mu.Unlock()
		if _, _, err := d.p.handle(q.ev); err != nil {
			d.p.logger.Error(fmt.Sprintf("event %s of %s[%d] not delivered: %v", q.ev.Kind, q.ev.App, q.ev.Instance, err))
		}
		d.mu.Lock()
		d.delivered = q.seq
		d.cond.Broadcast()
		d.mu.Unlock()
	}
}

// flush waits until every event queued so far has been handled, or until deadline.
func (d *dispatcher) flush(deadline time.Time) bool {
	d.mu.Lock()
	target := d.enqueued
	d.mu.Unlock()
	timer := time.AfterFunc(time.Until(deadline), func() {
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	defer timer.Stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.delivered < target && time.Now().Before(deadline) {
		d.cond.Wait()
	}
	return d.delivered >= target
}

// close ends the goroutine after delivering what is queued for at most drain (0: drop the
// queue; the event in flight, if any, still finishes within its call timeout). A hook that hangs
// therefore cannot hold up a remove or a shutdown for more than drain plus one timeout.
func (d *dispatcher) close(drain time.Duration) {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		d.drainBy = time.Now().Add(drain)
		d.cond.Broadcast()
	}
	d.mu.Unlock()
	<-d.done
}

// Emit queues ev for every hook plugin and returns at once.
func (m *Manager) Emit(ev sdk.Event) {
	for _, p := range m.ofKind(sdk.KindHook) {
		if p.events != nil {
			p.events.push(ev)
		}
	}
}

// Flush waits (at most each hook's timeout) until every hook has handled the events emitted so
// far. A reload calls it before stopping old instances, so a load balancer a hook drives
// already knows the new ports.
func (m *Manager) Flush() {
	var wg sync.WaitGroup
	for _, p := range m.ofKind(sdk.KindHook) {
		if p.events == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.events.flush(time.Now().Add(timeoutOf(p.spec) + time.Second))
		}()
	}
	wg.Wait()
}

// VetoError is a start a hook refused.
type VetoError struct{ Plugin, App, Reason string }

func (e *VetoError) Error() string {
	return fmt.Sprintf("start of '%s' vetoed by plugin '%s': %s", e.App, e.Plugin, e.Reason)
}

// Operation scopes the Starting calls of one user operation (a start of N instances, a
// restart of all apps) until the returned end is called: a hook that hangs, crashes or will
// not start on one of them is not asked about the others, so that a broken hook costs the
// operation one timeout rather than one timeout and one plugin restart per instance. Operations
// do not overlap (the daemon serialises them); a nested call joins the operation in progress
// and its end does nothing.
func (m *Manager) Operation() (end func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.op != nil {
		return func() {}
	}
	op := &operation{down: map[*Plugin]bool{}}
	m.op = op
	return func() {
		m.mu.Lock()
		if m.op == op {
			m.op = nil
		}
		m.mu.Unlock()
	}
}

// operation is the state of one Operation: the hooks that went down during it.
type operation struct {
	mu   sync.Mutex
	down map[*Plugin]bool
}

func (o *operation) isDown(p *Plugin) bool {
	if o == nil {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.down[p]
}

func (o *operation) setDown(p *Plugin) {
	if o == nil {
		return
	}
	o.mu.Lock()
	o.down[p] = true
	o.mu.Unlock()
}

// Starting asks every hook, synchronously and in order, whether ev may start. A hook that
// fails (crash, hang, error) does not stop the start: the failure is logged and returned as a
// warning, never as a veto. Within an Operation, a hook that hung, crashed or would not start
// is skipped for the rest of the operation, with that one warning.
func (m *Manager) Starting(ev sdk.Event) (warnings []string, err error) {
	m.mu.Lock()
	op := m.op
	m.mu.Unlock()
	for _, p := range m.ofKind(sdk.KindHook) {
		if op.isDown(p) {
			continue
		}
		veto, down, herr := p.handle(ev)
		if herr != nil {
			note := " (the start went ahead)"
			if down && op != nil {
				op.setDown(p)
				note = " (the start went ahead; the plugin is not asked about the other starts of this operation)"
			}
			p.logger.Error(fmt.Sprintf("starting of %s[%d]: %v%s", ev.App, ev.Instance, herr, note))
			warnings = append(warnings, herr.Error()+note)
			continue
		}
		if veto != "" {
			return warnings, &VetoError{Plugin: p.spec.Name, App: ev.App, Reason: veto}
		}
	}
	return warnings, nil
}
