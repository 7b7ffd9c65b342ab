package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Five CLIs racing against no daemon end with exactly one daemon, which all of them talked to.
func TestDaemonConcurrentFirstUseStartsOne(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	const n = 5
	results := make([]harness.Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.Run("ping")
		}()
	}
	wg.Wait()
	pongs := map[string]bool{}
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("ping %d: exit %d, stderr %q", i, r.Code, r.Stderr)
			continue
		}
		// "pong: daemon pid N, version V, home H"
		pid, _, _ := strings.Cut(strings.TrimPrefix(r.Stdout, "pong: daemon pid "), ",")
		pongs[pid] = true
	}
	if len(pongs) != 1 {
		t.Errorf("the pings were answered by different daemons: %v", results)
	}
	// Daemons that lost the race exit at once; wait for them, then exactly one is left.
	harness.Eventually(t, 10*time.Second, "exactly one daemon process", func() bool {
		return len(h.DaemonProcs()) == 1
	})
	ds := h.DaemonProcs()
	if d := h.DaemonPid(); len(ds) != 1 || ds[0] != d {
		t.Errorf("daemon processes %v, daemon.pid %d", ds, d)
	}
	for pid := range pongs {
		if want := fmt.Sprint(ds[0]); pid != want {
			t.Errorf("pings answered by pid %s, the daemon is %s", pid, want)
		}
	}
	// It works.
	h.OK("start", "sleep 1000", "--name", "one")
	h.WaitList(10*time.Second, "one online", harness.AllOnline("one", 1))
	if ds := h.DaemonProcs(); len(ds) != 1 {
		t.Errorf("daemon processes after start: %v", ds)
	}
}

// CPU and memory of a busy app show in list --json.
func TestDaemonReportsCPUAndMemory(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "bash -c 'while :; do :; done'", "--name", "burn")
	h.OK("start", "sleep 1000", "--name", "idle")
	rows := h.WaitList(12*time.Second, "burn using CPU and memory", func(rows []api.Instance) bool {
		rs := harness.Rows(rows, "burn")
		return len(rs) == 1 && rs[0].Status == "online" && rs[0].CPU > 20 && rs[0].Memory > 0
	})
	idle := harness.Rows(rows, "idle")
	if len(idle) != 1 {
		t.Fatalf("idle rows: %+v", idle)
	}
	// The idle app has been sampled too (memory > 0) and uses next to no CPU.
	h.WaitList(6*time.Second, "idle sampled", func(rows []api.Instance) bool {
		rs := harness.Rows(rows, "idle")
		return len(rs) == 1 && rs[0].Memory > 0
	})
	if c := harness.Rows(h.List(), "idle")[0].CPU; c > 20 {
		t.Errorf("idle app shows %.1f%% CPU", c)
	}
	for _, r := range rows {
		if r.UptimeMS <= 0 {
			t.Errorf("%s: uptime_ms %d", r.Name, r.UptimeMS)
		}
	}
}

// The socket is mode 0600 and the home 0700, even when the home existed with a looser mode.
func TestDaemonSocketAndHomeArePrivate(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	if err := os.Chmod(h.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h.OK("ping")
	st, err := os.Stat(filepath.Join(h.Dir, "daemon.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 {
		t.Errorf("daemon.sock is not a socket: %v", st.Mode())
	}
	if p := st.Mode().Perm(); p != 0o600 {
		t.Errorf("daemon.sock mode %o, want 600", p)
	}
	st, err = os.Stat(h.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Mode().Perm(); p != 0o700 {
		t.Errorf("home mode %o, want 700", p)
	}

	// A home the CLI has to create is 0700 from the start.
	parent := t.TempDir()
	fresh := harness.NewHomeAt(t, filepath.Join(parent, "h"))
	fresh.OK("ping")
	for path, want := range map[string]os.FileMode{filepath.Join(parent, "h"): 0o700, filepath.Join(parent, "h", "daemon.sock"): 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
		} else if st.Mode().Perm() != want {
			t.Errorf("%s mode %o, want %o", path, st.Mode().Perm(), want)
		}
	}
}

// Five starts racing against no daemon: all succeed, on one daemon, with distinct ids.
func TestDaemonConcurrentStartsGetDistinctIDs(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	const n = 5
	results := make([]harness.Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.Run("start", "sleep 1000", "--name", fmt.Sprintf("c%d", i))
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 {
			t.Errorf("start c%d: exit %d, stderr %q", i, r.Code, r.Stderr)
		}
	}
	rows := h.WaitList(10*time.Second, "5 apps online", func(rows []api.Instance) bool {
		for i := range n {
			if !harness.AllOnline(fmt.Sprintf("c%d", i), 1)(rows) {
				return false
			}
		}
		return len(rows) == n
	})
	if len(harness.ByID(rows)) != n {
		t.Errorf("ids are not unique: %+v", rows)
	}
	harness.Eventually(t, 10*time.Second, "exactly one daemon process", func() bool {
		return len(h.DaemonProcs()) == 1
	})
	if apps := h.AppProcs(); len(apps) != n {
		t.Errorf("%d app processes, want %d", len(apps), n)
	}
}
