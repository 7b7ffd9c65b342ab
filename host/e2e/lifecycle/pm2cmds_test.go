package lifecycle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// The PM2 commands through the real binary and daemon: scale grows a range app whose new
// instances answer on the next ports, and the scaled count and spec outlive a daemon restart;
// env shows what the process holds; restart of one id names that id; a piped list is plain.
func TestPM2CommandsEndToEnd(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	base := harness.FreePorts(t, 4)
	h.OK("start", harness.Echo, "--name", "echo", "-i", "2", "--port", harness.PortRange(base, base+1),
		"--env", "GREETING=from pm2", "--kill-timeout", "3s")
	h.WaitOnline("echo", 2)

	out := h.OK("scale", "echo", "4")
	if !strings.Contains(out, fmt.Sprintf("echo's port spec is now %s (saved)", harness.PortRange(base, base+3))) {
		t.Errorf("scale echo 4 did not say the spec grew:\n%s", out)
	}
	rows := h.WaitOnline("echo", 4)
	for i, p := range harness.Seq(base, 4) {
		harness.WaitWho(t, p, "echo", i)
	}
	if got, err := harness.EchoEnv(base+3, "GREETING"); err != nil || got != "from pm2" {
		t.Errorf("the new instance's GREETING is %q (%v), want the app's env", got, err)
	}

	// env reads the process: the new instance's port is in it.
	newest := harness.Rows(rows, "echo")[3]
	env := strings.Split(h.OK("env", strconv.Itoa(newest.ID)), "\n")
	for _, want := range []string{"PORT=" + strconv.Itoa(base+3), "GREETING=from pm2", "NODE_APP_INSTANCE=3"} {
		if !slices.Contains(env, want) {
			t.Errorf("env %d lacks %s: %q", newest.ID, want, env)
		}
	}

	// restart of one id names that id alone, and a list on a pipe is plain text.
	out = h.OK("restart", strconv.Itoa(newest.ID))
	if want := fmt.Sprintf("[pmdaemon] restarted echo (ids %d, ports %d)\n", newest.ID, base+3); !strings.Contains(out, want) {
		t.Errorf("restart %d printed %q, want %q", newest.ID, out, want)
	}
	if strings.ContainsAny(out, "🟢⚪🔴🟡") || !strings.Contains(out, "│ online ") && !strings.Contains(out, "│ starting ") {
		t.Errorf("list on a pipe is not plain:\n%s", out)
	}
	h.WaitOnline("echo", 4)

	// The scale is saved: a new daemon brings back four instances on the grown range.
	h.OK("kill")
	h.OK("ping") // starts the next daemon, which restores the apps
	rows = h.WaitOnline("echo", 4)
	if got := harness.PortsOf(rows, "echo"); !slices.Equal(got, harness.Seq(base, 4)) {
		t.Errorf("after a daemon restart echo runs on %v, want %v", got, harness.Seq(base, 4))
	}
	if info := h.Info("echo"); info.Config.Instances != 4 || info.PortSpec != harness.PortRange(base, base+3) {
		t.Errorf("saved config after a daemon restart: instances %d, port %q", info.Config.Instances, info.PortSpec)
	}

	// Scaling down stops the highest indexes and frees their ports for anyone.
	h.OK("scale", "echo", "1")
	h.WaitOnline("echo", 1)
	for _, p := range harness.Seq(base+1, 3) {
		harness.Eventually(t, 10*time.Second, fmt.Sprintf("port %d freed", p), func() bool {
			free, err := h.API().PortFree(context.Background(), p)
			return err == nil && free.Free
		})
	}
}

// signal reaches the instance's main process and only it (a child of the script keeps the
// default action and would die of USR1); reset zeroes the counters without restarting.
func TestSignalAndResetEndToEnd(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	marks := filepath.Join(dir, "marks")
	child := filepath.Join(dir, "child.pid")
	script := harness.WriteScript(t, dir, "trap.sh", "trap 'echo usr1 >> "+marks+"' USR1\n"+
		"sleep 1000 & echo $! > "+child+"\nwhile :; do sleep 0.05; done\n")
	h.OK("start", script, "--name", "trap", "--kill-timeout", "3s")
	rows := h.WaitOnline("trap", 1)
	var kid int
	harness.Eventually(t, 10*time.Second, "the script's child started", func() bool {
		b, _ := os.ReadFile(child)
		kid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return kid > 0
	})

	out := h.OK("sendSignal", "SIGUSR1", "trap")
	if want := fmt.Sprintf("[pmdaemon] sent SIGUSR1 to trap (id %d, pid %d)", rows[0].ID, rows[0].Pid); !strings.Contains(out, want) {
		t.Errorf("sendSignal printed %q, want %q", out, want)
	}
	harness.Eventually(t, 10*time.Second, "the trap caught USR1", func() bool {
		b, _ := os.ReadFile(marks)
		return string(b) == "usr1\n"
	})
	if !harness.Alive(kid) {
		t.Errorf("the script's child %d died: the signal reached more than the main process", kid)
	}
	if stderr := h.Fail("signal", "SIGBOGUS", "trap"); !strings.Contains(stderr, `signal "SIGBOGUS" is unknown`) {
		t.Errorf("a bad signal: %q", stderr)
	}

	h.OK("restart", "trap")
	h.OK("restart", "trap")
	rows = h.WaitOnline("trap", 1)
	if rows[0].Restarts != 2 {
		t.Fatalf("two restarts show %d", rows[0].Restarts)
	}
	out = h.OK("reset", "trap")
	if !strings.Contains(out, fmt.Sprintf("[pmdaemon] reset trap (ids %d)", rows[0].ID)) {
		t.Errorf("reset printed %q", out)
	}
	after := h.List()
	if after[0].Restarts != 0 || after[0].Pid != rows[0].Pid {
		t.Errorf("after reset: %d restarts, pid %d; want 0 and the same pid %d", after[0].Restarts, after[0].Pid, rows[0].Pid)
	}
}
