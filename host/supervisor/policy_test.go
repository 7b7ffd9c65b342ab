package supervisor

import (
	"testing"
	"time"
)

func TestRestartPolicyDecide(t *testing.T) {
	const ms = time.Millisecond
	type step struct {
		uptime   time.Duration
		restart  bool
		delay    time.Duration
		unstable int // b.unstable after the call
	}
	tests := []struct {
		name   string
		policy RestartPolicy
		steps  []step
	}{
		{
			name:   "autorestart off",
			policy: RestartPolicy{Autorestart: false, MaxRestarts: 10, MinUptime: time.Second},
			steps: []step{
				{uptime: 10 * ms, restart: false, delay: 0},
				{uptime: time.Hour, restart: false, delay: 0},
			},
		},
		{
			name:   "stable run restarts at once and resets the unstable count",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 2, MinUptime: time.Second},
			steps: []step{
				{uptime: 10 * ms, restart: true, delay: minUnstableDelay, unstable: 1},
				{uptime: 10 * ms, restart: true, delay: minUnstableDelay, unstable: 2},
				{uptime: 2 * time.Second, restart: true, delay: 0, unstable: 0},
				{uptime: 10 * ms, restart: true, delay: minUnstableDelay, unstable: 1},
				{uptime: 10 * ms, restart: true, delay: minUnstableDelay, unstable: 2},
				{uptime: 10 * ms, restart: false, delay: 0, unstable: 3},
			},
		},
		{
			name:   "uptime equal to min_uptime is stable",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 0, MinUptime: time.Second},
			steps: []step{
				{uptime: time.Second, restart: true, delay: 0, unstable: 0},
				{uptime: time.Second - 1, restart: false, delay: 0, unstable: 1},
			},
		},
		{
			name:   "max_restarts 0 gives up on the first unstable exit",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 0, MinUptime: time.Second},
			steps: []step{
				{uptime: 0, restart: false, delay: 0, unstable: 1},
			},
		},
		{
			name:   "restart_delay on stable and unstable runs",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 5, MinUptime: time.Second, RestartDelay: 300 * ms},
			steps: []step{
				{uptime: 5 * time.Second, restart: true, delay: 300 * ms},
				{uptime: 10 * ms, restart: true, delay: 300 * ms, unstable: 1},
				{uptime: 10 * ms, restart: true, delay: 300 * ms, unstable: 2},
			},
		},
		{
			name:   "unstable restart never below 100ms",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 5, MinUptime: time.Second, RestartDelay: 10 * ms},
			steps: []step{
				{uptime: 0, restart: true, delay: 100 * ms, unstable: 1},
				{uptime: 5 * time.Second, restart: true, delay: 10 * ms, unstable: 0},
			},
		},
		{
			name: "exp backoff grows x1.5 per unstable restart and resets after a stable run",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 100, MinUptime: time.Second,
				RestartDelay: 5 * time.Second, ExpBackoff: 100 * ms},
			steps: []step{
				{uptime: 10 * ms, restart: true, delay: 100 * ms, unstable: 1},
				{uptime: 10 * ms, restart: true, delay: 150 * ms, unstable: 2},
				{uptime: 10 * ms, restart: true, delay: 225 * ms, unstable: 3},
				{uptime: 10 * ms, restart: true, delay: 337500 * time.Microsecond, unstable: 4},
				{uptime: 2 * time.Second, restart: true, delay: 100 * ms, unstable: 0},
				{uptime: 10 * ms, restart: true, delay: 100 * ms, unstable: 1},
				{uptime: 10 * ms, restart: true, delay: 150 * ms, unstable: 2},
			},
		},
		{
			name: "exp backoff is capped at 15s",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 100, MinUptime: time.Minute,
				ExpBackoff: 6 * time.Second},
			steps: []step{
				{uptime: 0, restart: true, delay: 6 * time.Second, unstable: 1},
				{uptime: 0, restart: true, delay: 9 * time.Second, unstable: 2},
				{uptime: 0, restart: true, delay: 13500 * ms, unstable: 3},
				{uptime: 0, restart: true, delay: 15 * time.Second, unstable: 4},
				{uptime: 0, restart: true, delay: 15 * time.Second, unstable: 5},
				{uptime: time.Hour, restart: true, delay: 6 * time.Second, unstable: 0},
				{uptime: 0, restart: true, delay: 6 * time.Second, unstable: 1},
			},
		},
		{
			name: "small exp backoff still respects the 100ms floor",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 100, MinUptime: time.Second,
				ExpBackoff: 20 * ms},
			steps: []step{
				{uptime: 0, restart: true, delay: 100 * ms, unstable: 1}, // 20ms
				{uptime: 0, restart: true, delay: 100 * ms, unstable: 2}, // 30ms
				{uptime: 0, restart: true, delay: 100 * ms, unstable: 3}, // 45ms
				{uptime: 0, restart: true, delay: 100 * ms, unstable: 4}, // 67.5ms
				{uptime: 0, restart: true, delay: 101250 * time.Microsecond, unstable: 5},
			},
		},
		{
			name:   "min_uptime 0: a run under 1s is still unstable, paced and ends errored",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: 0},
			steps: []step{
				{uptime: 0, restart: true, delay: 100 * ms, unstable: 1},
				{uptime: 1 * ms, restart: true, delay: 100 * ms, unstable: 2},
				{uptime: 999 * ms, restart: true, delay: 100 * ms, unstable: 3},
				{uptime: 0, restart: false, delay: 0, unstable: 4},
			},
		},
		{
			name:   "min_uptime 0: a run of 1s is stable and restarts at once",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: 0},
			steps: []step{
				{uptime: 10 * ms, restart: true, delay: 100 * ms, unstable: 1},
				{uptime: time.Second, restart: true, delay: 0, unstable: 0},
			},
		},
		{
			name:   "min_uptime 300ms: a 500ms run is unstable",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 1, MinUptime: 300 * ms, RestartDelay: 20 * ms},
			steps: []step{
				{uptime: 500 * ms, restart: true, delay: 100 * ms, unstable: 1},
				{uptime: 500 * ms, restart: false, delay: 0, unstable: 2},
			},
		},
		{
			name:   "min_uptime above the floor is kept",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 1, MinUptime: 3 * time.Second},
			steps: []step{
				{uptime: 2 * time.Second, restart: true, delay: 100 * ms, unstable: 1},
				{uptime: 3 * time.Second, restart: true, delay: 0, unstable: 0},
			},
		},
		{
			name: "exp backoff gives up at max_restarts",
			policy: RestartPolicy{Autorestart: true, MaxRestarts: 2, MinUptime: time.Second,
				ExpBackoff: 100 * ms},
			steps: []step{
				{uptime: 0, restart: true, delay: 100 * ms, unstable: 1},
				{uptime: 0, restart: true, delay: 150 * ms, unstable: 2},
				{uptime: 0, restart: false, delay: 0, unstable: 3},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b backoff
			for i, s := range tt.steps {
				restart, delay := tt.policy.decide(s.uptime, &b)
				if restart != s.restart || delay != s.delay {
					t.Fatalf("step %d (uptime %v): decide = %v, %v; want %v, %v", i, s.uptime, restart, delay, s.restart, s.delay)
				}
				if tt.policy.Autorestart && b.unstable != s.unstable {
					t.Fatalf("step %d: unstable count = %d, want %d", i, b.unstable, s.unstable)
				}
				if b.next > MaxBackoff && b.next > tt.policy.ExpBackoff {
					t.Fatalf("step %d: next backoff %v above the cap", i, b.next)
				}
			}
		})
	}
}

// A long crash loop with any policy never restarts faster than every 100ms and never waits
// more than max(restart_delay, 15s, initial backoff).
func TestRestartPolicyBounds(t *testing.T) {
	for _, p := range []RestartPolicy{
		{Autorestart: true, MaxRestarts: 1000, MinUptime: time.Second},
		{Autorestart: true, MaxRestarts: 1000, MinUptime: 0},
		{Autorestart: true, MaxRestarts: 1000, MinUptime: time.Nanosecond, RestartDelay: time.Nanosecond},
		{Autorestart: true, MaxRestarts: 1000, MinUptime: time.Second, ExpBackoff: time.Millisecond},
		{Autorestart: true, MaxRestarts: 1000, MinUptime: time.Second, ExpBackoff: 700 * time.Millisecond},
		{Autorestart: true, MaxRestarts: 1000, MinUptime: time.Second, RestartDelay: time.Millisecond},
	} {
		var b backoff
		for i := range 1000 {
			restart, delay := p.decide(0, &b)
			if !restart {
				t.Fatalf("%+v: gave up at unstable exit %d", p, i+1)
			}
			if delay < minUnstableDelay || delay > max(MaxBackoff, p.RestartDelay) {
				t.Fatalf("%+v: unstable exit %d: delay %v out of bounds", p, i+1, delay)
			}
		}
		if restart, _ := p.decide(0, &b); restart {
			t.Fatalf("%+v: restarted after %d unstable exits", p, p.MaxRestarts+1)
		}
	}
}

// Whatever the settings and however long a run lasted, the next spawn of an instance comes at
// least 100ms after the previous one (run + delay), and runs under 1s in a row end errored
// after max_restarts: no setting makes the daemon spawn in a busy loop.
func TestRestartPolicyPacingFloor(t *testing.T) {
	const ms = time.Millisecond
	uptimes := []time.Duration{0, time.Nanosecond, ms, 50 * ms, 99 * ms, 100 * ms, 500 * ms, 999 * ms, time.Second, time.Minute}
	for _, minUptime := range []time.Duration{0, time.Nanosecond, ms, 500 * ms, time.Second, 5 * time.Second} {
		for _, delay := range []time.Duration{0, time.Nanosecond, 10 * ms, 200 * ms} {
			for _, exp := range []time.Duration{0, time.Nanosecond, 30 * ms} {
				p := RestartPolicy{Autorestart: true, MaxRestarts: 5, MinUptime: minUptime, RestartDelay: delay, ExpBackoff: exp}
				for _, u := range uptimes {
					var b backoff
					restart, d := p.decide(u, &b)
					if !restart {
						t.Fatalf("%+v: no restart after one run of %v", p, u)
					}
					if u+d < minUnstableDelay {
						t.Errorf("%+v: run of %v restarted after %v: next spawn %v after the last, under %v", p, u, d, u+d, minUnstableDelay)
					}
				}
				var b backoff
				for i := 0; ; i++ {
					restart, _ := p.decide(MinStableRun-time.Nanosecond, &b)
					if !restart {
						if i != p.MaxRestarts {
							t.Errorf("%+v: gave up after %d short runs, want %d", p, i+1, p.MaxRestarts+1)
						}
						break
					}
					if i > p.MaxRestarts {
						t.Fatalf("%+v: still restarting after %d runs shorter than %v", p, i+1, MinStableRun)
					}
				}
			}
		}
	}
}

func TestRestartPolicyGaveUpReason(t *testing.T) {
	tests := []struct {
		policy RestartPolicy
		want   string
	}{
		{RestartPolicy{MaxRestarts: 15, MinUptime: time.Second}, "exited 16 times within min_uptime 1s; gave up after max_restarts 15"},
		{RestartPolicy{MaxRestarts: 2, MinUptime: 5 * time.Second}, "exited 3 times within min_uptime 5s; gave up after max_restarts 2"},
		{RestartPolicy{MaxRestarts: 15, MinUptime: 0},
			"exited 16 times within 1s of starting (min_uptime 0s; a run under 1s is never stable); gave up after max_restarts 15"},
	}
	for _, tt := range tests {
		if got := tt.policy.gaveUp(tt.policy.MaxRestarts + 1); got != tt.want {
			t.Errorf("gaveUp = %q\nwant     %q", got, tt.want)
		}
	}
}
