package daemon

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/metrics"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// metricsLoop enforces memory limits: every tick it measures the instances whose app has
// max_memory_restart and restarts those over it. Everything else is measured when someone
// looks (list, info), so an idle daemon with no limits does no sampling at all; except while
// /metrics is scraped (within scrapeWarm of the last scrape), when every tick measures every
// instance, so that a scrape reads a sample at most a tick old rather than waiting for one
// cgroup read per instance (1000 instances: over 100 ms of reads).
func (d *Daemon) metricsLoop(every time.Duration) {
	defer d.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.quit:
			return
		case <-t.C:
		}
		d.enforceMemoryLimits()
		if last := d.scraped.Load(); last != 0 && time.Since(time.Unix(0, last)) < scrapeWarm {
			d.freshMetricsWithin(every / 2)
		}
	}
}

const (
	// scrapeWarm is how long after a scrape the metrics loop keeps every instance's sample
	// fresh: longer than any sensible scrape interval (Prometheus's default is 15 s).
	scrapeWarm = 2 * time.Minute
	// scrapeSampleAge is the oldest sample a scrape takes as it is; an older one (no scrape
	// for scrapeWarm, or the instances changed) is measured afresh first.
	scrapeSampleAge = 5 * time.Second
)

type limited struct {
	loop  *supervisor.Loop
	limit int64
	name  string
	index int
}

// roots lists running instances (id -> pid) and the cgroups of those that have one; with
// onlyLimited, those with a memory limit.
func (d *Daemon) roots(onlyLimited bool) (map[int]int, map[int]string, map[int]limited) {
	roots := map[int]int{}
	groups := map[int]string{}
	limits := map[int]limited{}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.apps {
		for _, s := range a.slots {
			st := s.state()
			if st.Pid <= 0 {
				continue
			}
			if a.cfg.MaxMemoryRestart > 0 && s.loop != nil {
				limits[s.id] = limited{s.loop, a.cfg.MaxMemoryRestart, a.cfg.Name, s.index}
			} else if onlyLimited {
				continue
			}
			roots[s.id] = st.Pid
			if p := d.cgroupOf(s); p != "" {
				groups[s.id] = p
			}
		}
	}
	return roots, groups, limits
}

// enforceMemoryLimits restarts every instance whose process tree uses more memory than its
// app's max_memory_restart.
func (d *Daemon) enforceMemoryLimits() {
	roots, groups, limits := d.roots(true)
	if len(roots) == 0 {
		return
	}
	d.sampler.Sample(roots, groups, false)
	for id, l := range limits {
		if rss := d.sampler.Get(id).Memory; int64(rss) > l.limit {
			reason := fmt.Sprintf("memory %d bytes exceeded max_memory_restart %d bytes; restarted at %s",
				rss, l.limit, time.Now().Format(time.RFC3339))
			d.logger.Printf("%s[%d] (id %d): %s", l.name, l.index, id, reason)
			l.loop.Restart(reason)
		}
	}
}

// freshMetrics measures every running instance for list and info, unless the same processes
// were measured less than a second ago. CPU is then the average since the previous measure.
// d.mu must not be held.
func (d *Daemon) freshMetrics() { d.freshMetricsWithin(time.Second) }

// freshMetricsWithin measures every running instance unless the same processes were measured
// less than maxAge ago.
func (d *Daemon) freshMetricsWithin(maxAge time.Duration) {
	d.sampleMu.Lock()
	defer d.sampleMu.Unlock()
	roots, groups, _ := d.roots(false)
	if time.Since(d.sampled) < maxAge && maps.Equal(roots, d.sampledRoots) {
		return
	}
	d.sampler.Sample(roots, groups, true)
	d.sampled, d.sampledRoots = time.Now(), roots
}

// The /metrics route: a Prometheus collector that reads the daemon's state at scrape time, so
// the metrics are as fresh as a list and cost nothing between scrapes. Labels name an instance
// by app, instance (its index) and id, never by pid: a pid changes at every restart and would
// make a new series each time.

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

var (
	instLabels = []string{"app", "instance", "id"}

	descUp = prometheus.NewDesc("pmdaemon_instance_up",
		"1 when the instance's process runs and is online, else 0.", instLabels, nil)
	descStatus = prometheus.NewDesc("pmdaemon_instance_status",
		"1 for the instance's status now (online, starting, stopping, stopped, errored, waiting-restart).", append(instLabels, "status"), nil)
	descRestarts = prometheus.NewDesc("pmdaemon_instance_restarts_total",
		"Restarts of the instance since the daemon started, by cause (crash, exit, watchdog, health, memory, cron, watch, requested, restore, rollback).",
		append(instLabels, "reason"), nil)
	descCPU = prometheus.NewDesc("pmdaemon_instance_cpu_seconds_total",
		"CPU time (user and system) the instance's processes used: its cgroup's, or its process tree's now.", instLabels, nil)
	descMemory = prometheus.NewDesc("pmdaemon_instance_memory_bytes",
		"Memory of the instance: its cgroup's memory.current, or its process tree's resident memory.", instLabels, nil)
	descStart = prometheus.NewDesc("pmdaemon_instance_start_time_seconds",
		"When the instance's process started, in seconds since the Unix epoch.", instLabels, nil)
	descPort = prometheus.NewDesc("pmdaemon_instance_port_info",
		"1 for the port the instance was given.", append(instLabels, "port"), nil)
	descHealthy = prometheus.NewDesc("pmdaemon_instance_healthy",
		"1 when the instance's health check passes, 0 while checking or unhealthy; absent without a check.", instLabels, nil)
	descChecks = prometheus.NewDesc("pmdaemon_health_checks_total",
		"Health checks of the instance since the daemon started, by result (pass, fail).", append(instLabels, "result"), nil)
	descCheckTime = prometheus.NewDesc("pmdaemon_health_check_duration_seconds",
		"How long the health checks of the app's instances took.", []string{"app"}, nil)
	descAllocs = prometheus.NewDesc("pmdaemon_port_allocations_total",
		"Port allocations that succeeded since the daemon started (one per app per operation).", nil, nil)
	descAllocFails = prometheus.NewDesc("pmdaemon_port_allocation_failures_total",
		"Port allocations refused since the daemon started, by reason (invalid, conflict, policy, vetoed).", []string{"reason"}, nil)
	descAssigned = prometheus.NewDesc("pmdaemon_ports_assigned",
		"Ports assigned to apps now.", nil, nil)
	descApps = prometheus.NewDesc("pmdaemon_apps",
		"Apps the daemon manages.", nil, nil)
	descStreams = prometheus.NewDesc("pmdaemon_streams",
		"Event and log streams open now.", nil, nil)
	descDropped = prometheus.NewDesc("pmdaemon_stream_dropped_total",
		"Events and log lines streams lost because their clients read too slowly.", nil, nil)
)

// instanceSnap is what a scrape reads of one instance under d.mu.
type instanceSnap struct {
	app        string
	index, id  int
	port       int
	st         supervisor.State
	sample     metrics.Sample
	hasHealth  bool
	labelIndex string
	labelID    string
}

// promCollector is the daemon's state as Prometheus metrics.
type promCollector struct{ d *Daemon }

func (c promCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descStatus, descRestarts, descCPU, descMemory, descStart, descPort,
		descHealthy, descChecks, descCheckTime, descAllocs, descAllocFails, descAssigned, descApps, descStreams, descDropped} {
		ch <- d
	}
}

func (c promCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	d.scraped.Store(time.Now().UnixNano())
	d.freshMetricsWithin(scrapeSampleAge)
	snaps, apps, assigned := d.scrapeSnapshot()
	ids := make(map[int]bool, len(snaps))
	appNames := make(map[string]bool, apps)
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, labels...)
	}
	for i := range snaps {
		s := &snaps[i]
		ids[s.id] = true
		appNames[s.app] = true
		up := 0.0
		if s.st.Status == supervisor.Online && s.st.Pid > 0 {
			up = 1
		}
		gauge(descUp, up, s.app, s.labelIndex, s.labelID)
		gauge(descStatus, 1, s.app, s.labelIndex, s.labelID, string(s.st.Status))
		if s.port > 0 {
			gauge(descPort, 1, s.app, s.labelIndex, s.labelID, strconv.Itoa(s.port))
		}
		if s.st.Pid > 0 {
			counter(descCPU, s.sample.CPUTime.Seconds(), s.app, s.labelIndex, s.labelID)
			gauge(descMemory, float64(s.sample.Memory), s.app, s.labelIndex, s.labelID)
			if !s.st.StartedAt.IsZero() {
				gauge(descStart, float64(s.st.StartedAt.UnixNano())/1e9, s.app, s.labelIndex, s.labelID)
			}
			if s.hasHealth && s.st.Health != "" {
				healthy := 0.0
				if s.st.Health == supervisor.HealthHealthy {
					healthy = 1
				}
				gauge(descHealthy, healthy, s.app, s.labelIndex, s.labelID)
			}
		}
	}
	st := &d.stats
	st.mu.Lock()
	for i := range snaps {
		s := &snaps[i]
		byCause := st.restarts[s.id]
		// crash is always there, so that rate() sees the first crash of an instance.
		counter(descRestarts, float64(byCause[causeCrash]), s.app, s.labelIndex, s.labelID, causeCrash)
		for cause, n := range byCause {
			if cause != causeCrash {
				counter(descRestarts, float64(n), s.app, s.labelIndex, s.labelID, cause)
			}
		}
		if cs := st.checks[s.id]; cs != nil && s.hasHealth {
			counter(descChecks, float64(cs.pass), s.app, s.labelIndex, s.labelID, "pass")
			counter(descChecks, float64(cs.fail), s.app, s.labelIndex, s.labelID, "fail")
		}
	}
	for app, h := range st.checkTime {
		if appNames[app] {
			ch <- prometheus.MustNewConstHistogram(descCheckTime, h.n, h.sum, h.cumulative(), app)
		}
	}
	counter(descAllocs, float64(st.allocOK))
	for _, reason := range []string{"invalid", "conflict", "policy", "vetoed"} {
		counter(descAllocFails, float64(st.allocFail[reason]), reason)
	}
	st.pruneLocked(ids, appNames)
	st.mu.Unlock()
	gauge(descAssigned, float64(assigned))
	gauge(descApps, float64(apps))
	gauge(descStreams, float64(d.events.streams.Load()))
	counter(descDropped, float64(d.events.dropped.Load()))
}

// pruneLocked forgets the counts of instances and apps that are gone.
func (st *daemonStats) pruneLocked(ids map[int]bool, apps map[string]bool) {
	for id := range st.restarts {
		if !ids[id] {
			delete(st.restarts, id)
		}
	}
	for id := range st.checks {
		if !ids[id] {
			delete(st.checks, id)
		}
	}
	for app := range st.checkTime {
		if !apps[app] {
			delete(st.checkTime, app)
		}
	}
}

// scrapeSnapshot copies what a scrape needs of every instance, holding d.mu once and briefly.
func (d *Daemon) scrapeSnapshot() (snaps []instanceSnap, apps, assigned int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range d.order {
		a := d.apps[name]
		hasHealth := a.cfg.HealthCheck != nil
		for _, s := range a.slots {
			snaps = append(snaps, instanceSnap{
				app: name, index: s.index, id: s.id, port: s.port, st: s.state(), sample: d.sampler.Get(s.id),
				hasHealth: hasHealth, labelIndex: strconv.Itoa(s.index), labelID: strconv.Itoa(s.id),
			})
		}
	}
	return snaps, len(d.order), len(d.reg.Assigned())
}

// metricsHandler serves /metrics: the collector above with the daemon's own Go runtime and
// process metrics, made once per daemon.
func (d *Daemon) metricsHandler() http.Handler {
	d.promOnce.Do(func() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(promCollector{d}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		d.promHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: 4})
	})
	return d.promHandler
}
