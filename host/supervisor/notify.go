package supervisor

import (
	"time"

	"github.com/pmdaemon/pmdaemon/host/notify"
)

// Notify takes what the instance's process said on NOTIFY_SOCKET (the daemon has checked the
// sender is one of its processes): READY=1 makes it ready, STOPPING=1 (the app has begun to
// shut down) makes it not ready again, STATUS= is kept for info, WATCHDOG=1 feeds the watchdog
// and WATCHDOG=trigger fails it at once. It never blocks.
func (l *Loop) Notify(m notify.Message) {
	if m.Ready || m.Stopping || m.Status != nil {
		l.mu.Lock()
		if l.st.Pid > 0 {
			if m.Ready {
				l.st.Ready = true
			}
			if m.Stopping {
				l.st.Ready, l.st.AppStopping = false, true
			}
			if m.Status != nil {
				l.st.StatusText = *m.Status
			}
			l.wakeLocked()
		}
		l.mu.Unlock()
	}
	if m.Watchdog {
		select {
		case l.pingCh <- struct{}{}:
		default: // a ping is pending already: one is as good as two
		}
	}
	if m.WatchdogTrigger {
		select {
		case l.trigCh <- struct{}{}:
		default: // one is pending already
		}
	}
}

// watchdog is a process's deadline for its next WATCHDOG=1; the zero value is disarmed.
type watchdog struct{ t *time.Timer }

// arm (re)starts the deadline; d <= 0 leaves it disarmed.
func (w *watchdog) arm(d time.Duration) {
	if d <= 0 {
		return
	}
	w.disarm()
	w.t = time.NewTimer(d)
}

func (w *watchdog) disarm() {
	if w.t != nil {
		w.t.Stop()
		w.t = nil
	}
}

func (w *watchdog) armed() bool { return w.t != nil }

// expired fires when the deadline passes; nil (never) when disarmed.
func (w *watchdog) expired() <-chan time.Time {
	if w.t == nil {
		return nil
	}
	return w.t.C
}
