package supervisor

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/notify"
	"github.com/pmdaemon/pmdaemon/host/sockets"
)

func statusOf(s string) *string { return &s }

// What an instance says on NOTIFY_SOCKET lands in its state, and only for the process that
// runs: a new process starts neither ready nor with a status.
func TestNotifyReadyAndStatus(t *testing.T) {
	tests := []struct {
		name       string
		msgs       []notify.Message
		wantReady  bool
		wantStatus string
		wantStop   bool
	}{
		{name: "ready", msgs: []notify.Message{{Ready: true}}, wantReady: true},
		{name: "status alone", msgs: []notify.Message{{Status: statusOf("loading 3/10")}}, wantStatus: "loading 3/10"},
		{name: "ready with status", msgs: []notify.Message{{Ready: true, Status: statusOf("serving")}}, wantReady: true, wantStatus: "serving"},
		{name: "the last status wins, ready stays", msgs: []notify.Message{{Ready: true, Status: statusOf("a")}, {Status: statusOf("b")}},
			wantReady: true, wantStatus: "b"},
		{name: "an empty status clears it", msgs: []notify.Message{{Status: statusOf("a")}, {Status: statusOf("")}}},
		{name: "reloading changes nothing", msgs: []notify.Message{{Reloading: true}}},
		{name: "stopping", msgs: []notify.Message{{Stopping: true}}, wantStop: true},
		{name: "stopping after ready is not ready", msgs: []notify.Message{{Ready: true}, {Stopping: true}}, wantStop: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			in := h.start(h.spec(RestartPolicy{Autorestart: true, MaxRestarts: 5}, time.Second, "sleep", "600"), 0, nil)
			first := h.wait(in, "online", online)
			if first.Ready || first.StatusText != "" {
				t.Fatalf("fresh process is ready=%v status=%q; want neither", first.Ready, first.StatusText)
			}
			_, changed := in.Watch()
			for _, m := range tt.msgs {
				in.Notify(m)
			}
			if tt.wantReady || tt.wantStatus != "" || tt.wantStop {
				select { // Notify wakes the watchers: a wait for readiness needs no polling
				case <-changed:
				case <-time.After(5 * time.Second):
					t.Fatal("Notify did not wake Watch")
				}
			}
			st := in.State()
			if st.Ready != tt.wantReady || st.StatusText != tt.wantStatus || st.AppStopping != tt.wantStop {
				t.Fatalf("state ready=%v status=%q stopping=%v; want %v %q %v", st.Ready, st.StatusText, st.AppStopping,
					tt.wantReady, tt.wantStatus, tt.wantStop)
			}
			in.Restart("test")
			next := h.wait(in, "a new process", func(s State) bool { return online(s) && s.Pid != first.Pid })
			if next.Ready || next.StatusText != "" || next.AppStopping {
				t.Fatalf("the replacement process inherited ready=%v status=%q stopping=%v", next.Ready, next.StatusText, next.AppStopping)
			}
		})
	}
}

// A loop with no process (stopped, errored) takes no readiness: there is nothing to be ready.
func TestNotifyWithoutProcessIgnored(t *testing.T) {
	h := newHarness(t)
	in := h.start(h.spec(RestartPolicy{Autorestart: false}, time.Second, "true"), 0, nil)
	h.wait(in, "stopped", func(s State) bool { return s.Status == Stopped })
	in.Notify(notify.Message{Ready: true, Status: statusOf("late")})
	if st := in.State(); st.Ready || st.StatusText != "" {
		t.Fatalf("a stopped instance took ready=%v status=%q", st.Ready, st.StatusText)
	}
}

// The watchdog restarts a process that stops pinging (with the reason saying so), never one
// that pings in time, and WATCHDOG=trigger restarts at once.
func TestWatchdog(t *testing.T) {
	const deadline = 300 * time.Millisecond
	tests := []struct {
		name       string
		watchdog   time.Duration
		pingEvery  time.Duration // 0: silent
		trigger    bool
		observe    time.Duration // how long a process that must survive is watched
		wantReason string        // "" when it must not be restarted
	}{
		{name: "silent process is restarted", watchdog: deadline, wantReason: "watchdog: no WATCHDOG=1 within 300ms"},
		{name: "pinging process runs on", watchdog: deadline, pingEvery: 50 * time.Millisecond, observe: 4 * deadline},
		{name: "no watchdog, silence is fine", observe: 4 * deadline},
		{name: "trigger restarts", watchdog: 0, trigger: true, wantReason: "WATCHDOG=trigger"},
		{name: "trigger restarts a pinging process", watchdog: deadline, pingEvery: 50 * time.Millisecond, trigger: true,
			wantReason: "WATCHDOG=trigger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			spec := h.spec(RestartPolicy{Autorestart: true, MaxRestarts: 10}, time.Second, "sleep", "600")
			spec.Watchdog = tt.watchdog
			in := h.start(spec, 0, nil)
			first := h.wait(in, "online", online)
			stopPing := make(chan struct{})
			pinged := make(chan struct{})
			go func() {
				defer close(pinged)
				if tt.pingEvery == 0 {
					return
				}
				tick := time.NewTicker(tt.pingEvery)
				defer tick.Stop()
				for {
					in.Notify(notify.Message{Watchdog: true})
					select {
					case <-tick.C:
					case <-stopPing:
						return
					}
				}
			}()
			defer func() { close(stopPing); <-pinged }()
			if tt.trigger {
				in.Notify(notify.Message{WatchdogTrigger: true})
			}
			if tt.wantReason == "" {
				end := time.Now().Add(tt.observe)
				for time.Now().Before(end) {
					if st := in.State(); st.Pid != first.Pid || st.Restarts != 0 {
						t.Fatalf("restarted while it should run on: %+v", st)
					}
					time.Sleep(20 * time.Millisecond) // watching that nothing happens: there is no event to wait for
				}
				return
			}
			st := h.wait(in, "a restart", func(s State) bool { return s.Restarts > 0 })
			if !strings.Contains(st.Reason, tt.wantReason) {
				t.Fatalf("restart reason %q; want it to say %q", st.Reason, tt.wantReason)
			}
			if alive(first.Pid) {
				t.Errorf("the condemned pid %d still runs", first.Pid)
			}
			h.wait(in, "the replacement online", func(s State) bool { return online(s) && s.Pid != first.Pid })
		})
	}
}

func alive(pid int) bool { return Alive(pid, 0) }

// closeInheritedFDsOnExec marks close-on-exec the fds above stderr this test process was
// started with open across exec (the shell's or CI runner's), as the daemon does for itself
// when it starts (daemon.Serve): what the loop must not leak is its own, not its parent's.
func closeInheritedFDsOnExec(t *testing.T) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// fdLine is one line of `ls -l /proc/PID/fd`: "lrwx------ 1 u g 64 Jan 1 00:00 3 -> socket:[123]".
var fdLine = regexp.MustCompile(`\s(\d+) -> (.*)$`)

// A socket app's process has exactly fds 0, 1, 2 and the listening socket at 3, and LISTEN_PID
// is its own pid; a process without a listener has 0, 1, 2 only and no LISTEN_PID.
func TestListenerHandOver(t *testing.T) {
	tests := []struct {
		name     string
		listener bool
	}{
		{name: "socket app", listener: true},
		{name: "plain app", listener: false},
	}
	closeInheritedFDsOnExec(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			// The child lists its own fds ($$ is the shell, which the shim exec'd in place).
			script := `echo "PID=$$"; echo "LISTEN_PID=${LISTEN_PID-unset}"; ls -l /proc/$$/fd; echo END; exec sleep 600`
			spec := h.spec(RestartPolicy{Autorestart: true, MaxRestarts: 3}, time.Second, "sh", "-c", script)
			spec.Env = []string{"PATH=" + os.Getenv("PATH")}
			var l *sockets.Listener
			if tt.listener {
				var err error
				if l, err = sockets.Listen("127.0.0.1", 0); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				spec.Listener = l.File
			}
			in := h.start(spec, 0, nil)
			st := h.wait(in, "online", online)
			var out string
			poll(t, "the child's report", func() bool {
				b, _ := os.ReadFile(filepath.Join(h.dir, "out.log"))
				out = string(b)
				return strings.Contains(out, "END")
			})
			if !strings.Contains(out, "PID="+strconv.Itoa(st.Pid)+"\n") {
				t.Fatalf("the reporting shell is not the instance's pid %d:\n%s", st.Pid, out)
			}
			wantListenPid := "unset"
			if tt.listener {
				wantListenPid = strconv.Itoa(st.Pid)
			}
			if !strings.Contains(out, "LISTEN_PID="+wantListenPid+"\n") {
				t.Errorf("LISTEN_PID: want %s:\n%s", wantListenPid, out)
			}
			fds := map[int]string{}
			for _, line := range strings.Split(out, "\n") {
				if m := fdLine.FindStringSubmatch(line); m != nil {
					n, _ := strconv.Atoi(m[1])
					fds[n] = m[2]
				}
			}
			want := []int{0, 1, 2}
			if tt.listener {
				want = append(want, 3)
			}
			var got []int
			for fd := range fds {
				got = append(got, fd)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("the app's fds are %v; want exactly %v:\n%s", got, want, out)
			}
			if tt.listener {
				if wantLink := "socket:[" + strconv.FormatUint(l.Inode, 10) + "]"; fds[3] != wantLink {
					t.Fatalf("fd 3 is %q; want the listener %s", fds[3], wantLink)
				}
			}
		})
	}
}

// A watchdog failure is a crash for the restart policy: restarts are paced and an app that
// fails at every start ends errored after max_restarts, not restarted in a busy loop.
func TestWatchdogFailureFollowsThePolicy(t *testing.T) {
	tests := []struct {
		name        string
		trigger     bool // the test triggers each new process (else it is silent)
		autorestart bool
		wantStatus  Status
		wantReason  string
	}{
		{name: "silent at every start", autorestart: true, wantStatus: Errored, wantReason: "gave up after max_restarts 2"},
		{name: "trigger at every start", trigger: true, autorestart: true, wantStatus: Errored, wantReason: "gave up after max_restarts 2"},
		{name: "silent without autorestart", wantStatus: Errored, wantReason: "autorestart off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			spec := h.spec(RestartPolicy{Autorestart: tt.autorestart, MaxRestarts: 2, MinUptime: time.Second}, time.Second, "sleep", "600")
			spec.Watchdog = 100 * time.Millisecond
			if tt.trigger {
				spec.Watchdog = time.Minute
			}
			in := h.start(spec, 0, nil)
			triggered := 0
			begun := time.Now()
			st := h.wait(in, "the end of the restarts", func(s State) bool {
				if tt.trigger && online(s) && s.Restarts == triggered {
					in.Notify(notify.Message{WatchdogTrigger: true})
					triggered++
				}
				return s.Status == Errored || s.Status == Stopped
			})
			if st.Status != tt.wantStatus || !strings.Contains(st.Reason, tt.wantReason) {
				t.Fatalf("ended %s (%q); want %s saying %q", st.Status, st.Reason, tt.wantStatus, tt.wantReason)
			}
			if tt.autorestart && st.Restarts != 2 {
				t.Errorf("%d restarts; want max_restarts, 2", st.Restarts)
			}
			// Each unstable restart waits at least minUnstableDelay.
			if took := time.Since(begun); tt.autorestart && took < 2*minUnstableDelay {
				t.Errorf("two restarts in %s: not paced", took)
			}
		})
	}
}
