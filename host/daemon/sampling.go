package daemon

import (
	"fmt"
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
	// scrapeSampleAge is the oldest sample a scrape takes as it is; older ones (no scrape for
	// scrapeWarm) are measured afresh first, as is an instance started since the last measure.
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

// freshMetrics gives every running instance a sample at most a second old for list and info.
// CPU is then the average since the previous measure. d.mu must not be held.
func (d *Daemon) freshMetrics() { d.freshMetricsWithin(time.Second) }

// freshMetricsWithin measures every running instance unless they were all measured less than
// maxAge ago; then only the instances started or restarted since (a pid not measured yet) are.
// Re-measuring all of them whenever one had changed made a list during a batch of starts cost
// in proportion to everything running: 500 apps started beside 4000, polled by list, measured
// the 4000 on every poll.
func (d *Daemon) freshMetricsWithin(maxAge time.Duration) {
	d.sampleMu.Lock()
	defer d.sampleMu.Unlock()
	roots, groups, _ := d.roots(false)
	if time.Since(d.sampled) >= maxAge {
		d.sampler.Sample(roots, groups, true)
		d.sampled, d.sampledRoots = time.Now(), roots
		return
	}
	changed := map[int]int{}
	for id, pid := range roots {
		if d.sampledRoots[id] != pid {
			changed[id] = pid
		}
	}
	if len(changed) > 0 {
		d.sampler.Sample(changed, groups, false)
	}
	d.sampledRoots = roots
}
