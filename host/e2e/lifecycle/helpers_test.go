package lifecycle

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// writeScript writes an executable script into dir and returns its path.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// readPidFile waits until path holds a pid (written by an app) and returns it.
func readPidFile(t *testing.T, path string) int {
	t.Helper()
	var pid int
	harness.Eventually(t, 10*time.Second, "a pid in "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// waitDead waits until none of pids is a live process.
func waitDead(t *testing.T, timeout time.Duration, what string, pids ...int) {
	t.Helper()
	harness.Eventually(t, timeout, what, func() bool {
		for _, p := range pids {
			if harness.Alive(p) {
				return false
			}
		}
		return true
	})
}

// ppid returns the parent pid of pid (0 if unknown).
func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(string(f[1]))
	return n
}

// pgid returns the process group of pid (0 if unknown).
func pgid(pid int) int {
	g, err := syscall.Getpgid(pid)
	if err != nil {
		return 0
	}
	return g
}

// byID indexes rows by instance id.
func byID(rows []api.Instance) map[int]api.Instance {
	m := map[int]api.Instance{}
	for _, r := range rows {
		m[r.ID] = r
	}
	return m
}

// pidsOf returns the pids of rows.
func pidsOf(rows []api.Instance) []int {
	var out []int
	for _, r := range rows {
		out = append(out, r.Pid)
	}
	return out
}

// stable polls `list --json` for d and fails as soon as one observation breaks cond. It checks
// that a state holds over time (a crash loop that stays errored, an app that is not restarted).
func stable(t *testing.T, h *harness.Home, d time.Duration, what string, cond func([]api.Instance) string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if msg := cond(h.List()); msg != "" {
			t.Fatalf("%s: %s", what, msg)
		}
	}
}
