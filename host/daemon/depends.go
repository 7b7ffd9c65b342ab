package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// depends_on (config/depends.go): the apps of a start-many request start each after the apps it
// depends on, once those meet their condition; stop all and the daemon's shutdown stop each app
// before the apps it depends on. A dependency is an app of the same request or one the daemon
// already has.

// startOrder is the order in which the apps of req start: the request's order, each app moved
// after its dependencies. A cycle was refused by checkStartMany.
func startOrder(req api.StartManyRequest) []int {
	index := make(map[string]int, len(req.Apps))
	names := make([]string, len(req.Apps))
	for i, r := range req.Apps {
		index[r.App.Name], names[i] = i, r.App.Name
	}
	ordered, err := config.StartOrder(names, requestDeps(req))
	if err != nil {
		ordered = names // cannot happen past checkStartMany; the request's order then
	}
	out := make([]int, len(ordered))
	for i, n := range ordered {
		out[i] = index[n]
	}
	return out
}

// requestDeps is the dependency lookup of a request's apps.
func requestDeps(req api.StartManyRequest) func(string) []string {
	deps := map[string][]string{}
	for _, r := range req.Apps {
		for _, dep := range r.App.DependsOn {
			deps[r.App.Name] = append(deps[r.App.Name], dep.App)
		}
	}
	return func(n string) []string { return deps[n] }
}

// checkRequestDeps refuses a start-many request whose apps repeat a name or depend on each
// other in a cycle: no order could start them.
func checkRequestDeps(req api.StartManyRequest) error {
	seen := make(map[string]int, len(req.Apps))
	names := make([]string, len(req.Apps))
	for i, r := range req.Apps {
		if j, dup := seen[r.App.Name]; dup {
			return userErr("apps[%d]: app %q is in the request twice (also apps[%d])", i, r.App.Name, j)
		}
		seen[r.App.Name], names[i] = i, r.App.Name
	}
	if _, err := config.StartOrder(names, requestDeps(req)); err != nil {
		return &UserError{err.Error()}
	}
	return nil
}

// awaitDependencies waits until every app cfg depends on meets its condition. failed holds the
// apps of this request that failed, with why. The error names both apps. opMu must be held;
// d.mu must not be.
func (d *Daemon) awaitDependencies(ctx context.Context, cfg config.App, failed map[string]error) error {
	for _, dep := range cfg.DependsOn {
		if err := d.awaitDependency(ctx, dep, failed); err != nil {
			return fmt.Errorf("%s was not started: it depends on %s (%s), %w", cfg.Name, dep.App, dep.Condition, err)
		}
	}
	return nil
}

// awaitDependency waits until dep's app meets dep's condition, within that app's wait_timeout.
func (d *Daemon) awaitDependency(ctx context.Context, dep config.Dependency, failed map[string]error) error {
	d.mu.Lock()
	a := d.apps[dep.App]
	d.mu.Unlock()
	why, didFail := failed[dep.App]
	switch {
	case a == nil && didFail:
		return fmt.Errorf("which failed: %v", why)
	case a == nil:
		return fmt.Errorf("which is neither in this file nor an app the daemon has; start %s first", dep.App)
	case didFail && dep.Condition != config.DependStarted:
		// It started but failed its wait: waiting again would only repeat that.
		return fmt.Errorf("which failed: %v", why)
	}
	switch dep.Condition {
	case config.DependReady:
		if err := d.waitAllReady(ctx, a, d.slotsOf(a), a.cfg.Waiting()); err != nil {
			return fmt.Errorf("which did not become ready: %w", err)
		}
	case config.DependCompleted:
		return d.waitCompleted(ctx, a, a.cfg.Waiting())
	default:
		if !d.runningAny(a) {
			return fmt.Errorf("which has no running instance (see pmdaemon info %s)", dep.App)
		}
	}
	return nil
}

// runningAny reports whether an instance of a runs.
func (d *Daemon) runningAny(a *app) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range a.slots {
		if st := s.state(); st.Pid > 0 && st.Status == supervisor.Online {
			return true
		}
	}
	return false
}

// waitCompleted waits until every instance of a has exited 0 and is not to be restarted; one
// that fails (exits otherwise, errored) or runs past timeout is an error.
func (d *Daemon) waitCompleted(ctx context.Context, a *app, timeout time.Duration) error {
	d.mu.Lock()
	type instance struct {
		index int
		loop  *supervisor.Loop
		last  supervisor.State
	}
	var insts []instance
	for _, s := range a.slots {
		insts = append(insts, instance{s.index, s.loop, s.last})
	}
	d.mu.Unlock()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, in := range insts {
		for {
			st, changed := in.last, (<-chan struct{})(nil)
			if in.loop != nil {
				st, changed = in.loop.Watch()
			}
			done, err := completed(in.index, st)
			switch {
			case err != nil:
				return err
			case done:
			case changed == nil:
				return fmt.Errorf("whose instance %d is not running and never completed", in.index)
			default:
				select {
				case <-changed:
					continue
				case <-deadline.C:
					return fmt.Errorf("which did not complete within %s (its wait_timeout)", timeout)
				case <-ctx.Done():
					return fmt.Errorf("gave up waiting for it to complete: %w", ctx.Err())
				}
			}
			break
		}
	}
	return nil
}

// completed tells whether an instance in state st has completed: exited 0, not to run again.
// An instance that exited otherwise, or gave up, never will.
func completed(index int, st supervisor.State) (bool, error) {
	switch {
	case st.Status == supervisor.Stopped && st.ExitCode == 0:
		return true, nil
	case st.Status == supervisor.Stopped:
		return false, fmt.Errorf("whose instance %d exited with code %d", index, st.ExitCode)
	case st.Status == supervisor.Errored:
		return false, fmt.Errorf("whose instance %d failed: %s", index, st.Reason)
	}
	return false, nil
}

// stopOrder orders targets for a stop: each app before the apps it depends on. Instances of
// one app stay together in the given order.
func stopOrder(ts []target) []target {
	if len(ts) < 2 {
		return ts
	}
	var names []string
	byName := map[string][]target{}
	deps := map[string][]string{}
	for _, t := range ts {
		n := t.app.cfg.Name
		if _, seen := byName[n]; !seen {
			names = append(names, n)
			for _, dep := range t.app.cfg.DependsOn {
				deps[n] = append(deps[n], dep.App)
			}
		}
		byName[n] = append(byName[n], t)
	}
	var out []target
	for _, level := range config.StopLevels(names, func(n string) []string { return deps[n] }) {
		for _, n := range level {
			out = append(out, byName[n]...)
		}
	}
	return out
}

// shutdownLevels groups every slot for the daemon's shutdown: the apps of a level stop
// together, each level before the apps its apps depend on. d.mu must be held.
func (d *Daemon) shutdownLevelsLocked() [][]*slot {
	deps := func(n string) []string {
		var out []string
		if a := d.apps[n]; a != nil {
			for _, dep := range a.cfg.DependsOn {
				out = append(out, dep.App)
			}
		}
		return out
	}
	var levels [][]*slot
	for _, level := range config.StopLevels(d.order, deps) {
		var slots []*slot
		for _, n := range level {
			slots = append(slots, d.apps[n].slots...)
		}
		levels = append(levels, slots)
	}
	return levels
}
