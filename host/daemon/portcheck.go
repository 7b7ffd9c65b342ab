package daemon

import (
	"errors"
	"fmt"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// A port the registry holds for an app can still be bound by a stranger while the app is
// down (between a crash and its restart, or while it is stopped for a restart). Before an
// instance starts on its port, the daemon binds it once: a fixed port that is taken makes the
// instance errored with the holder named; an auto: instance moves to another free port of its
// range, and the hooks hear ports-changed.

// portInUse is a port held by a process outside the daemon.
type portInUse struct {
	port   int
	holder string
}

func (e *portInUse) Error() string {
	msg := fmt.Sprintf("Port %d is already in use by another process", e.port)
	if e.holder != "" {
		msg += " (" + e.holder + ")"
	}
	return msg
}

// portFree returns nil when port can be bound now, else why not. A port found in use is
// probed again for a short while: a process that was just killed (the instance's own
// leftovers, or a stray the daemon removed at start-up) can hold it for a moment after it is
// reported gone.
func (d *Daemon) portFree(port int) error {
	deadline := time.Now().Add(portSettle)
	for {
		err := d.prober.Probe(port)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ports.ErrInUse) {
			return err
		}
		if time.Now().After(deadline) {
			return &portInUse{port: port, holder: ports.Holder(port)}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// portSettle is how long a port found in use is probed again before it counts as taken.
const portSettle = 500 * time.Millisecond

// portReady makes sure slot s of a can start on its port: it is free, or (auto:) s has moved
// to another free port of its range. When it cannot, s is errored with the reason, which is
// also returned. opMu must be held (the move is an allocation); d.mu must not be.
func (d *Daemon) portReady(a *app, s *slot) error {
	d.mu.Lock()
	port, spec, name := s.port, a.liveSpec(), a.cfg.Name
	var err error
	socket := a.cfg.Socket != config.SocketNone && port > 0
	if socket {
		_, err = d.listenerFor(a, port) // the daemon's own socket, or one bound now
	}
	d.mu.Unlock()
	if port == 0 || socket && err == nil {
		return nil
	}
	if !socket {
		err = d.portFree(port)
	}
	if err == nil {
		return nil
	}
	var taken *portInUse
	if ps, perr := ports.ParseSpec(spec); perr == nil && ps.Kind == ports.Auto && errors.As(err, &taken) {
		if err = d.movePort(a, s, port); err == nil {
			return nil
		}
	}
	d.mu.Lock()
	s.last = supervisor.State{Status: supervisor.Errored, Restarts: s.last.Restarts, Reason: err.Error()}
	d.mu.Unlock()
	d.logger.Printf("%s[%d] cannot start: %v", name, s.index, err)
	return err
}

// cannotStart is the error an operation reports for an instance portReady refused.
func cannotStart(a *app, s *slot, err error) error {
	return userErr("%s[%d] cannot start: %v", a.cfg.Name, s.index, err)
}

// movePort gives s another port of its auto: range in place of taken. opMu must be held.
func (d *Daemon) movePort(a *app, s *slot, taken int) error {
	d.mu.Lock()
	before := slotPorts(a)
	d.reg.Release(a.cfg.Name, []int{taken})
	s.port = 0
	d.mu.Unlock()
	np, err := d.slotPort(a, s)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		err = d.reg.Reserve(a.cfg.Name, []int{np})
	}
	if err != nil {
		s.port = taken
		if rerr := d.reg.Reserve(a.cfg.Name, []int{taken}); rerr != nil {
			d.logger.Printf("%s[%d]: %v", a.cfg.Name, s.index, rerr)
		}
		return fmt.Errorf("port %d was taken by another process and no other port of %s is free: %w", taken, a.liveSpec(), err)
	}
	s.port = np
	d.logger.Printf("%s[%d]: port %d was taken by another process (%s); moved to %d", a.cfg.Name, s.index, taken, ports.Holder(taken), np)
	d.portsChanged(a.cfg.Name, before, slotPorts(a))
	d.requestSave()
	return nil
}

// respawnCheck is slot s's BeforeSpawn: before an automatic restart it checks the port as
// portReady does. The move of an auto: port is an allocation, so it waits for the operation
// lock, giving up when the instance is being stopped (an operation that stops it holds the
// lock meanwhile).
func (d *Daemon) respawnCheck(a *app, s *slot) func(stop <-chan struct{}) (*supervisor.Spec, error) {
	return func(stop <-chan struct{}) (*supervisor.Spec, error) {
		d.mu.Lock()
		port := s.port
		if next, ok, err := d.respawnSocket(a, s); ok {
			d.mu.Unlock()
			return next, err
		}
		d.mu.Unlock()
		if port == 0 || d.portFree(port) == nil {
			return nil, nil
		}
		if !d.lockOpUnless(stop) {
			return nil, errors.New("stopped")
		}
		defer d.opMu.Unlock()
		if err := d.portReady(a, s); err != nil {
			return nil, err
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if s.port == port {
			return nil, nil
		}
		next := d.specFor(a, s)
		next.Unstable = s.state().Unstable
		return &next, nil
	}
}

// lockOpUnless takes opMu, unless stop is closed first; it reports whether it holds the lock.
// A lock obtained after stop is handed straight back, by the goroutine that waited for it.
func (d *Daemon) lockOpUnless(stop <-chan struct{}) bool {
	locked := make(chan struct{})
	go func() {
		d.opMu.Lock()
		close(locked)
	}()
	select {
	case <-locked:
		return true
	case <-stop:
		go func() {
			<-locked
			d.opMu.Unlock()
		}()
		return false
	}
}

// respawnSocket is respawnCheck for a socket app (ok is false for the others): the port is the
// daemon's, so nothing is checked, but a process adopted without its socket (the previous
// daemon's could not be taken back) is followed by one given a socket bound now. d.mu must be
// held.
func (d *Daemon) respawnSocket(a *app, s *slot) (next *supervisor.Spec, ok bool, err error) {
	if a.cfg.Socket == config.SocketNone || s.port == 0 {
		return nil, false, nil
	}
	had := a.listeners[s.port] != nil
	if _, err := d.listenerFor(a, s.port); err != nil {
		return nil, true, err
	}
	if had {
		return nil, true, nil
	}
	spec := d.specFor(a, s)
	spec.Unstable = s.state().Unstable
	return &spec, true, nil
}
