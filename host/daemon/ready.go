package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// readyRule is what makes an instance of an app ready: healthy when it has a health check,
// else online for min_uptime. It is read under d.mu once, so a wait never touches the app.
type readyRule struct {
	app       string
	minUptime time.Duration
	timeout   time.Duration
}

// waitReady waits until loop's instance is ready. It fails when the instance exits, when
// timeout passes, or when ctx is done (the client went away); the instance is left running
// either way, and what to do about it is the operation's decision. It wakes on the loop's
// state changes, and on the moment min_uptime is reached, never on a poll.
func waitReady(ctx context.Context, r readyRule, loop *supervisor.Loop) error {
	spec := loop.Spec()
	index, checked := spec.Index, spec.Health != nil
	deadline := time.NewTimer(r.timeout)
	defer deadline.Stop()
	expired := false
	for {
		st, changed := loop.Watch()
		var upFor time.Duration // how long until min_uptime is reached; 0 when it is not ahead
		switch st.Status {
		case supervisor.Online:
			if checked && st.Health == supervisor.HealthHealthy {
				return nil
			}
			if !checked {
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
	if checked {
		last := st.HealthError
		if last == "" {
			last = "no check has answered yet"
		}
		return fmt.Errorf("instance %d of %s was not healthy within %s (last check: %s)", index, r.app, r.timeout, last)
	}
	return fmt.Errorf("instance %d of %s was not up for min_uptime %s within %s", index, r.app, r.minUptime, r.timeout)
}

// waitAllReady waits for every given slot's instance in parallel and joins their errors. d.mu
// must not be held.
func (d *Daemon) waitAllReady(ctx context.Context, a *app, slots []*slot, timeout time.Duration) error {
	d.mu.Lock()
	rule := readyRule{app: a.cfg.Name, minUptime: a.cfg.MinUptime, timeout: timeout}
	loops := make([]*supervisor.Loop, len(slots))
	errs := make([]error, len(slots))
	for i, s := range slots {
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
			errs[i] = waitReady(ctx, rule, l)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
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
