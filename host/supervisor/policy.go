package supervisor

import "time"

// MaxBackoff caps exponential backoff between unstable restarts.
const MaxBackoff = 15 * time.Second

// minUnstableDelay is the floor between unstable restarts, so that an app that dies at once
// with restart_delay 0 costs the daemon a few wakeups a second, never a busy loop.
const minUnstableDelay = 50 * time.Millisecond

// RestartPolicy says whether and when an instance that exited is started again.
type RestartPolicy struct {
	Autorestart  bool
	MaxRestarts  int           // unstable restarts allowed before errored
	MinUptime    time.Duration // a run shorter than this is unstable
	RestartDelay time.Duration
	ExpBackoff   time.Duration // initial exponential backoff; 0 disables it
}

// backoff is the part of the policy's decision that carries from one exit to the next.
type backoff struct {
	unstable int           // consecutive unstable exits
	next     time.Duration // next exponential delay
}

// decide returns whether to restart after a run of the given uptime, and after what delay.
func (p RestartPolicy) decide(uptime time.Duration, b *backoff) (bool, time.Duration) {
	if !p.Autorestart {
		return false, 0
	}
	stable := uptime >= p.MinUptime
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
