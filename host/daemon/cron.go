package daemon

import (
	"time"

	"github.com/robfig/cron/v3"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// cronEntry is one app's cron_restart schedule and its next time.
type cronEntry struct {
	expr  string
	sched cron.Schedule
	next  time.Time
}

// cronLoop restarts the apps that have cron_restart at their times. It looks at the apps
// every tick, so an app started, changed or deleted is scheduled anew within one tick; a
// time is honoured within one tick too.
func (d *Daemon) cronLoop(tick time.Duration) {
	defer d.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	entries := map[string]*cronEntry{}
	for {
		select {
		case <-d.quit:
			return
		case <-t.C:
		}
		d.cronTick(entries, time.Now())
	}
}

// cronTick brings entries in line with the apps' cron_restart keys and fires those due.
func (d *Daemon) cronTick(entries map[string]*cronEntry, now time.Time) {
	exprs := d.cronExprs()
	for name, e := range entries {
		if exprs[name] != e.expr {
			delete(entries, name)
		}
	}
	for name, expr := range exprs {
		e := entries[name]
		if e == nil {
			sched, err := config.ParseCron(expr) // validated at start: cannot fail here
			if err != nil {
				continue
			}
			entries[name] = &cronEntry{expr: expr, sched: sched, next: sched.Next(now)}
			continue
		}
		if now.Before(e.next) {
			continue
		}
		e.next = e.sched.Next(now)
		d.restartRunning(name, "cron_restart "+expr)
	}
}

// cronExprs are the cron_restart expressions of the apps that have one.
func (d *Daemon) cronExprs() map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]string{}
	for name, a := range d.apps {
		if a.cfg.CronRestart != "" {
			out[name] = a.cfg.CronRestart
		}
	}
	return out
}

// restartRunning restarts every running instance of app name through its supervision loop,
// as max_memory_restart does: the restart is counted and reason is shown by info. An
// instance stopped, errored or between processes is left as it is.
func (d *Daemon) restartRunning(name, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.apps[name]
	if a == nil {
		return
	}
	for _, s := range a.slots {
		if s.loop == nil || !s.wanted || s.restarting || s.transient {
			continue
		}
		if st := s.loop.State(); (st.Status == supervisor.Online || st.Status == supervisor.Starting) && st.Pid > 0 {
			d.logger.Printf("%s[%d] (id %d): restarting: %s", name, s.index, s.id, reason)
			s.loop.Restart(reason)
		}
	}
}
