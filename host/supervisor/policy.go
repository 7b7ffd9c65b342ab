package supervisor

import (
	"fmt"
	"slices"
	"time"
)

// MaxBackoff caps exponential backoff between unstable restarts.
const MaxBackoff = 15 * time.Second

// The floor on restart pacing, whatever the settings (docs/behaviour.md, "Restarts"):
//   - a run shorter than MinStableRun is unstable even when min_uptime is shorter, so an app
//     that exits at once ends errored after max_restarts whatever min_uptime says;
//   - an unstable restart waits at least minUnstableDelay, whatever restart_delay says.
//
// So an instance is spawned at most once per minUnstableDelay (a stable run lasted at least
// MinStableRun): an app that exits at once costs the daemon a few spawns a second, never a busy
// loop, while a crash after a stable run (kill -9 of a healthy instance) is restarted at once.
const (
	MinStableRun     = time.Second
	minUnstableDelay = 100 * time.Millisecond
)

// RestartPolicy says whether and when an instance that exited is started again.
type RestartPolicy struct {
	Autorestart  bool
	MaxRestarts  int           // unstable restarts allowed before errored
	MinUptime    time.Duration // a run shorter than this (or than MinStableRun) is unstable
	RestartDelay time.Duration
	ExpBackoff   time.Duration // initial exponential backoff; 0 disables it
	// StopExitCodes are exit codes (128+signal for a signal) that end the instance, as PM2's
	// stop_exit_codes: it is stopped, not restarted.
	StopExitCodes []int
}

// stopsOn reports whether exit code ends the instance without a restart.
func (p RestartPolicy) stopsOn(code int) bool {
	return slices.Contains(p.StopExitCodes, code)
}

// backoff is the part of the policy's decision that carries from one exit to the next.
type backoff struct {
	unstable int           // consecutive unstable exits
	next     time.Duration // next exponential delay
}

// stableAfter is the uptime from which a run is stable: min_uptime, but never under
// MinStableRun.
func (p RestartPolicy) stableAfter() time.Duration {
	return max(p.MinUptime, MinStableRun)
}

// gaveUp is the reason of an instance errored after unstable exits in a row.
func (p RestartPolicy) gaveUp(unstable int) string {
	if p.MinUptime < MinStableRun {
		return fmt.Sprintf("exited %d times within %s of starting (min_uptime %s; a run under %s is never stable); gave up after max_restarts %d",
			unstable, MinStableRun, p.MinUptime, MinStableRun, p.MaxRestarts)
	}
	return fmt.Sprintf("exited %d times within min_uptime %s; gave up after max_restarts %d", unstable, p.MinUptime, p.MaxRestarts)
}

// decide returns whether to restart after a run of the given uptime, and after what delay.
func (p RestartPolicy) decide(uptime time.Duration, b *backoff) (bool, time.Duration) {
	if !p.Autorestart {
		return false, 0
	}
	stable := uptime >= p.stableAfter()
	if stable {
		b.unstable = 0
		b.next = p.ExpBackoff
	} else {
		b.unstable++
		if b.unstable > p.MaxRestarts {
			return false, 0
		}
	}
	delay := p.RestartDelay
	if p.ExpBackoff > 0 {
		if b.next == 0 {
			b.next = p.ExpBackoff
		}
		delay = b.next
		if !stable {
			b.next = min(b.next*3/2, MaxBackoff)
		}
	}
	if !stable && delay < minUnstableDelay {
		delay = minUnstableDelay
	}
	return true, delay
}
