package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
	"github.com/pmdaemon/pmdaemon/host/ports"
)

// A rolling reload (three instances from A..A+2 onto A+1..A+3, replaced one at a time in the
// order 2, 1, 0) where one instance cannot start on its new port must fail and roll the app
// back: every instance online on its old port, `info` giving the configured spec with no
// override, nothing crash-looping on a new port, and no process but the listed ones. Today the
// instance that failed is left crash-looping on the new port (those already moved stay moved)
// while `info` shows the old spec. `restart NAME --port <configured spec>` afterwards also
// leaves the app wholly on the configured ports; today it leaves the stranded instance where it
// is. The app (echo behind a shell script) exits 1 when a file refuse-INSTANCE-PORT exists, so
// an instance can be refused its new port and still run on its old one, which another instance
// may be refused. The cases put the failure on the first, the second and the last instance
// replaced.
func TestRollbackOfFailedRollingReload(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		instance int // refuses its new port, A+instance+1
	}{
		{"first-replaced-fails", 2},
		{"second-replaced-fails", 1},
		{"last-replaced-fails", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := harness.NewHome(t)
			a := harness.FreePorts(t, 4)
			dir := t.TempDir()
			script := harness.WriteScript(t, dir, "app.sh", fmt.Sprintf(
				"#!/bin/sh\nif [ -e \"%s/refuse-$PM2_INSTANCE_ID-$PORT\" ]; then echo \"refusing port $PORT\" >&2; exit 1; fi\nexec %s\n", dir, harness.Echo))
			bad := a + tc.instance + 1
			configured := harness.PortRange(a, a+2)
			h.OK("start", script, "--name", "roll", "-i", "3", "--port", configured, "--min-uptime", "300ms")
			onOld := func(rows []api.Instance) bool {
				return harness.AllOnline("roll", 3)(rows) && slices.Equal(harness.PortsOf(rows, "roll"), harness.Seq(a, 3))
			}
			h.WaitList(15*time.Second, "roll online", onOld)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("refuse-%d-%d", tc.instance, bad)), nil, 0o644); err != nil {
				t.Fatal(err)
			}

			res := h.Run("reload", "roll", "--port", harness.PortRange(a+1, a+3))
			t.Logf("reload onto %s with port %d refused to instance %d: exit %d, stderr %q", harness.PortRange(a+1, a+3), bad, tc.instance, res.Code, res.Stderr)
			if res.Code == 0 {
				t.Errorf("the reload succeeded although instance %d cannot start on port %d", tc.instance, bad)
			} else {
				harness.ErrLike(t, res.Stderr, "roll")
			}
			checkRolledBack(t, h, "after the failed reload", a, configured, onOld, true)

			h.OK("restart", "roll", "--port", configured)
			checkRolledBack(t, h, "after restart --port "+configured, a, configured, onOld, false)
		})
	}
}

// checkRolledBack checks that roll runs as configured: its three instances online on a..a+2,
// each answering there, `info` giving the configured live spec (and no override, with
// noOverride), no crash loop for a while, and no app process but the listed ones.
func checkRolledBack(t *testing.T, h *harness.Home, when string, a int, configured string, onOld func([]api.Instance) bool, noOverride bool) {
	t.Helper()
	rows, ok := waitRows(t, h, 10*time.Second, "roll online on its configured ports "+when, onOld)
	if !ok {
		return
	}
	rs := harness.Rows(rows, "roll")
	for _, r := range rs {
		if w := harness.WaitWho(t, port(r), "roll", r.Index); w.Pid != r.Pid {
			t.Errorf("%s: port %d answered by pid %d, listed %d", when, port(r), w.Pid, r.Pid)
		}
	}
	info := h.Info("roll")
	want, _ := ports.ParseSpec(configured)
	if live, err := ports.ParseSpec(info.LivePortSpec); err != nil || live != want || !slices.Equal(sorted(info.Ports), harness.Seq(a, 3)) {
		t.Errorf("%s: info gives live spec %q and ports %v, want %s and %v", when, info.LivePortSpec, info.Ports, configured, harness.Seq(a, 3))
	}
	if noOverride && info.PortOverride {
		t.Errorf("%s: info shows a port override (live spec %q)", when, info.LivePortSpec)
	}
	// Nothing crash-loops: the same pids stay online on the same ports, with the same restarts,
	// for longer than min_uptime and the restart floor.
	pids, restarts := harness.PidsOf(rows, "roll"), map[int]int{}
	for _, r := range rs {
		restarts[r.Index] = r.Restarts
	}
	harness.HoldsFor(t, h.API(), 2*time.Second, "roll stays on its old ports", func(now []api.Instance) string {
		if !onOld(now) || !slices.Equal(harness.PidsOf(now, "roll"), pids) {
			return fmt.Sprintf("%s: roll did not stay online on %s as pids %v", when, configured, pids)
		}
		for _, r := range harness.Rows(now, "roll") {
			if r.Restarts != restarts[r.Index] {
				return fmt.Sprintf("%s: roll[%d] restarted (%d restarts, was %d)", when, r.Index, r.Restarts, restarts[r.Index])
			}
		}
		return ""
	})
	if got := sorted(h.AppProcs()); !slices.Equal(got, sorted(pids)) {
		t.Errorf("%s: app processes %v, want only the listed %v", when, got, sorted(pids))
	}
}
