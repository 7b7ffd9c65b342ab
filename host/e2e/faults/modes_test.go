package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// The two ways the daemon owns processes (DESIGN §9). Every test about ownership runs in both.
const (
	cgroupMode = "cgroup"
	groupMode  = "process-group"
)

var processModes = []string{cgroupMode, groupMode}

// modeHome makes a home whose daemon runs in mode. Cgroup mode is the default here (root, with
// the unified hierarchy); process-group mode points PMDAEMON_CGROUP_ROOT at a plain directory,
// which is not a cgroup2 directory, so the daemon has to fall back. The directory is made
// before the home so that it outlives the home's daemon.
func modeHome(t *testing.T, mode string) *harness.Home {
	t.Helper()
	var root string
	if mode == groupMode {
		root = t.TempDir()
	}
	h := harness.NewHome(t)
	if root != "" {
		h.Env = append(h.Env, "PMDAEMON_CGROUP_ROOT="+root)
	}
	return h
}

// apiList is the list of the running daemon, read from its socket (it starts none). Tests
// poll through it: a CLI process per poll (a -race binary) costs more CPU than much of what is
// being measured.
func apiList(t *testing.T, h *harness.Home) []api.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), harness.APITimeout)
	defer cancel()
	rows, err := h.API().List(ctx)
	if err != nil {
		t.Fatalf("the daemon does not answer: %v\ndaemon.log:\n%s", err, h.DaemonLog())
	}
	return rows
}

// apiWait polls the running daemon's list until cond holds; at timeout it fails the test.
func apiWait(t *testing.T, h *harness.Home, timeout time.Duration, what string, cond func([]api.Instance) bool) []api.Instance {
	t.Helper()
	rows, ok := waitRows(t, h, timeout, what, cond)
	if !ok {
		t.FailNow()
	}
	return rows
}

// pingJSON starts the daemon if none runs (`pmdaemon ping`) and returns its ping answer, read
// from the API socket. It also returns what `pmdaemon ping` printed.
func pingJSON(t *testing.T, h *harness.Home) (api.Ping, string) {
	t.Helper()
	text := h.OK("ping")
	p, err := h.API().Ping(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return *p, text
}

// checkMode fails the test (without stopping it: the behaviour checks that follow still run)
// unless the daemon says it runs in mode, so that a cgroup test cannot pass in the fallback.
func checkMode(t *testing.T, h *harness.Home, mode string) api.Ping {
	t.Helper()
	p, text := pingJSON(t, h)
	if p.ProcessMode != mode {
		t.Errorf("ping: process_mode %q (cgroup_root %q, reason %q), want %q", p.ProcessMode, p.CgroupRoot, p.ProcessModeReason, mode)
	}
	switch mode {
	case cgroupMode:
		if fi, err := os.Stat(p.CgroupRoot); p.CgroupRoot == "" || err != nil || !fi.IsDir() {
			t.Errorf("ping in cgroup mode: cgroup_root %q is not a directory (%v)", p.CgroupRoot, err)
		}
		if !strings.Contains(text, "cgroup") {
			t.Errorf("`pmdaemon ping` does not state the process mode: %q", text)
		}
	case groupMode:
		if p.ProcessModeReason == "" {
			t.Errorf("ping in process-group mode gives no reason why no cgroup could be made: %+v", p)
		}
		if !strings.Contains(text, "process group") && !strings.Contains(text, "process-group") {
			t.Errorf("`pmdaemon ping` does not state the process-group fallback: %q", text)
		}
	}
	return p
}

// cgroupProcs reads the pids in a cgroup directory: its cgroup.procs and those of the cgroups
// below it (an instance's processes may sit in a child cgroup of the one listed).
func cgroupProcs(dir string) ([]int, error) {
	var out []int
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(f); err == nil {
				out = append(out, p)
			}
		}
		return nil
	})
	return out, err
}

// inOwnCgroup checks a cgroup-mode row: it names a cgroup directory (an absolute path) holding
// its pid.
func inOwnCgroup(r api.Instance) string {
	if r.Cgroup == "" {
		return "no cgroup listed"
	}
	ps, err := cgroupProcs(r.Cgroup)
	if err != nil {
		return "cgroup " + r.Cgroup + ": " + err.Error()
	}
	if !slices.Contains(ps, r.Pid) {
		return fmt.Sprintf("cgroup %s holds %v, not pid %d", r.Cgroup, ps, r.Pid)
	}
	return ""
}

// envOf returns the value of name in pid's environment ("" if unset or unreadable).
func envOf(pid int, name string) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// cmdline returns pid's command line, space-separated, for messages.
func cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// python3 is the path of a python3 interpreter (the system one if there is one, so that no
// wrapper script stands between the pid and the interpreter).
func python3(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed for this test: %v", err)
	}
	return p
}

// waitRows polls the running daemon's list until cond holds and reports whether it did before
// timeout; unlike h.WaitList it does not end the test, so the checks after it still run.
func waitRows(t *testing.T, h *harness.Home, timeout time.Duration, what string, cond func([]api.Instance) bool) ([]api.Instance, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rows := apiList(t, h)
		if cond(rows) {
			return rows, true
		}
		if time.Now().After(deadline) {
			t.Errorf("timed out after %s waiting for %s; list:\n%s", timeout, what, rowsText(rows))
			return rows, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
