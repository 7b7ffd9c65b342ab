package daemon

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pmdaemon/pmdaemon/host/metrics"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// The /metrics route: a Prometheus collector that reads the daemon's state at scrape time, so
// the metrics are as fresh as a list and cost nothing between scrapes. Labels name an instance
// by app, instance (its index) and id, never by pid: a pid changes at every restart and would
// make a new series each time.

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
