package faults

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
	"github.com/pmdaemon/pmdaemon/host/procfs"
)

// startForKill starts two apps (one whose instance has a second process in its group) and
// returns their processes and the daemon's pid.
func startForKill(t *testing.T, h *harness.Home, killTimeout string) (apps []int, daemon int) {
	t.Helper()
	h.OK("start", "sleep 1000", "--name", "web", "--instances", "2", "--kill-timeout", killTimeout)
	h.OK("start", `sh -c 'sleep 1000 & exec sleep 1001'`, "--name", "pair", "--kill-timeout", killTimeout)
	h.WaitList(10*time.Second, "web and pair online", func(rows []api.Instance) bool {
		return harness.AllOnline("web", 2)(rows) && harness.AllOnline("pair", 1)(rows)
	})
	harness.Eventually(t, 10*time.Second, "pair's two processes", func() bool { return len(h.AppProcs()) == 4 })
	return h.AppProcs(), oneDaemon(t, h)
}

// checkKilled checks what `kill` of a daemon that did not answer must leave: exit 0, output
// saying what it did, the daemon and every app process gone, and the apps kept for the next
// daemon (as after any kill).
func checkKilled(t *testing.T, h *harness.Home, r harness.Result, daemon int, apps []int, say ...string) {
	t.Helper()
	if r.Code != 0 {
		t.Errorf("kill: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	say = append([]string{fmt.Sprintf("[pmdaemon] daemon pid %d does not answer (", daemon), "); stopping its apps and killing it\n"}, say...)
	for _, s := range append(say, "[pmdaemon] apps stopped, daemon killed\n") {
		if !strings.Contains(r.Stdout, s) {
			t.Errorf("kill's output does not say %q:\n%s", s, r.Stdout)
		}
	}
	if harness.Alive(daemon) {
		t.Errorf("daemon %d still alive after kill", daemon)
	}
	for _, p := range apps {
		if harness.Alive(p) {
			t.Errorf("app process %d still alive after kill", p)
		}
	}
	if left := h.Processes(); len(left) > 0 {
		t.Errorf("processes of the home left after kill: %v", left)
	}
	h.WaitList(20*time.Second, "the apps back with the next daemon", func(rows []api.Instance) bool {
		return harness.AllOnline("web", 2)(rows) && harness.AllOnline("pair", 1)(rows)
	})
}

// `kill` against a daemon stopped with SIGSTOP: it does not answer, but it holds the home's
// lock, and it and its apps run on. kill must find it by the lock, say so, wake it and have it
// stop its apps and exit. Before, kill printed "daemon is not running", exited 0 and left
// everything running.
func TestKillStoppedDaemon(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	apps, daemon := startForKill(t, h, "5s")
	if err := syscall.Kill(daemon, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "the daemon stopped", func() bool {
		st, err := procfs.Read(daemon)
		return err == nil && st.State == 'T'
	})
	begin := time.Now()
	r := h.Run("kill")
	t.Logf("kill took %s:\n%s", time.Since(begin).Round(time.Millisecond), r.Stdout)
	checkKilled(t, h, r, daemon, apps)
	if !strings.Contains(h.DaemonLog(), "got terminated, stopping apps") {
		t.Errorf("the daemon did not stop its apps itself after SIGCONT and SIGTERM:\n%s", h.DaemonLog())
	}
}

// cgroup2Root returns where the cgroup v2 hierarchy is mounted, or "".
func cgroup2Root() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "... mountpoint options ... - fstype source superoptions"
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if fs := strings.Fields(post); ok && len(fs) > 0 && fs[0] == "cgroup2" {
			if pf := strings.Fields(pre); len(pf) > 4 {
				return pf[4]
			}
		}
	}
	return ""
}

// freeze puts pid into a new cgroup v2 and freezes it: a frozen process takes no signal but
// SIGKILL, so it stands for a daemon wedged beyond SIGCONT and SIGTERM. It skips the test
// where this machine gives no writable cgroup v2.
func freeze(t *testing.T, pid int) {
	t.Helper()
	root := cgroup2Root()
	if root == "" {
		t.Skip("no cgroup v2 hierarchy on this machine to freeze a daemon with")
	}
	dir := filepath.Join(root, fmt.Sprintf("pmd-freeze-%d-%d", os.Getpid(), pid))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup to freeze a daemon with: %v", err)
	}
	t.Cleanup(func() {
		// Thaw and move back anything left, so the home's cleanup can do its work.
		os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0o644)
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
			for _, p := range strings.Fields(string(b)) {
				os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(p), 0o644)
			}
		}
		harness.Eventually(t, 10*time.Second, "the freezer cgroup removed", func() bool {
			err := os.Remove(dir)
			return err == nil || os.IsNotExist(err)
		})
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Skipf("cannot move the daemon into a cgroup: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("1"), 0o644); err != nil {
		t.Skipf("cannot freeze a cgroup: %v", err)
	}
	harness.Eventually(t, 5*time.Second, "the daemon frozen", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		return err == nil && strings.Contains(string(b), "frozen 1")
	})
}

// A daemon that neither answers nor exits on SIGCONT and SIGTERM (frozen, here) is killed
// with SIGKILL once its apps' kill timeout and a grace have passed, and kill then stops the
// apps it left running itself, by the pids in state.json.
func TestKillWedgedDaemon(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	apps, daemon := startForKill(t, h, "1s")
	freeze(t, daemon)
	begin := time.Now()
	r := h.Run("kill")
	took := time.Since(begin)
	t.Logf("kill took %s:\n%s", took.Round(time.Millisecond), r.Stdout)
	checkKilled(t, h, r, daemon, apps,
		fmt.Sprintf("[pmdaemon] daemon pid %d did not exit within 6s of SIGTERM; killing it with SIGKILL\n", daemon))
	if took > 30*time.Second {
		t.Errorf("kill took %s", took)
	}
}
