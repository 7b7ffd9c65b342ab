package daemon

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// waitReady waits until inst is ready: healthy when the app has a health check, else online
// for the app's min_uptime. It fails when the instance exits or timeout passes.
func waitReady(a *app, inst *supervisor.Instance, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	name, index := a.cfg.Name, inst.Spec().Index
	checked := inst.Spec().Health != nil
	for {
		st := inst.State()
		switch st.Status {
		case supervisor.Online:
			if checked && st.Health == supervisor.HealthHealthy {
				return nil
			}
			if !checked && time.Since(st.StartedAt) >= a.cfg.MinUptime {
				return nil
			}
		case supervisor.Errored, supervisor.Stopped, supervisor.WaitingRestart:
			why := st.Reason
			if why == "" {
				why = fmt.Sprintf("exit code %d", st.ExitCode)
			}
			return fmt.Errorf("instance %d of %s did not stay up (%s)", index, name, why)
		}
		if time.Now().After(deadline) {
			if checked {
				last := st.HealthError
				if last == "" {
					last = "no check has answered yet"
				}
				return fmt.Errorf("instance %d of %s was not healthy within %s (last check: %s)", index, name, timeout, last)
			}
			return fmt.Errorf("instance %d of %s was not up for min_uptime %s within %s", index, name, a.cfg.MinUptime, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitAllReady(a *app, slots []*slot, timeout time.Duration) error {
	errs := make([]error, len(slots))
	var wg sync.WaitGroup
	for i, s := range slots {
		if s.inst == nil {
			errs[i] = fmt.Errorf("instance %d of %s could not start: %s", s.index, a.cfg.Name, s.last.Reason)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = waitReady(a, s.inst, timeout)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readiness is how long an operation waits for readiness, and whether a start or restart
// waits at all (a reload always does).
func readiness(cfg config.App, wait bool, timeout time.Duration) (bool, time.Duration) {
	if timeout <= 0 {
		timeout = cfg.Waiting()
	}
	return wait || cfg.WaitReady, timeout
}
