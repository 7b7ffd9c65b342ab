package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/sockets"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// readyRule is what makes an instance of an app ready: healthy when it has a health check;
// else READY=1 on NOTIFY_SOCKET or "ready" on its IPC channel (process.send), or by the app's
// rule (config.App.ReadyRule): its port answers (probe), or it stays online for min_uptime;
// with the notify rule only READY=1 (or "ready") counts. It is read under d.mu once, so a
// wait never touches the app.
type readyRule struct {
	app       string
	kind      string
	minUptime time.Duration
	timeout   time.Duration
	// ipc is set for a node app, which says it is ready with process.send('ready').
	ipc bool
	// probe tells whether the instance whose main process is pid answers on its port: a TCP
	// connection is accepted (by the app itself, for a socket the daemon holds). Set for the
	// port rule only.
	probe func(pid int) bool
}

// probeEvery bounds the pause between two probes of a port that did not answer yet: they start
// at probeFirst and double up to it.
const (
	probeFirst = 10 * time.Millisecond
	probeEvery = 200 * time.Millisecond
)

// waitReady waits until loop's instance is ready. It fails when the instance exits, when
// timeout passes, or when ctx is done (the client went away); the instance is left running
// either way, and what to do about it is the operation's decision. It wakes on the loop's
// state changes, on the moment min_uptime is reached and, for the port rule, to probe the port
// again.
func waitReady(ctx context.Context, r readyRule, loop *supervisor.Loop) error {
	spec := loop.Spec()
	index, checked := spec.Index, spec.Health != nil
	deadline := time.NewTimer(r.timeout)
	defer deadline.Stop()
	expired := false
	pause := probeFirst
	for {
		st, changed := loop.Watch()
		var upFor time.Duration // how long until the next look: min_uptime reached, or a probe; 0 for none
		switch st.Status {
		case supervisor.Online:
			switch {
			case st.AppStopping:
				// It said STOPPING=1: whatever else holds, it is going away.
			case checked:
				if st.Health == supervisor.HealthHealthy {
					return nil
				}
			case st.Ready:
				return nil
			case r.kind == config.ReadyNotify:
			case r.probe != nil:
				if r.probe(st.Pid) {
					return nil
				}
				upFor, pause = pause, min(2*pause, probeEvery)
			default:
				if upFor = r.minUptime - time.Since(st.StartedAt); upFor <= 0 {
					return nil
				}
			}
		case supervisor.Errored, supervisor.Stopped, supervisor.WaitingRestart:
			why := st.Reason
			if why == "" {
				why = fmt.Sprintf("exit code %d", st.ExitCode)
			}
			return fmt.Errorf("instance %d of %s did not stay up (%s)", index, r.app, why)
		}
		if expired {
			return notReadyInTime(r, index, checked, st)
		}
		if err := waitChange(ctx, changed, deadline.C, upFor, &expired); err != nil {
			return fmt.Errorf("instance %d of %s: gave up waiting for it to be ready: %w", index, r.app, err)
		}
	}
}

// waitChange waits for the next state change, the moment upFor from now (when upFor > 0), or
// the deadline (which sets *expired); it returns ctx's error when ctx ends first.
func waitChange(ctx context.Context, changed <-chan struct{}, deadline <-chan time.Time, upFor time.Duration, expired *bool) error {
	var up <-chan time.Time
	if upFor > 0 {
		t := time.NewTimer(upFor)
		defer t.Stop()
		up = t.C
	}
	select {
	case <-changed:
	case <-up:
	case <-deadline:
		*expired = true
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func notReadyInTime(r readyRule, index int, checked bool, st supervisor.State) error {
	switch {
	case checked:
		last := st.HealthError
		if last == "" {
			last = "no check has answered yet"
		}
		return fmt.Errorf("instance %d of %s was not healthy within %s (last check: %s)", index, r.app, r.timeout, last)
	case r.kind == config.ReadyNotify && r.ipc:
		return fmt.Errorf("instance %d of %s did not call process.send('ready') (nor send READY=1 to NOTIFY_SOCKET) within %s", index, r.app, r.timeout)
	case r.kind == config.ReadyNotify:
		return fmt.Errorf("instance %d of %s sent no READY=1 to NOTIFY_SOCKET within %s", index, r.app, r.timeout)
	case r.probe != nil:
		return fmt.Errorf("instance %d of %s did not accept a connection on its port within %s", index, r.app, r.timeout)
	}
	return fmt.Errorf("instance %d of %s was not up for min_uptime %s within %s", index, r.app, r.minUptime, r.timeout)
}

// waitAllReady waits for every given slot's instance in parallel and joins their errors. d.mu
// must not be held.
func (d *Daemon) waitAllReady(ctx context.Context, a *app, slots []*slot, timeout time.Duration) error {
	d.mu.Lock()
	rules := make([]readyRule, len(slots))
	loops := make([]*supervisor.Loop, len(slots))
	errs := make([]error, len(slots))
	for i, s := range slots {
		rules[i] = d.readyRuleOf(a, s, timeout)
		loops[i] = s.loop
		if s.loop == nil {
			errs[i] = fmt.Errorf("instance %d of %s could not start: %s", s.index, a.cfg.Name, s.last.Reason)
		}
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	for i, l := range loops {
		if l == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = waitReady(ctx, rules[i], l)
		}()
	}
	wg.Wait()
	d.noteReadiness(a, slots, errs)
	return errors.Join(errs...)
}

// readyRuleOf is the readiness rule of slot s of a. d.mu must be held.
func (d *Daemon) readyRuleOf(a *app, s *slot, timeout time.Duration) readyRule {
	r := readyRule{app: a.cfg.Name, kind: a.cfg.ReadyRule(), minUptime: a.cfg.MinUptime, timeout: timeout, ipc: a.cfg.RunsNode()}
	if r.kind != config.ReadyPort || s.port == 0 {
		if r.kind == config.ReadyPort {
			r.kind = config.ReadyUptime // an instance without a port of an app with one: none to probe
		}
		return r
	}
	port := s.port
	if l := a.listeners[port]; l != nil && a.cfg.Socket != config.SocketNone {
		// The kernel answers every connection to a socket the daemon holds: only the
		// instance's own processes waiting on it (an event loop watching it, a thread in
		// accept), or accepting a probe, show it serves. The wait is looked for first: while
		// old instances share the socket (a reload) the kernel may hand them every probe.
		r.probe = func(pid int) bool {
			pids := d.slotPids(s, pid)
			if sockets.WaitsOn(l, pids) {
				return true
			}
			ok, err := sockets.AcceptedBy(l, pids, probeTimeout)
			return err == nil && ok
		}
		return r
	}
	r.probe = func(int) bool { return sockets.Answers("", port, probeTimeout) }
	return r
}

// probeTimeout bounds one readiness probe.
const probeTimeout = 250 * time.Millisecond

// noteReadiness keeps, for info, why a socket app's instance was not ready (it most likely
// binds the port itself instead of serving on the socket handed to it), and clears the note of
// those that were.
func (d *Daemon) noteReadiness(a *app, slots []*slot, errs []error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, s := range slots {
		switch {
		case errs[i] == nil:
			s.notice = ""
		case a.cfg.Socket != config.SocketNone && !errors.Is(errs[i], context.Canceled) &&
			a.cfg.HealthCheck == nil && a.cfg.ReadyRule() == config.ReadyPort:
			// Only the port rule tells: a health check or READY=1 not met says nothing of fd 3.
			// The error says it too: the user who waits reads that first.
			s.notice = socketNotice(s.port)
			errs[i] = fmt.Errorf("%w; %s", errs[i], s.notice)
		}
	}
}

// socketNotice is what info says of a socket app's instance that does not serve on its socket.
func socketNotice(port int) string {
	return fmt.Sprintf("the app did not serve on the socket pmdaemon holds for port %d: it must accept on fd 3 "+
		"(LISTEN_FDS=1, LISTEN_PID), not bind the port itself, which fails with \"address already in use\" "+
		"(docs/sockets.md)", port)
}

// waitSpawned waits until every given slot's process has been started, so the answer to a
// start or restart shows pids, or until ctx ends. d.mu must not be held.
func (d *Daemon) waitSpawned(ctx context.Context, slots []*slot) error {
	d.mu.Lock()
	var loops []*supervisor.Loop
	for _, s := range slots {
		if s.loop != nil {
			loops = append(loops, s.loop)
		}
	}
	d.mu.Unlock()
	for _, l := range loops {
		select {
		case <-l.Spawned():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// awaitReady is the wait step of an operation that launched slots: their processes spawned,
// then, when wait is set, every one ready within timeout.
func (d *Daemon) awaitReady(ctx context.Context, a *app, slots []*slot, wait bool, timeout time.Duration) error {
	if err := d.waitSpawned(ctx, slots); err != nil {
		return err
	}
	if !wait {
		return nil
	}
	return d.waitAllReady(ctx, a, slots, timeout)
}

// readiness is how long an operation waits for readiness, and whether a start or restart
// waits at all (a reload always does).
func readiness(cfg config.App, wait bool, timeout time.Duration) (bool, time.Duration) {
	if timeout <= 0 {
		timeout = cfg.Waiting()
	}
	return wait || cfg.WaitReady, timeout
}
