package faults

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
	"github.com/pmdaemon/pmdaemon/host/procfs"
)

// editState rewrites state.json through a generic JSON tree, so every field pmdaemon wrote is
// kept as it was.
func editState(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("state.json: %v\n%s", err, b)
	}
	edit(m)
	if b, err = json.MarshalIndent(m, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The state file names pid P for an instance, but P now belongs to an unrelated process (a
// `sleep` in its own process group): the recorded start time does not match. The next daemon
// must neither adopt nor signal it, and starts a fresh instance on the instance's port.
func TestPidReuseIsNotAdopted(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		down string // how the daemon went down: "sigkill" (the app dies too) or "kill"
		// start is the recorded start time given the stranger's real one.
		start func(real uint64) uint64
	}{
		{"sigkill_wrong_start", "sigkill", func(real uint64) uint64 { return real - 1 }},
		{"sigkill_no_start", "sigkill", func(uint64) uint64 { return 0 }},
		{"kill_later_start", "kill", func(real uint64) uint64 { return real + 100 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := harness.NewHome(t)
			p := harness.FreePorts(t, 1)
			h.OK("start", harness.Echo, "--name", "victim", "--port", fmt.Sprint(p))
			before := h.WaitList(10*time.Second, "victim online", harness.AllOnline("victim", 1))[0]
			old := h.DaemonPid()
			switch tc.down {
			case "sigkill":
				sigkillDaemon(t, h, old)
				harness.Sigkill(t, before.Pid)
				harness.WaitDead(t, 10*time.Second, "the app to die", before.Pid)
			case "kill":
				h.OK("kill")
			}
			spid, sstart := stranger(t)
			recorded := tc.start(sstart)
			editState(t, h.Dir, func(m map[string]any) {
				in := m["apps"].([]any)[0].(map[string]any)["instances"].([]any)[0].(map[string]any)
				in["pid"], in["pid_start"], in["status"], in["wanted"] = spid, recorded, "online", true
			})
			t.Logf("state names pid %d start %d; that pid is a stranger that started at %d", spid, recorded, sstart)

			rows := h.List() // the new daemon
			if r := harness.Rows(rows, "victim"); len(r) != 1 || r[0].Pid == spid {
				t.Fatalf("the new daemon took the stranger %d for the app: %+v", spid, r)
			}
			rows = h.WaitList(10*time.Second, "victim online as a new process", harness.AllOnline("victim", 1))
			r := harness.Rows(rows, "victim")[0]
			if r.Pid == spid || r.Pid == before.Pid || r.ID != before.ID || port(r) != p {
				t.Errorf("victim after the daemon restart: %+v; want a new pid on port %d (stranger %d, old %d)", r, p, spid, before.Pid)
			}
			if w := harness.WaitWho(t, p, "victim", 0); w.Pid != r.Pid {
				t.Errorf("port %d answered by pid %d, listed %d", p, w.Pid, r.Pid)
			}
			if ps := h.AppProcs(); len(ps) != 1 || ps[0] != r.Pid {
				t.Errorf("app processes %v, want only %d", ps, r.Pid)
			}
			strangerUntouched(t, spid, sstart, "after the daemon started")
			if log := h.DaemonLog(); strings.Contains(log, fmt.Sprintf("pid %d", spid)) {
				t.Errorf("the daemon log mentions the stranger's pid %d:\n%s", spid, log)
			}
			h.OK("delete", "all")
			harness.WaitDead(t, 10*time.Second, "the fresh instance gone after delete all", r.Pid)
			strangerUntouched(t, spid, sstart, "after delete all")
			h.OK("kill")
			strangerUntouched(t, spid, sstart, "after kill")
		})
	}
}

// strangerUntouched checks that pid is still the process that started at start, running.
func strangerUntouched(t *testing.T, pid int, start uint64, when string) {
	t.Helper()
	st, err := procfs.Read(pid)
	switch {
	case err != nil || st.Zombie():
		t.Errorf("%s: the stranger %d was killed (%v, state %c)", when, pid, err, st.State)
	case st.StartTime != start:
		t.Errorf("%s: pid %d is another process now", when, pid)
	case st.State == 'T':
		t.Errorf("%s: the stranger %d was stopped", when, pid)
	}
}
