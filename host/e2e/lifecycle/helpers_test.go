package lifecycle

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

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
