package daemon

import (
	"context"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// Reset answers `pmdaemon reset TARGET`, PM2's reset: the restart counters of the target's
// instances go back to zero. Nothing is stopped or started, and the unstable-exit count that
// max_restarts is judged on is left alone (it is the policy's, not a statistic). Steps:
// resolve, zero each counter, commit.
func (d *Daemon) Reset(ctx context.Context, req api.TargetRequest) (*api.Result, error) {
	end, err := d.beginOp(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	d.mu.Lock()
	defer d.mu.Unlock()
	ts, err := d.resolve(req.Target)
	if err != nil {
		return nil, err
	}
	res := &api.Result{Apps: []api.Started{}}
	for _, t := range ts {
		for _, s := range t.slots() {
			resetRestartsLocked(s)
		}
		res.Apps = append(res.Apps, startedOfTarget(t))
	}
	d.commitLocked()
	return res, nil
}

// resetRestartsLocked zeroes s's restart counter, in its loop when one runs (the loop owns the
// count then) and in the state kept for the next launch either way. d.mu must be held.
func resetRestartsLocked(s *slot) {
	if s.loop != nil {
		s.loop.ResetRestarts()
	}
	s.last.Restarts = 0
}
