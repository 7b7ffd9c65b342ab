package daemon

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/pmdaemon/pmdaemon/host/cgroup"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/host/procfs"
	"github.com/pmdaemon/pmdaemon/host/sockets"
)

// The listening sockets the daemon holds for socket apps (DESIGN §10). The allocation is the
// bind: the allocator probes a socket app's ports by binding them for good (bindProber), so no
// other process can take a port between its choice and the app's start. What the operation
// keeps moves into its app's listeners when a slot launches on the port (listenerFor); what it
// does not is closed when the operation ends (closeUnheldLocked). An app holds a port's
// listener as long as the registry holds the port for it: across crashes, restarts and
// reloads, so that a connection arriving while no instance accepts waits in the backlog. Stop
// and delete release the port, and the listener is closed.

// bindProber probes a port by binding the socket the app will be handed. d.mu must be held
// while it is used (ports.Prepare is called under it).
type bindProber struct {
	d    *Daemon
	bind string
}

func (p bindProber) Probe(port int) error {
	if _, ok := p.d.bound[port]; ok {
		return nil
	}
	l, err := sockets.Listen(p.bind, port)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return ports.ErrInUse
	case errors.Is(err, syscall.EACCES):
		return &ports.PrivilegedError{Port: port}
	case err != nil:
		return err
	}
	p.d.bound[port] = l
	return nil
}

// proberFor is how an app's ports are probed: bound for good for socket apps, tried and let go
// for the others.
func (d *Daemon) proberFor(h sockHold) ports.Prober {
	if h.mode == config.SocketNone {
		return d.prober
	}
	return bindProber{d: d, bind: h.bind}
}

// sockHold is what the allocator needs to know of an app's sockets.
type sockHold struct {
	mode config.SocketMode
	bind string
}

func holdOf(cfg config.App) sockHold { return sockHold{mode: cfg.Socket, bind: cfg.Bind} }

// listenerFor is the listening socket of a's port: the one a holds, the one its allocation
// bound, or (when neither: a port kept from before a daemon restart whose socket could not be
// recovered) one bound now. d.mu must be held.
func (d *Daemon) listenerFor(a *app, port int) (*sockets.Listener, error) {
	if l := a.listeners[port]; l != nil {
		return l, nil
	}
	l := d.bound[port]
	if l != nil {
		delete(d.bound, port)
	} else {
		var err error
		if l, err = sockets.Listen(a.cfg.Bind, port); err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, &portInUse{port: port, holder: ports.Holder(port)}
			}
			return nil, fmt.Errorf("cannot bind the socket of port %d: %w", port, err)
		}
	}
	if a.listeners == nil {
		a.listeners = map[int]*sockets.Listener{}
	}
	a.listeners[port] = l
	return l, nil
}

// closeUnheldLocked closes what no app holds any more: the sockets an allocation bound but the
// operation did not use, and each app's listeners of ports the registry no longer holds for it.
// Every operation ends with it. d.mu must be held.
func (d *Daemon) closeUnheldLocked() {
	for p, l := range d.bound {
		d.closeListener(l)
		delete(d.bound, p)
	}
	for _, a := range d.apps {
		for p, l := range a.listeners {
			if holder, ok := d.reg.Holder(p); !ok || holder != a.cfg.Name {
				d.closeListener(l)
				delete(a.listeners, p)
			}
		}
	}
}

// closeStaleListeners closes the listeners of a, stopped, that its configuration no longer
// asks for: an update turned its sockets off (its instances would find the port held by the
// daemon) or changed their bind address. d.mu must be held.
func (d *Daemon) closeStaleListeners(a *app) {
	for p, l := range a.listeners {
		if a.cfg.Socket == config.SocketNone || l.Bind != a.cfg.Bind {
			d.closeListener(l)
			delete(a.listeners, p)
		}
	}
}

// closeAppListeners closes every listener of a, which is being forgotten. d.mu must be held.
func (d *Daemon) closeAppListeners(a *app) {
	for p, l := range a.listeners {
		d.closeListener(l)
		delete(a.listeners, p)
	}
}

func (d *Daemon) closeListener(l *sockets.Listener) {
	if err := l.Close(); err != nil {
		d.logger.Printf("closing the socket of port %d: %v", l.Port, err)
	}
}

// recoverListener takes back, after a daemon restart, the listening socket of an adopted slot's
// port from the slot's processes, which still hold it (the previous daemon's copy died with
// it). Without it a reload would have to bind the port anew while the old instance holds it.
// d.mu must be held.
func (d *Daemon) recoverListener(a *app, s *slot) {
	if a.cfg.Socket == config.SocketNone || s.port == 0 || a.listeners[s.port] != nil {
		return
	}
	inode := a.inodes[s.port]
	if inode == 0 {
		d.logger.Printf("%s[%d]: the state file has no socket for port %d to take back", a.cfg.Name, s.index, s.port)
		return
	}
	l, err := sockets.Recover(d.slotPids(s, s.last.Pid), inode, s.port, a.cfg.Bind)
	if err != nil {
		d.logger.Printf("%s[%d]: cannot take back the socket of port %d: %v", a.cfg.Name, s.index, s.port, err)
		return
	}
	if a.listeners == nil {
		a.listeners = map[int]*sockets.Listener{}
	}
	a.listeners[s.port] = l
	d.logger.Printf("took back the socket of %s port %d from pid %d", a.cfg.Name, s.port, s.last.Pid)
}

// slotPids are the processes of slot s whose main process is pid: its cgroup's members, or in
// process-group mode its process group.
func (d *Daemon) slotPids(s *slot, pid int) []int {
	if cg := d.cgroupOf(s); cg != "" {
		if pids, err := cgroup.Procs(cg); err == nil && len(pids) > 0 {
			return pids
		}
	}
	if pid <= 0 {
		return nil
	}
	out := []int{pid}
	all, err := procfs.All()
	if err != nil {
		return out
	}
	for _, st := range all {
		if st.Pgid == pid && st.Pid != pid {
			out = append(out, st.Pid)
		}
	}
	return out
}

// listenerFile is the socket a slot's processes get as fd 3, nil for apps without sockets or
// when it cannot be had (the reason is returned). d.mu must be held.
func (d *Daemon) listenerFile(a *app, s *slot) (*os.File, error) {
	if a.cfg.Socket == config.SocketNone || s.port == 0 {
		return nil, nil
	}
	l, err := d.listenerFor(a, s.port)
	if err != nil {
		return nil, err
	}
	return l.File, nil
}

// socketInodes is what the state file keeps of a's listeners, for the next daemon's recovery.
// d.mu must be held.
func (a *app) socketInodes() map[int]uint64 {
	if len(a.listeners) == 0 {
		return nil
	}
	out := make(map[int]uint64, len(a.listeners))
	for p, l := range a.listeners {
		out[p] = l.Inode
	}
	return out
}
