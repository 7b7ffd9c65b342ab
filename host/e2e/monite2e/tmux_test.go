package monite2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// wait bounds every wait of these tests.
const wait = 30 * time.Second

// tmux is a tmux server of the test's own (its socket in the test's temp dir), killed at
// cleanup with what runs in it.
type tmux struct {
	t      *testing.T
	socket string
	pid    int // the pane's process: the shell that runs pmdaemon monit
}

// newTmux runs `pmdaemon monit` in home h, with env added, in a w×h pane.
func newTmux(t *testing.T, h *harness.Home, width, height int, env ...string) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("this test needs tmux (test.sh installs it: apt-get install -y tmux): %v", err)
	}
	tm := &tmux{t: t, socket: filepath.Join(t.TempDir(), "tmux.sock")}
	// The home goes in the pane's command, not in the server's environment: the harness's
	// check for leftovers looks for processes carrying it.
	// NO_COLOR is unset first, so that the test's own environment does not decide colour.
	vars := append([]string{"-u", "NO_COLOR", "PMDAEMON_HOME=" + h.Dir, "GORACE=atexit_sleep_ms=0"}, env...)
	// The shell tells monit's exit status on the pane once monit has left its screen, and
	// stays: tmux 3.3 can drop the last output of a pane whose process exits at once.
	command := "env " + strings.Join(vars, " ") + " " + harness.Bin + " monit; echo \"monit exited with status $?\"; exec sleep 600"
	tm.run("-f", "/dev/null", "new-session", "-d", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height), command)
	t.Cleanup(func() {
		tm.run("kill-server")
		harness.WaitDead(t, wait, "the pane's shell after tmux's end", tm.pid)
	})
	tm.pid, _ = strconv.Atoi(tm.display("#{pane_pid}"))
	if tm.pid == 0 {
		t.Fatal("no pane pid")
	}
	return tm
}

// run runs a tmux command on the test's server.
func (tm *tmux) run(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", tm.socket}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// display is a tmux format's value for the pane.
func (tm *tmux) display(format string) string {
	tm.t.Helper()
	return strings.TrimSpace(tm.run("display-message", "-p", format))
}

// screen is what the pane shows; with escapes, with the attributes of its cells as SGR
// sequences (capture-pane -e).
func (tm *tmux) screen(escapes bool) string {
	tm.t.Helper()
	args := []string{"capture-pane", "-p"}
	if escapes {
		args = append(args, "-e")
	}
	return tm.run(args...)
}

// keys types keys (tmux key names: Down, Enter, or letters).
func (tm *tmux) keys(keys ...string) {
	tm.t.Helper()
	tm.run(append([]string{"send-keys"}, keys...)...)
}

// waitScreen polls the screen until it shows every want, and fails with the screen at timeout.
func (tm *tmux) waitScreen(what string, want ...string) string {
	tm.t.Helper()
	return strings.Join(tm.waitRows(what, func(rows []string) bool {
		s := strings.Join(rows, "\n")
		for _, w := range want {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	}), "\n")
}

// waitRows polls the screen's rows until cond holds, and fails with the screen at timeout.
func (tm *tmux) waitRows(what string, cond func(rows []string) bool) []string {
	tm.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		rows := strings.Split(strings.TrimSuffix(tm.screen(false), "\n"), "\n")
		if cond(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("timed out after %s waiting for %s; the screen:\n%s", wait, what, strings.Join(rows, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// monitPid is the pid of pmdaemon monit: the only child of the pane's shell.
func (tm *tmux) monitPid() int {
	tm.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", tm.pid, tm.pid))
	if err != nil {
		tm.t.Fatal(err)
	}
	kids := strings.Fields(string(b))
	if len(kids) != 1 {
		tm.t.Fatalf("the pane's shell has children %v, want monit alone", kids)
	}
	pid, _ := strconv.Atoi(kids[0])
	return pid
}

// waitExit waits until monit has exited, and returns its exit status as its shell saw it.
func (tm *tmux) waitExit() int {
	tm.t.Helper()
	const said = "monit exited with status "
	screen := tm.waitScreen("monit to exit", said)
	status, _, _ := strings.Cut(screen[strings.Index(screen, said)+len(said):], "\n")
	code, err := strconv.Atoi(strings.TrimSpace(status))
	if err != nil {
		tm.t.Fatalf("monit's exit status %q: %v", status, err)
	}
	return code
}

// startEcho starts the echo app as name on a free port and waits for it to be online.
func startEcho(h *harness.Home, name string) {
	h.T.Helper()
	h.OK("start", harness.Echo, "--name", name, "--port", fmt.Sprint(harness.FreePorts(h.T, 1)))
	h.WaitOnline(name, 1)
}
