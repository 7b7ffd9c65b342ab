package supervisor

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/procfs"
)

// harness starts loops with a notify channel so that tests wait for state changes.
type harness struct {
	t      *testing.T
	notify chan struct{}
	dir    string
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, notify: make(chan struct{}, 1), dir: t.TempDir()}
}

func (h *harness) spec(policy RestartPolicy, killTimeout time.Duration, argv ...string) Spec {
	return Spec{
		ID: 0, App: "test", Argv: argv, Dir: h.dir,
		OutLog: filepath.Join(h.dir, "out.log"), ErrLog: filepath.Join(h.dir, "err.log"),
		Policy: policy, KillTimeout: killTimeout,
	}
}

func (h *harness) start(spec Spec, restarts int, adopt *Adopt) *Loop {
	in := Start(spec, restarts, adopt, func(Change) {
		select {
		case h.notify <- struct{}{}:
		default:
		}
	})
	h.t.Cleanup(in.Stop)
	return in
}

// wait polls the loop's state until cond holds or the deadline passes.
func (h *harness) wait(in *Loop, what string, cond func(State) bool) State {
	h.t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st := in.State()
		if cond(st) {
			return st
		}
		select {
		case <-h.notify:
		case <-tick.C:
		case <-deadline.C:
			h.t.Fatalf("timed out waiting for %s; state %+v", what, in.State())
		}
	}
}

// poll waits for cond with a deadline.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// liveInGroup lists the processes of group pgid that are not zombies.
func liveInGroup(pgid int) []int {
	all, _ := procfs.All()
	var out []int
	for _, st := range all {
		if st.Pgid == pgid && !st.Zombie() {
			out = append(out, st.Pid)
		}
	}
	return out
}

func comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

func online(st State) bool { return st.Status == Online && st.Pid > 0 }

func TestInstanceOnlineAndStop(t *testing.T) {
	h := newHarness(t)
	in := h.start(h.spec(RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: time.Second}, 2*time.Second,
		"sleep", "1000"), 0, nil)
	select {
	case <-in.Spawned():
	case <-time.After(15 * time.Second):
		t.Fatal("Spawned not closed")
	}
	st := h.wait(in, "online", online)
	if st.PidStart == 0 || !Alive(st.Pid, st.PidStart) {
		t.Fatalf("online with pid %d start %d, but that process is not alive", st.Pid, st.PidStart)
	}
	if st.StartedAt.IsZero() || time.Since(st.StartedAt) > time.Minute {
		t.Fatalf("StartedAt = %v", st.StartedAt)
	}
	if st.Restarts != 0 {
		t.Fatalf("Restarts = %d, want 0", st.Restarts)
	}
	if got := in.Spec().Argv; len(got) != 2 || got[0] != "sleep" {
		t.Fatalf("Spec().Argv = %q", got)
	}
	if pgid, err := syscall.Getpgid(st.Pid); err != nil || pgid != st.Pid {
		t.Fatalf("child runs in group %d (err %v), want its own group %d", pgid, err, st.Pid)
	}

	in.Stop()
	select {
	case <-in.Done():
	default:
		t.Fatal("Done not closed after Stop returned")
	}
	after := in.State()
	if after.Status != Stopped || after.Pid != 0 || after.PidStart != 0 {
		t.Fatalf("after Stop: %+v, want stopped with no pid", after)
	}
	if after.ExitCode != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code %d, want %d (SIGTERM)", after.ExitCode, 128+int(syscall.SIGTERM))
	}
	if Alive(st.Pid, st.PidStart) {
		t.Fatalf("pid %d still alive after Stop", st.Pid)
	}
	if left := liveInGroup(st.Pid); len(left) != 0 {
		t.Fatalf("processes %v left in group %d", left, st.Pid)
	}
	in.Stop() // idempotent
}

func TestInstanceRestartsAfterSIGKILL(t *testing.T) {
	tests := []struct {
		name   string
		policy RestartPolicy
	}{
		{"unstable run", RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: time.Minute}},
		{"stable run", RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: 0}},
		{"with exp backoff", RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: time.Minute, ExpBackoff: 100 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			in := h.start(h.spec(tt.policy, 2*time.Second, "sleep", "1000"), 0, nil)
			first := h.wait(in, "online", online)
			if err := syscall.Kill(first.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			second := h.wait(in, "restarted with a new pid", func(s State) bool {
				return online(s) && s.Pid != first.Pid
			})
			if second.Restarts != 1 {
				t.Errorf("Restarts = %d, want 1", second.Restarts)
			}
			if second.ExitCode != 128+int(syscall.SIGKILL) {
				t.Errorf("ExitCode = %d, want %d", second.ExitCode, 128+int(syscall.SIGKILL))
			}
			if Alive(first.Pid, first.PidStart) {
				t.Errorf("first process %d still alive", first.Pid)
			}
			if !Alive(second.Pid, second.PidStart) {
				t.Errorf("new process %d not alive", second.Pid)
			}
			in.Stop()
			if Alive(second.Pid, second.PidStart) {
				t.Errorf("process %d alive after Stop", second.Pid)
			}
		})
	}
}

func TestInstanceGivesUp(t *testing.T) {
	tests := []struct {
		name         string
		argv         []string
		policy       RestartPolicy
		wantStatus   Status
		wantRestarts int
		wantCode     int
		wantReason   []string
	}{
		{
			name:         "exit 3 with max_restarts 2",
			argv:         []string{"bash", "-c", "exit 3"},
			policy:       RestartPolicy{Autorestart: true, MaxRestarts: 2, MinUptime: time.Second},
			wantStatus:   Errored,
			wantRestarts: 2,
			wantCode:     3,
			wantReason:   []string{"max_restarts 2"},
		},
		{
			name:         "exit 3 with autorestart off",
			argv:         []string{"bash", "-c", "exit 3"},
			policy:       RestartPolicy{Autorestart: false, MaxRestarts: 2, MinUptime: time.Second},
			wantStatus:   Errored,
			wantRestarts: 0,
			wantCode:     3,
			wantReason:   []string{"exited with code 3", "autorestart off"},
		},
		{
			name:         "exit 0 with autorestart off",
			argv:         []string{"bash", "-c", "exit 0"},
			policy:       RestartPolicy{Autorestart: false},
			wantStatus:   Stopped,
			wantRestarts: 0,
			wantCode:     0,
		},
		{
			name:         "exit 0 listed in stop_exit_codes",
			argv:         []string{"bash", "-c", "exit 0"},
			policy:       RestartPolicy{Autorestart: true, MaxRestarts: 2, MinUptime: time.Second, StopExitCodes: []int{0, 143}},
			wantStatus:   Stopped,
			wantRestarts: 0,
			wantCode:     0,
			wantReason:   []string{"exited with code 0, one of stop_exit_codes"},
		},
		{
			name:         "SIGTERM (143) listed in stop_exit_codes",
			argv:         []string{"bash", "-c", "kill -TERM $$"},
			policy:       RestartPolicy{Autorestart: true, MaxRestarts: 2, MinUptime: time.Second, StopExitCodes: []int{0, 143}},
			wantStatus:   Stopped,
			wantRestarts: 0,
			wantCode:     143,
			wantReason:   []string{"code 143, one of stop_exit_codes"},
		},
		{
			name:         "exit 3 not in stop_exit_codes",
			argv:         []string{"bash", "-c", "exit 3"},
			policy:       RestartPolicy{Autorestart: true, MaxRestarts: 2, MinUptime: time.Second, StopExitCodes: []int{0, 143}},
			wantStatus:   Errored,
			wantRestarts: 2,
			wantCode:     3,
			wantReason:   []string{"max_restarts 2"},
		},
		{
			name:         "program that cannot start",
			argv:         []string{"/nonexistent/program"},
			policy:       RestartPolicy{Autorestart: true, MaxRestarts: 1, MinUptime: time.Second},
			wantStatus:   Errored,
			wantRestarts: 1,
			wantCode:     -1,
			wantReason:   []string{"max_restarts 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			in := h.start(h.spec(tt.policy, time.Second, tt.argv...), 0, nil)
			st := h.wait(in, string(tt.wantStatus), func(s State) bool { return s.Status == tt.wantStatus })
			if st.Restarts != tt.wantRestarts || st.ExitCode != tt.wantCode || st.Pid != 0 {
				t.Fatalf("state %+v; want restarts %d, exit code %d, no pid", st, tt.wantRestarts, tt.wantCode)
			}
			for _, sub := range tt.wantReason {
				if !strings.Contains(st.Reason, sub) {
					t.Errorf("reason %q does not contain %q", st.Reason, sub)
				}
			}
			if tt.wantReason == nil && st.Reason != "" {
				t.Errorf("reason %q, want none", st.Reason)
			}
			in.Stop()
			if s := in.State(); s.Status != Stopped {
				t.Fatalf("after Stop: %+v", s)
			}
		})
	}
}

func TestInstanceStopKillsWholeGroup(t *testing.T) {
	tests := []struct {
		name        string
		script      string // $F is where the child's pid goes
		killTimeout time.Duration
		waitsKill   bool // Stop must wait out kill_timeout
		wantCode    int
	}{
		{
			name:        "leader and child ignore SIGTERM",
			script:      `trap "" TERM; sleep 1000 & echo $! > "$F"; wait`,
			killTimeout: 300 * time.Millisecond,
			waitsKill:   true,
			wantCode:    128 + int(syscall.SIGKILL),
		},
		{
			name:        "leader exits, child ignores SIGTERM",
			script:      `(trap "" TERM; exec sleep 1000) & echo $! > "$F"; wait`,
			killTimeout: 300 * time.Millisecond,
			waitsKill:   true,
			wantCode:    128 + int(syscall.SIGTERM),
		},
		{
			name:        "group goes on SIGTERM",
			script:      `sleep 1000 & echo $! > "$F"; wait`,
			killTimeout: 5 * time.Second,
			wantCode:    128 + int(syscall.SIGTERM),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			pidFile := filepath.Join(h.dir, "child.pid")
			spec := h.spec(RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: time.Second}, tt.killTimeout,
				"bash", "-c", tt.script)
			spec.Env = append(os.Environ(), "F="+pidFile)
			in := h.start(spec, 0, nil)
			st := h.wait(in, "online", online)
			var child int
			poll(t, "the child's pid", func() bool {
				b, _ := os.ReadFile(pidFile)
				child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				return child > 0
			})
			// Wait until the child is sleep itself, its SIGTERM disposition in place.
			poll(t, "the child to exec sleep", func() bool { return comm(child) == "sleep" })
			childStart, err := StartTime(child)
			if err != nil {
				t.Fatal(err)
			}
			if pgid, _ := syscall.Getpgid(child); pgid != st.Pid {
				t.Fatalf("child %d is in group %d, want %d", child, pgid, st.Pid)
			}

			t0 := time.Now()
			in.Stop()
			took := time.Since(t0)

			if left := liveInGroup(st.Pid); len(left) != 0 {
				for _, p := range left {
					syscall.Kill(p, syscall.SIGKILL)
				}
				t.Fatalf("processes %v left alive in group %d after Stop", left, st.Pid)
			}
			if Alive(child, childStart) {
				syscall.Kill(child, syscall.SIGKILL)
				t.Fatalf("child %d alive after Stop", child)
			}
			if Alive(st.Pid, st.PidStart) {
				t.Fatalf("leader %d alive after Stop", st.Pid)
			}
			after := in.State()
			if after.Status != Stopped || after.Pid != 0 {
				t.Fatalf("after Stop: %+v", after)
			}
			if after.ExitCode != tt.wantCode {
				t.Errorf("exit code %d, want %d", after.ExitCode, tt.wantCode)
			}
			if tt.waitsKill && took < tt.killTimeout {
				t.Errorf("Stop took %v, less than kill_timeout %v, with a process ignoring SIGTERM", took, tt.killTimeout)
			}
			if !tt.waitsKill && took > 2*time.Second {
				t.Errorf("Stop took %v for a group that exits on SIGTERM", took)
			}
		})
	}
}

// orphan is `sleep 1000` started in its own process group, as an earlier daemon would have.
// The test reaps it in the background (it is the test's child) and kills it at the end.
type orphan struct {
	pid   int
	start uint64
	done  chan struct{} // closed once reaped
	err   error         // cmd.Wait's result, set before done is closed
}

func startOrphanLike(t *testing.T) *orphan {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	o := &orphan{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		o.err = cmd.Wait()
		close(o.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-o.done:
		case <-time.After(10 * time.Second):
			t.Errorf("pid %d not reaped", o.pid)
		}
	})
	st, err := StartTime(o.pid)
	if err != nil {
		t.Fatal(err)
	}
	o.start = st
	return o
}

func TestInstanceAdoptAndRestart(t *testing.T) {
	h := newHarness(t)
	o := startOrphanLike(t)
	pid, start := o.pid, o.start
	policy := RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: time.Second}
	in := h.start(h.spec(policy, 2*time.Second, "sleep", "1000"), 5,
		&Adopt{Pid: pid, PidStart: start, StartedAt: time.Now()})
	select {
	case <-in.Spawned():
	case <-time.After(15 * time.Second):
		t.Fatal("Spawned not closed after adoption")
	}
	st := h.wait(in, "adopted online", online)
	if st.Pid != pid || st.PidStart != start || st.Restarts != 5 {
		t.Fatalf("adopted state %+v; want pid %d, start %d, restarts carried over (5)", st, pid, start)
	}

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-o.done
	next := h.wait(in, "a new process after the adopted one died", func(s State) bool {
		return online(s) && s.Pid != pid
	})
	if next.Restarts != 6 {
		t.Errorf("Restarts = %d, want 6", next.Restarts)
	}
	if !Alive(next.Pid, next.PidStart) {
		t.Fatalf("new process %d not alive", next.Pid)
	}
	in.Stop()
	if Alive(next.Pid, next.PidStart) {
		t.Fatalf("new process %d alive after Stop", next.Pid)
	}
	if left := liveInGroup(next.Pid); len(left) != 0 {
		t.Fatalf("processes %v left in group %d", left, next.Pid)
	}
}

func TestInstanceAdoptThenStop(t *testing.T) {
	h := newHarness(t)
	o := startOrphanLike(t)
	pid, start := o.pid, o.start
	in := h.start(h.spec(RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: time.Second}, 2*time.Second,
		"sleep", "1000"), 0, &Adopt{Pid: pid, PidStart: start, StartedAt: time.Now()})
	h.wait(in, "adopted online", func(s State) bool { return online(s) && s.Pid == pid })
	in.Stop()
	select {
	case <-o.done:
		err := o.err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() ||
			ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Fatalf("adopted process ended with %v, want killed by SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("adopted process still running after Stop")
	}
	if s := in.State(); s.Status != Stopped || s.Pid != 0 {
		t.Fatalf("after Stop: %+v", s)
	}
}

// When the pid to adopt no longer belongs to the recorded process (the pid was reused between
// the daemon's check and the adoption), the instance starts afresh and must leave the process
// that now has that pid, and its group, alone.
func TestInstanceAdoptStalePidLeavesStrangerAlone(t *testing.T) {
	h := newHarness(t)
	o := startOrphanLike(t) // the stranger, a group leader
	pid, start := o.pid, o.start
	in := h.start(h.spec(RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: time.Second}, 2*time.Second,
		"sleep", "1000"), 0, &Adopt{Pid: pid, PidStart: start + 1, StartedAt: time.Now()})
	fresh := h.wait(in, "a fresh process", func(s State) bool { return online(s) && s.Pid != pid })
	select {
	case <-o.done:
		t.Fatalf("the stranger with reused pid %d was killed (%v) when the instance found its adoptee gone", pid, o.err)
	default:
	}
	if !Alive(pid, start) {
		t.Fatalf("stranger %d no longer alive", pid)
	}
	in.Stop()
	if Alive(fresh.Pid, fresh.PidStart) {
		t.Fatalf("process %d alive after Stop", fresh.Pid)
	}
	if !Alive(pid, start) {
		t.Fatalf("Stop of the instance killed the stranger %d", pid)
	}
}

func TestInstanceRestartRequest(t *testing.T) {
	h := newHarness(t)
	in := h.start(h.spec(RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: time.Second}, 2*time.Second,
		"bash", "-c", "sleep 1000 & wait"), 0, nil)
	first := h.wait(in, "online", online)
	in.Restart("memory limit exceeded")
	next := h.wait(in, "a new process after Restart", func(s State) bool { return online(s) && s.Pid != first.Pid })
	if next.Restarts != 1 || next.Reason != "memory limit exceeded" {
		t.Errorf("after Restart: %+v; want restarts 1 and the reason", next)
	}
	if Alive(first.Pid, first.PidStart) {
		t.Errorf("old process %d still alive", first.Pid)
	}
	if left := liveInGroup(first.Pid); len(left) != 0 {
		t.Errorf("processes %v left in the old group %d", left, first.Pid)
	}
	in.Stop()
	if left := liveInGroup(next.Pid); len(left) != 0 {
		t.Fatalf("processes %v left in group %d after Stop", left, next.Pid)
	}
}

// Watch's channel closes at the next change of state, health results included, so a caller
// can wait for a condition with no polling at all.
func TestWatchWakesOnEveryChange(t *testing.T) {
	tests := []struct {
		name   string
		health *HealthSpec
		poke   func(*Loop)
		until  func(State) bool
	}{
		{name: "restart request", poke: func(l *Loop) { l.Restart("asked") },
			until: func(st State) bool { return st.Restarts == 1 && online(st) }},
		{name: "health result", health: &HealthSpec{Argv: []string{"true"}, Interval: time.Second, Timeout: time.Second, Retries: 1},
			until: func(st State) bool { return st.Health == HealthHealthy }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			spec := h.spec(RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: time.Second}, 2*time.Second, "sleep", "600")
			spec.Health = tt.health
			l := Start(spec, 0, nil, nil) // no notify: only Watch can wake the test
			t.Cleanup(l.Stop)
			<-l.Spawned()
			if tt.poke != nil {
				tt.poke(l)
			}
			deadline := time.NewTimer(15 * time.Second)
			defer deadline.Stop()
			for {
				st, changed := l.Watch()
				if tt.until(st) {
					return
				}
				select {
				case <-changed:
				case <-deadline.C:
					t.Fatalf("no change woke the watcher; state %+v", l.State())
				}
			}
		})
	}
}

// Every way supervision ends leaves the loop stopped with its process gone: a stop while
// running, while waiting out a restart delay, and while parked errored.
func TestEveryStopPathEndsStopped(t *testing.T) {
	tests := []struct {
		name   string
		policy RestartPolicy
		argv   []string
		before func(State) bool // the state the stop comes in
	}{
		{name: "running", policy: RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: time.Second},
			argv: []string{"sleep", "600"}, before: online},
		{name: "waiting out a restart delay", policy: RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: time.Second, RestartDelay: time.Hour},
			argv: []string{"true"}, before: func(st State) bool { return st.Status == WaitingRestart }},
		{name: "errored", policy: RestartPolicy{Autorestart: false},
			argv: []string{"false"}, before: func(st State) bool { return st.Status == Errored }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			l := h.start(h.spec(tt.policy, time.Second, tt.argv...), 0, nil)
			h.wait(l, tt.name, tt.before)
			l.Stop()
			if st := l.State(); st.Status != Stopped || st.Pid != 0 {
				t.Fatalf("after stop: %+v; want stopped with no pid", st)
			}
			select {
			case <-l.Done():
			default:
				t.Fatal("Done not closed after Stop returned")
			}
		})
	}
}
