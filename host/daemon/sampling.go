package daemon

import (
	"fmt"
	"maps"
	"time"

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
