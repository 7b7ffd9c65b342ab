package lifecycle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// An instance whose process tree grows past --max-memory is restarted on a metrics tick, the
// restart is counted, and the reason is shown by info.
func TestMaxMemoryRestartsTheInstance(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	// bash holds a 40 MB string; the limit is 20 MB.
	h.OK("start", `bash -c 'x=$(head -c 40000000 /dev/zero | tr "\0" a); sleep 100000; :'`,
		"--name", "hog", "--max-memory", "20M")
	rows := h.WaitList(30*time.Second, "hog restarted for memory", func(rows []api.Instance) bool {
		rs := harness.Rows(rows, "hog")
		return len(rs) == 1 && rs[0].Restarts >= 1
	})
	if r := harness.Rows(rows, "hog")[0]; !strings.Contains(r.Reason, "max_memory_restart") {
		t.Errorf("reason %q does not name max_memory_restart", r.Reason)
	}
	info := h.OK("info", "hog")
	if !strings.Contains(info, "exceeded max_memory_restart") {
		t.Errorf("info does not show the memory restart reason:\n%s", info)
	}
	harness.Eventually(t, 10*time.Second, "the reason in daemon.log", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.Dir, "daemon.log"))
		return strings.Contains(string(b), "hog[0]") && strings.Contains(string(b), "exceeded max_memory_restart")
	})
	// An app under its limit is left alone.
	h.OK("start", "sleep 100000", "--name", "small", "--max-memory", "200M")
	h.WaitList(10*time.Second, "small online", harness.AllOnline("small", 1))
	harness.HoldsFor(t, h.API(), 5*time.Second, "small not restarted", func(rows []api.Instance) string {
		if r := harness.Rows(rows, "small"); len(r) != 1 || r[0].Restarts != 0 {
			return "small was restarted"
		}
		return ""
	})
}

// A daemon restart brings back what was running and leaves what had ended as it was: an app
// that gave up after a crash loop stays errored, a finished one-shot app is not run again.
func TestDaemonRestartKeepsEndedInstancesEnded(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	oneshot := harness.WriteScript(t, dir, "oneshot.sh", "#!/bin/sh\necho ran >> "+dir+"/runs\n")
	h.OK("start", "bash -c 'exit 1'", "--name", "crasher", "--max-restarts", "1", "--min-uptime", "1s")
	h.OK("start", oneshot, "--name", "oneshot", "--no-autorestart")
	h.OK("start", "sleep 100000", "--name", "server")
	h.WaitList(20*time.Second, "crasher errored, oneshot stopped", func(rows []api.Instance) bool {
		c, o := harness.Rows(rows, "crasher"), harness.Rows(rows, "oneshot")
		return len(c) == 1 && c[0].Status == "errored" && len(o) == 1 && o[0].Status == "stopped"
	})
	before := harness.ByID(h.List())
	h.OK("kill")
	rows := h.WaitList(20*time.Second, "server back online", harness.AllOnline("server", 1))
	for _, r := range rows {
		b := before[r.ID]
		switch r.Name {
		case "crasher":
			if r.Status != "errored" || r.Restarts != b.Restarts {
				t.Errorf("crasher after daemon restart: status %s restarts %d, want errored %d", r.Status, r.Restarts, b.Restarts)
			}
		case "oneshot":
			if r.Status != "stopped" {
				t.Errorf("oneshot after daemon restart: status %s, want stopped", r.Status)
			}
		}
	}
	harness.HoldsFor(t, h.API(), 2*time.Second, "ended apps stay ended", func(rows []api.Instance) string {
		for _, r := range rows {
			if r.Name != "server" && r.Pid != 0 {
				return r.Name + " is running again"
			}
		}
		return ""
	})
	if runs := strings.Count(readFile(t, dir+"/runs"), "ran"); runs != 1 {
		t.Errorf("oneshot ran %d times, want 1", runs)
	}
	// They can still be started by hand.
	h.OK("restart", "crasher")
	h.WaitList(10*time.Second, "crasher restarted", func(rows []api.Instance) bool {
		c := harness.Rows(rows, "crasher")
		return len(c) == 1 && c[0].Restarts > before[c[0].ID].Restarts
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Metrics are measured when list asks; a list right after another must still measure the
// instances the first did not see.
func TestListMeasuresNewInstancesAtOnce(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 100000", "--name", "first")
	h.OK("delete", "all") // its answer lists (and measures) no instance
	h.OK("start", "sleep 100000", "--name", "second")
	rows := harness.Rows(h.List(), "second")
	if len(rows) != 1 || rows[0].Memory == 0 {
		t.Fatalf("a new instance listed at once shows no memory: %+v", rows)
	}
}
