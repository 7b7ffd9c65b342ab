package daemon

import (
	"errors"
	"strings"
	"sync"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// Restart causes, the reason label of pmdaemon_instance_restarts_total.
const (
	causeCrash     = "crash"     // the process exited with a non-zero code or a signal
	causeExit      = "exit"      // it exited with code 0 and autorestart brought it back
	causeWatchdog  = "watchdog"  // no WATCHDOG=1 in time, or WATCHDOG=trigger
	causeHealth    = "health"    // unhealthy, with health_restart
	causeMemory    = "memory"    // over max_memory_restart
	causeCron      = "cron"      // cron_restart
	causeWatch     = "watch"     // a watched file changed
	causeRequested = "requested" // restart, reload or another operation asked for it
	causeRestore   = "restore"   // it died while no daemon ran, and the next daemon restarted it
	causeRollback  = "rollback"  // a rolling reload that failed was rolled back
)

// daemonStats counts, since the daemon started, what its state does not keep: restarts by
// cause, allocations, health-check results and times. Everything in it is O(1) to update, so
// supervision and allocation may call it as they go.
type daemonStats struct {
	mu       sync.Mutex
	restarts map[int]map[string]uint64 // instance id -> cause -> count
	// watchdog marks the instances a watchdog is stopping, so that the restart that follows
	// the exit is counted as the watchdog's.
	watchdog  map[int]bool
	allocOK   uint64
	allocFail map[string]uint64 // reason -> count
	checks    map[int]*checkStats
	checkTime map[string]*histogram // app -> durations of its instances' checks
}

type checkStats struct {
	pass, fail uint64
	health     string // the last verdict, to publish changes only
}

// checkBuckets are the upper bounds, in seconds, of the health-check duration histogram.
var checkBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	n      uint64
	sum    float64
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(checkBuckets))
	}
	for i, b := range checkBuckets {
		if v <= b {
			h.counts[i]++
			break
		}
	}
	h.n++
	h.sum += v
}

// cumulative is the histogram as Prometheus wants it: bound -> observations at or below it.
func (h *histogram) cumulative() map[float64]uint64 {
	out := make(map[float64]uint64, len(checkBuckets))
	var acc uint64
	for i, b := range checkBuckets {
		if h.counts != nil {
			acc += h.counts[i]
		}
		out[b] = acc
	}
	return out
}

// countRestart counts a restart of slot s of a with cause, and publishes it; the daemon's
// operations call it where they count a restart themselves (a new supervising loop). d.mu is
// held.
func (d *Daemon) countRestart(a *app, s *slot, cause string) {
	st := &d.stats
	st.mu.Lock()
	st.countLocked(s.id, cause)
	st.mu.Unlock()
	d.events.publish(api.Event{Kind: "restarting", App: a.cfg.Name, Instance: s.index, ID: s.id,
		Restarts: s.last.Restarts, Cause: cause, Ports: portList(s.port)})
}

func (st *daemonStats) countLocked(id int, cause string) {
	if st.restarts == nil {
		st.restarts = map[int]map[string]uint64{}
	}
	m := st.restarts[id]
	if m == nil {
		m = map[string]uint64{}
		st.restarts[id] = m
	}
	m[cause]++
}

// change counts the restart a supervising loop's state change makes, if any, and returns its
// cause ("" when the change is no restart).
func (st *daemonStats) change(c supervisor.Change) string {
	o, n := c.Old, c.New
	st.mu.Lock()
	defer st.mu.Unlock()
	cause := ""
	if n.Restarts > o.Restarts {
		if n.Status == supervisor.Starting {
			// The process exited and the restart policy brought it back.
			switch {
			case st.watchdog[c.ID]:
				cause = causeWatchdog
			case n.ExitCode != 0:
				cause = causeCrash
			default:
				cause = causeExit
			}
		} else {
			// It was replaced at someone's request: the reason says whose.
			cause = replaceCause(n.Reason)
		}
		st.countLocked(c.ID, cause)
	}
	switch n.Status {
	case supervisor.Stopping:
		if o.Status != supervisor.Stopping {
			if st.watchdog == nil {
				st.watchdog = map[int]bool{}
			}
			st.watchdog[c.ID] = strings.HasPrefix(n.Reason, "watchdog:")
		}
	case supervisor.WaitingRestart:
		// between the watchdog's stop and the restart it causes
	default:
		delete(st.watchdog, c.ID)
	}
	return cause
}

// replaceCause is the cause of a restart a loop was asked for, from the reason it was given
// (the health checker's, metricsLoop's, cronLoop's or watchLoop's).
func replaceCause(reason string) string {
	switch {
	case strings.HasPrefix(reason, "unhealthy:"):
		return causeHealth
	case strings.HasPrefix(reason, "memory "):
		return causeMemory
	case strings.HasPrefix(reason, "cron_restart "):
		return causeCron
	case strings.HasPrefix(reason, "watch: "):
		return causeWatch
	}
	return causeRequested
}

// countAllocation counts one allocation of ports, or its failure: invalid (the spec or count
// cannot be), conflict (the ports are taken or the range is used up), policy (an allocator
// plugin refused), vetoed (a starting hook refused).
func (d *Daemon) countAllocation(err error, stage string) {
	st := &d.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	if err == nil {
		st.allocOK++
		return
	}
	reason := stage
	var ce *ConflictError
	if stage == "pick" {
		reason = "policy"
		if errors.As(err, &ce) {
			reason = "conflict"
		} else if strings.Contains(err.Error(), "port spec") || strings.Contains(err.Error(), "instances") {
			reason = "invalid"
		}
	}
	if st.allocFail == nil {
		st.allocFail = map[string]uint64{}
	}
	st.allocFail[reason]++
}

// onHealth is the OnHealth of an instance of app: healthChecked with what the report lacks.
func (d *Daemon) onHealth(app string, index, port int) func(supervisor.HealthReport) {
	return func(rep supervisor.HealthReport) { d.healthChecked(app, index, port, rep) }
}

// healthChecked records one health check of an instance, and publishes its verdict when it
// changed (healthy, unhealthy). It runs on the instance's loop and never blocks.
func (d *Daemon) healthChecked(app string, index, port int, rep supervisor.HealthReport) {
	id := rep.ID
	st := &d.stats
	st.mu.Lock()
	if st.checks == nil {
		st.checks, st.checkTime = map[int]*checkStats{}, map[string]*histogram{}
	}
	cs := st.checks[id]
	if cs == nil {
		cs = &checkStats{}
		st.checks[id] = cs
	}
	if rep.OK {
		cs.pass++
	} else {
		cs.fail++
	}
	h := st.checkTime[app]
	if h == nil {
		h = &histogram{}
		st.checkTime[app] = h
	}
	h.observe(rep.Took.Seconds())
	changed := rep.Health != cs.health && (rep.Health == supervisor.HealthHealthy || rep.Health == supervisor.HealthUnhealthy)
	cs.health = rep.Health
	st.mu.Unlock()
	if changed {
		d.events.publish(api.Event{Kind: rep.Health, App: app, Instance: index, ID: id,
			Reason: rep.Error, Ports: portList(port)})
	}
}
