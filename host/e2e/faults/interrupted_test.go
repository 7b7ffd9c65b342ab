package faults

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
	"github.com/pmdaemon/pmdaemon/host/procfs"
)

// A daemon killed while a restart waits out one instance's kill timeout, after another
// instance has already stopped, leaves both to the next daemon to start: they were stopped to
// be started again, not finished.
func TestDaemonSigkillDuringRestart(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	// Instance 1 ignores SIGTERM, so the restart's stop waits its kill timeout (3 s) while
	// instance 0 is already stopped.
	script := harness.WriteScript(t, dir, "app.sh", "#!/bin/sh\n"+`[ "$PM2_INSTANCE_ID" = 1 ] && trap '' TERM`+"\nwhile :; do sleep 0.1; done\n")
	h.OK("start", script, "--name", "web", "-i", "2", "--kill-timeout", "3s")
	h.WaitList(10*time.Second, "web online", harness.AllOnline("web", 2))
	done := make(chan harness.Result, 1)
	go func() { done <- h.Exec("restart", "web") }()
	h.WaitList(10*time.Second, "instance 0 stopped, instance 1 stopping", func(rows []api.Instance) bool {
		r := harness.Rows(rows, "web")
		return len(r) == 2 && r[0].Status == "stopped" && r[1].Status == "stopping"
	})
	sigkillDaemon(t, h, oneDaemon(t, h))
	<-done
	h.List()
	rows := h.WaitList(20*time.Second, "web online again", harness.AllOnline("web", 2))
	if d := duplicates(rows); d != "" {
		t.Errorf("rows share: %s", d)
	}
	// Every process of the home belongs to the process group of a listed instance (the
	// shell loops run sleep children), and there are two such groups: nothing ran twice.
	groups := map[int]bool{}
	for _, p := range h.AppProcs() {
		if st, err := procfs.Read(p); err == nil {
			groups[st.Pgid] = true
		}
	}
	listed := map[int]bool{}
	for _, p := range harness.PidsOf(rows, "web") {
		listed[p] = true
	}
	if len(groups) != 2 || !maps.Equal(groups, listed) {
		t.Errorf("process groups of the home %v, listed instances %v", groups, listed)
	}
}

// A reload onto a range that overlaps the old one shifted (3 instances from A..A+2 to
// A+1..A+3) replaces the instances in an order that keeps every port single-owned, and a
// reload that would need two instances to swap ports is refused before anything changes.
func TestReloadOntoAShiftedRange(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	base := harness.FreePorts(t, 4)
	h.OK("start", harness.Echo, "--name", "shift", "-i", "3", "--port", fmt.Sprintf("%d-%d", base, base+2), "--min-uptime", "200ms")
	h.WaitList(10*time.Second, "shift online", harness.AllOnline("shift", 3))
	h.OK("reload", "shift", "--port", fmt.Sprintf("%d-%d", base+1, base+3))
	rows := h.WaitList(10*time.Second, "shift online", harness.AllOnline("shift", 3))
	got := harness.PortsOf(rows, "shift")
	if fmt.Sprint(got) != fmt.Sprint(harness.Seq(base+1, 3)) {
		t.Fatalf("ports %v, want %v", got, harness.Seq(base+1, 3))
	}
	for i, p := range got {
		harness.WaitWho(t, p, "shift", i)
	}
	if d := duplicates(rows); d != "" {
		t.Errorf("rows share: %s", d)
	}
	// The registry holds exactly the live ports: base is free again.
	h.OK("start", harness.Echo, "--name", "other", "--port", fmt.Sprint(base))
}

// A position-independent build (as distributions build Go programs) runs: the daemon gives
// back only its code pages, never relocated data.
func TestPIEBuildDaemonRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "pmdaemon") // its daemon, pmdaemond, beside it: both PIE
	cmd := exec.Command("go", "build", "-buildmode=pie", "-o", dir+"/", "./cmd/pmdaemon", "./cmd/pmdaemond")
	cmd.Dir = harness.ModuleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildmode=pie: %v\n%s", err, out)
	}
	h := harness.NewHome(t)
	run := func(args ...string) string {
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), "PMDAEMON_HOME="+h.Dir)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("pmdaemon-pie %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("start", "sleep 1000", "--name", "s")
	pid := h.DaemonPid()
	harness.Eventually(t, 20*time.Second, "the daemon to give back its code pages", func() bool {
		return strings.Contains(h.DaemonLog(), "code pages given back")
	})
	run("list")
	if got := h.DaemonPid(); got != pid || !harness.Alive(pid) {
		t.Fatalf("the PIE daemon died (pid %d, now %d); log:\n%s", pid, got, h.DaemonLog())
	}
	run("kill")
}
