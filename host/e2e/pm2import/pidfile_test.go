package pm2import

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// pid_file: each instance's pid is in NAME-INDEX.pid while it runs, the new pid after a crash
// and a restart, and the file is gone once the instance stops.
func TestPidFile(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 2)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.OK("start", harness.Echo, "--name", "pf", "-i", "2", "-p", harness.PortRange(b, b+1), "--cwd", dir, "--pid-file", "run/pf.pid")
	files := []string{filepath.Join(dir, "run", "pf-0.pid"), filepath.Join(dir, "run", "pf-1.pid")}

	// the pid files say what list says
	holds := func(rows []api.Instance) bool {
		pids := harness.PidsOf(rows, "pf")
		for i, f := range files {
			if pids[i] == 0 || readPid(f) != pids[i] {
				return false
			}
		}
		return true
	}
	rows := h.WaitList(30*time.Second, "pid files with the instances' pids", func(rows []api.Instance) bool {
		return harness.AllOnline("pf", 2)(rows) && holds(rows)
	})
	if out := h.OK("describe", "pf"); !strings.Contains(out, "run/pf.pid") {
		t.Errorf("describe does not show the pid file:\n%s", out)
	}

	crashed := harness.PidsOf(rows, "pf")[1]
	harness.Sigkill(t, crashed)
	h.WaitList(30*time.Second, "instance 1 back with its new pid in pf-1.pid", func(rows []api.Instance) bool {
		return harness.AllOnline("pf", 2)(rows) && harness.PidsOf(rows, "pf")[1] != crashed && holds(rows)
	})

	before := harness.PidsOf(h.List(), "pf")
	h.OK("restart", "pf")
	h.WaitList(30*time.Second, "new pids in the pid files after restart", func(rows []api.Instance) bool {
		pids := harness.PidsOf(rows, "pf")
		return harness.AllOnline("pf", 2)(rows) && pids[0] != before[0] && pids[1] != before[1] && holds(rows)
	})

	h.OK("stop", "pf")
	harness.Eventually(t, 10*time.Second, "the pid files removed after stop", func() bool {
		for _, f := range files {
			if _, err := os.Stat(f); err == nil {
				return false
			}
		}
		return true
	})
	if left, _ := filepath.Glob(filepath.Join(dir, "run", "*")); len(left) != 0 {
		t.Errorf("files left in run/: %v", left)
	}
}

// readPid is the pid in a pid file, 0 when there is none.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSuffix(string(b), "\n"))
	return n
}
