package supervisor

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/sockets"
)

func TestIsReady(t *testing.T) {
	tests := []struct {
		msg  string
		want bool
	}{
		{`"ready"` + "\n", true},
		{` "ready" ` + "\n", true},
		{`"re\u0061dy"` + "\n", true}, // JSON, as node could write it
		{`"ready`, false},
		{`ready`, false},
		{`"Ready"`, false},
		{`"ready!"`, false},
		{`{"type":"ready"}`, false},
		{`["ready"]`, false},
		{"\xff\xfe\x00", false},
		{``, false},
		{`"` + strings.Repeat("ready", 20) + `"`, false},
	}
	for _, tt := range tests {
		if got := isReady([]byte(tt.msg)); got != tt.want {
			t.Errorf("isReady(%q) = %t, want %t", tt.msg, got, tt.want)
		}
	}
}

// Lines longer than the bound are skipped whole, however long, and the lines around them are
// read; a stream that ends without a newline ends the reading.
func TestReadMessagesBounded(t *testing.T) {
	huge := strings.Repeat("x", 5*maxIPCLine+17)
	in := "\"a\"\n" + huge + "\n\"b\"\n" + strings.Repeat("y", maxIPCLine) + "\n\"c\"\n\"unterminated"
	var got []string
	readMessages(strings.NewReader(in), func(line []byte) bool {
		got = append(got, string(bytes.TrimSpace(line)))
		return true
	})
	if want := []string{`"a"`, `"b"`, `"c"`}; !slices.Equal(got, want) {
		t.Errorf("read %q, want %q", got, want)
	}
}

// needNode fails the test when node is missing: test.sh installs it.
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: the IPC tests need it (test.sh installs it)")
	}
	return node
}

func ipcSpec(h *harness, argv ...string) Spec {
	spec := h.spec(RestartPolicy{Autorestart: true, MaxRestarts: 3}, 2*time.Second, argv...)
	spec.Env = []string{"PATH=" + os.Getenv("PATH")}
	spec.IPC = true
	return spec
}

// A node process's process.send('ready') makes it ready, and only that: the process writes a
// file just before it sends, which must be there once the loop says ready.
func TestIPCReadyFromNode(t *testing.T) {
	node := needNode(t)
	h := newHarness(t)
	sent := filepath.Join(h.dir, "sent")
	js := `setTimeout(() => { require("fs").writeFileSync(` + strconv.Quote(sent) + `, ""); process.send("ready"); }, 300);
setInterval(() => {}, 1 << 30);`
	in := h.start(ipcSpec(h, node, "-e", js), 0, nil)
	st := h.wait(in, "online", online)
	if st.Ready {
		t.Fatal("ready before it said so")
	}
	h.wait(in, "ready", func(s State) bool { return s.Ready })
	if _, err := os.Stat(sent); err != nil {
		t.Fatalf("ready, but the process had not sent ready yet: %v", err)
	}
	// A restart begins not ready: the next process must say it again.
	pid := in.State().Pid
	in.Restart("test")
	st = h.wait(in, "a new process", func(s State) bool { return online(s) && s.Pid != pid })
	if st.Ready {
		t.Error("the new process is ready before it said so")
	}
	h.wait(in, "the new process ready", func(s State) bool { return s.Ready && s.Pid == st.Pid })
}

// Garbage, a line far over the bound and messages that are not "ready" are read and dropped;
// the "ready" after them still counts.
func TestIPCHostileInput(t *testing.T) {
	h := newHarness(t)
	script := `test "$NODE_CHANNEL_FD" = 3 && test "$NODE_CHANNEL_SERIALIZATION_MODE" = json || exit 9
head -c 3000000 /dev/zero | tr '\0' x >&3
printf '\n{"type":"process:msg","data":{}}\n\377\376\000\001\n"readyX"\n' >&3
printf '"ready"\n' >&3
exec sleep 600`
	in := h.start(ipcSpec(h, "sh", "-c", script), 0, nil)
	h.wait(in, "ready after the garbage", func(s State) bool { return s.Ready })
	if st := in.State(); st.Restarts != 0 {
		t.Errorf("the process was restarted: %+v", st)
	}
}

// The channel is the instance's alone: it gets one fd more (3, or 4 after a socket app's
// listener) and NODE_CHANNEL_FD naming it; an instance started beside it without IPC has
// exactly 0, 1, 2 (the daemon's end never leaks into another process).
func TestIPCChannelFDs(t *testing.T) {
	closeInheritedFDsOnExec(t)
	report := `echo "FD=${NODE_CHANNEL_FD-unset}"; ls -l /proc/$$/fd; echo END; exec sleep 600`
	tests := []struct {
		name          string
		ipc, listener bool
		wantFDs       []int
		wantEnv       string
	}{
		{"ipc", true, false, []int{0, 1, 2, 3}, "3"},
		{"ipc beside a listener", true, true, []int{0, 1, 2, 3, 4}, "4"},
		{"no ipc", false, false, []int{0, 1, 2}, "unset"},
	}
	h := newHarness(t)
	loops := make([]*Loop, len(tests))
	logs := make([]string, len(tests))
	// All started together, so that a leak into a process spawned meanwhile would show.
	for i, tt := range tests {
		spec := ipcSpec(h, "sh", "-c", report)
		spec.IPC = tt.ipc
		logs[i] = filepath.Join(h.dir, "out-"+strconv.Itoa(i)+".log")
		spec.OutLog, spec.ErrLog = logs[i], logs[i]
		if tt.ipc {
			spec.Env = append(spec.Env, "NODE_CHANNEL_FD=7") // one already in the environment is replaced
		}
		if tt.listener {
			l, err := sockets.Listen("127.0.0.1", 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			spec.Listener = l.File
		}
		loops[i] = h.start(spec, 0, nil)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.wait(loops[i], "online", online)
			var out string
			poll(t, "the child's report", func() bool {
				b, _ := os.ReadFile(logs[i])
				out = string(b)
				return strings.Contains(out, "END")
			})
			var got []int
			for _, line := range strings.Split(out, "\n") {
				if m := fdLine.FindStringSubmatch(line); m != nil {
					n, _ := strconv.Atoi(m[1])
					got = append(got, n)
					if n >= 3 && !strings.HasPrefix(m[2], "socket:") {
						t.Errorf("fd %d is %s, not a socket", n, m[2])
					}
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.wantFDs) {
				t.Errorf("fds %v, want %v:\n%s", got, tt.wantFDs, out)
			}
			if !strings.Contains(out, "FD="+tt.wantEnv+"\n") {
				t.Errorf("NODE_CHANNEL_FD: want %s:\n%s", tt.wantEnv, out)
			}
		})
	}
}

// A node app that never uses the channel runs as it would without one: it ends when its work
// is done (the channel does not hold its event loop open) and process.send is there.
func TestIPCDoesNotHoldNodeOpen(t *testing.T) {
	node := needNode(t)
	h := newHarness(t)
	spec := ipcSpec(h, node, "-e", `console.log("send is a " + typeof process.send)`)
	spec.Policy = RestartPolicy{Autorestart: false}
	in := h.start(spec, 0, nil)
	st := h.wait(in, "exited", func(s State) bool { return s.Status == Stopped })
	if st.ExitCode != 0 {
		t.Fatalf("exit code %d", st.ExitCode)
	}
	b, _ := os.ReadFile(spec.OutLog)
	if !strings.Contains(string(b), "send is a function") {
		t.Errorf("output %q; want process.send to be a function", b)
	}
}

// shutdown_with_message: the stop is the "shutdown" message (not SIGTERM), which a node app
// handles; an app whose channel is gone (it closed its end) gets SIGTERM instead.
func TestIPCShutdownMessage(t *testing.T) {
	node := needNode(t)
	tests := []struct {
		name string
		argv func(got string) []string
		want string
	}{
		{"node reads it", func(got string) []string {
			js := `const fs = require("fs");
process.on("message", (m) => { if (m === "shutdown") { fs.writeFileSync(` + strconv.Quote(got) + `, "message"); process.exit(0); } });
process.on("SIGTERM", () => { fs.writeFileSync(` + strconv.Quote(got) + `, "SIGTERM"); process.exit(0); });
process.send("ready");`
			return []string{node, "-e", js}
		}, "message"},
		{"channel closed", func(got string) []string {
			// The trap first: the test stops the app once fd 3 is closed, and a SIGTERM before
			// the trap would kill the shell without a word.
			script := `trap 'printf SIGTERM > ` + got + `; exit 0' TERM; exec 3>&-; while :; do sleep 0.05; done`
			return []string{"sh", "-c", script}
		}, "SIGTERM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			got := filepath.Join(h.dir, "got")
			spec := ipcSpec(h, tt.argv(got)...)
			spec.ShutdownMessage = true
			spec.KillTimeout = 10 * time.Second
			in := h.start(spec, 0, nil)
			h.wait(in, "online", online)
			if tt.want == "message" {
				h.wait(in, "ready", func(s State) bool { return s.Ready })
			} else {
				// The shell has closed its end once its children run.
				poll(t, "fd 3 closed", func() bool {
					_, err := os.Readlink("/proc/" + strconv.Itoa(in.State().Pid) + "/fd/3")
					return err != nil
				})
			}
			in.Stop()
			b, err := os.ReadFile(got)
			if err != nil || string(b) != tt.want {
				t.Fatalf("the app was told %q (%v); want %s", b, err, tt.want)
			}
			if st := in.State(); st.Status != Stopped || st.ExitCode != 0 {
				t.Errorf("after the stop: %+v", st)
			}
		})
	}
}
