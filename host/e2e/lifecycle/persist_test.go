package lifecycle

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// startTwoApps starts p1 (2 instances) and p2 (1) and waits until they are online.
func startTwoApps(t *testing.T, h *harness.Home) []api.Instance {
	t.Helper()
	h.OK("start", "sleep 1000", "--name", "p1", "--instances", "2")
	h.OK("start", "sleep 1000", "--name", "p2")
	return h.WaitList(10*time.Second, "p1 and p2 online", bothOnline)
}

func bothOnline(rows []api.Instance) bool {
	return harness.AllOnline("p1", 2)(rows) && harness.AllOnline("p2", 1)(rows) && len(rows) == 3
}

// identity is what must survive a daemon restart: id, name, index.
type identity struct {
	ID, Instance int
	Name         string
}

func identities(rows []api.Instance) []identity {
	var out []identity
	for _, r := range rows {
		out = append(out, identity{r.ID, r.Index, r.Name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func sameIdentities(t *testing.T, before, after []api.Instance) {
	t.Helper()
	a, b := identities(before), identities(after)
	if len(a) != len(b) {
		t.Fatalf("rows before %+v, after %+v", a, b)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("identities changed: before %+v, after %+v", a, b)
			return
		}
	}
}

// `pmdaemon kill` stops the apps and the daemon; the next command starts a daemon that brings
// the same apps back under the same ids.
func TestPersistAcrossDaemonKill(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	before := startTwoApps(t, h)
	h.OK("start", "sleep 1000", "--name", "off")
	h.OK("stop", "off")
	oldDaemon := h.DaemonPid()
	h.OK("kill")
	if harness.Alive(oldDaemon) {
		t.Errorf("daemon %d alive after kill returned", oldDaemon)
	}
	for _, r := range before {
		if harness.Alive(r.Pid) {
			t.Errorf("%s[%d] pid %d alive after kill", r.Name, r.Index, r.Pid)
		}
	}
	if ps := h.Processes(); len(ps) != 0 {
		t.Errorf("processes left after kill: %v", ps)
	}
	all := h.WaitList(15*time.Second, "p1 and p2 back online", func(rows []api.Instance) bool {
		return harness.AllOnline("p1", 2)(rows) && harness.AllOnline("p2", 1)(rows)
	})
	// The app the user stopped stays stopped.
	if off := harness.Rows(all, "off"); len(off) != 1 || off[0].Status != "stopped" || off[0].Pid != 0 {
		t.Errorf("stopped app after the daemon restart: %+v", off)
	}
	if n := len(h.AppProcs()); n != 3 {
		t.Errorf("%d app processes, want 3", n)
	}
	after := append(harness.Rows(all, "p1"), harness.Rows(all, "p2")...)
	sameIdentities(t, before, after)
	old := map[int]bool{}
	for _, r := range before {
		old[r.Pid] = true
	}
	for _, r := range after {
		if old[r.Pid] || !harness.Alive(r.Pid) {
			t.Errorf("%s[%d]: pid %d should be new and alive (old pids %v)", r.Name, r.Index, r.Pid, pidsOf(before))
		}
	}
	if d := h.DaemonPid(); d == oldDaemon || !harness.Alive(d) {
		t.Errorf("new daemon pid %d (old %d)", d, oldDaemon)
	}
}

// A daemon killed with SIGKILL loses nothing: the apps keep running, and the next daemon takes
// back the very same processes, starts no duplicate, and can still manage them.
func TestDaemonSigkillTakeBack(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	before := startTwoApps(t, h)
	oldDaemon := h.DaemonPid()
	harness.Sigkill(t, oldDaemon)
	harness.WaitDead(t, 10*time.Second, "the daemon to die", oldDaemon)
	for _, r := range before {
		if !harness.Alive(r.Pid) {
			t.Errorf("%s[%d] pid %d died with the daemon", r.Name, r.Index, r.Pid)
		}
	}
	after := h.WaitList(15*time.Second, "p1 and p2 taken back", bothOnline)
	sameIdentities(t, before, after)
	prev := harness.ByID(before)
	for _, r := range after {
		if r.Pid != prev[r.ID].Pid {
			t.Errorf("%s[%d]: pid %d, want the same process %d", r.Name, r.Index, r.Pid, prev[r.ID].Pid)
		}
		if r.Restarts != prev[r.ID].Restarts {
			t.Errorf("%s[%d]: restarts %d, want %d", r.Name, r.Index, r.Restarts, prev[r.ID].Restarts)
		}
	}
	ds := h.DaemonProcs()
	if len(ds) != 1 || ds[0] == oldDaemon {
		t.Errorf("daemon processes %v, want exactly one new one (old %d)", ds, oldDaemon)
	}
	if apps := h.AppProcs(); len(apps) != len(after) {
		t.Errorf("%d app processes for %d rows: %v (rows %v)", len(apps), len(after), apps, pidsOf(after))
	}

	// The taken-back processes are still supervised: a crash is restarted, a stop stops.
	v := harness.Rows(after, "p1")[0]
	harness.Sigkill(t, v.Pid)
	rows := h.WaitList(10*time.Second, "taken-back p1[0] restarted", func(rows []api.Instance) bool {
		r := harness.ByID(rows)[v.ID]
		return r.Status == "online" && r.Pid != 0 && r.Pid != v.Pid
	})
	if r := harness.ByID(rows)[v.ID]; r.Restarts != v.Restarts+1 || !harness.Alive(r.Pid) {
		t.Errorf("taken-back instance after kill -9: %+v (before %+v)", r, v)
	}
	p2 := harness.Rows(after, "p2")[0]
	h.OK("stop", "p2")
	if harness.Alive(p2.Pid) {
		t.Errorf("taken-back p2 pid %d alive after stop", p2.Pid)
	}
}

// An app that dies while the daemon is dead is started again by the next daemon; the ones
// still running are taken back; a stopped app stays stopped.
func TestDaemonSigkillAppDiedMeanwhile(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	startTwoApps(t, h)
	h.OK("start", "sleep 1000", "--name", "off")
	h.OK("stop", "off")
	before := h.List()
	oldDaemon := h.DaemonPid()
	harness.Sigkill(t, oldDaemon)
	harness.WaitDead(t, 10*time.Second, "the daemon to die", oldDaemon)
	dead := harness.Rows(before, "p1")[1]
	harness.Sigkill(t, dead.Pid)
	harness.WaitDead(t, 10*time.Second, "p1[1] to die", dead.Pid)
	after := h.WaitList(15*time.Second, "p1 and p2 online again", func(rows []api.Instance) bool {
		return harness.AllOnline("p1", 2)(rows) && harness.AllOnline("p2", 1)(rows)
	})
	sameIdentities(t, before, after)
	prev := harness.ByID(before)
	for _, r := range after {
		switch {
		case r.ID == dead.ID:
			if r.Pid == dead.Pid || !harness.Alive(r.Pid) {
				t.Errorf("p1[1] should run as a new process: %+v (died: %d)", r, dead.Pid)
			}
		case r.Name == "off":
			if r.Status != "stopped" || r.Pid != 0 {
				t.Errorf("the stopped app came back: %+v", r)
			}
		default:
			if r.Pid != prev[r.ID].Pid {
				t.Errorf("%s[%d] should be taken back: pid %d, was %d", r.Name, r.Index, r.Pid, prev[r.ID].Pid)
			}
		}
	}
	if apps := h.AppProcs(); len(apps) != 3 {
		t.Errorf("%d app processes, want 3: %v", len(apps), apps)
	}
	if ds := h.DaemonProcs(); len(ds) != 1 {
		t.Errorf("daemon processes: %v", ds)
	}
}

// A daemon killed with SIGKILL leaves daemon.sock behind; the next CLI call starts a new
// daemon anyway.
func TestStaleSocketRecovery(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 1000", "--name", "s")
	before := h.WaitList(10*time.Second, "s online", harness.AllOnline("s", 1))
	oldDaemon := h.DaemonPid()
	harness.Sigkill(t, oldDaemon)
	harness.WaitDead(t, 10*time.Second, "the daemon to die", oldDaemon)
	sock := filepath.Join(h.Dir, "daemon.sock")
	if st, err := os.Stat(sock); err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("expected a stale socket at %s: %v", sock, err)
	}
	out := h.OK("ping")
	if !strings.HasPrefix(out, "pong") {
		t.Errorf("ping: %q", out)
	}
	d := h.DaemonPid()
	if d == oldDaemon || !harness.Alive(d) {
		t.Errorf("daemon pid %d after recovery (old %d)", d, oldDaemon)
	}
	after := h.WaitList(10*time.Second, "s online", harness.AllOnline("s", 1))
	if after[0].Pid != before[0].Pid || after[0].ID != before[0].ID {
		t.Errorf("after recovery %+v, before %+v", after[0], before[0])
	}
	h.OK("restart", "s")
	h.WaitList(10*time.Second, "s online after restart", harness.AllOnline("s", 1))
}

// save writes the app list; resurrect starts it again after a delete all.
func TestPersistSaveThenResurrect(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 1000", "--name", "r1", "--instances", "2")
	h.OK("start", "sleep 1001", "--name", "r2", "--env", "X=1", "--kill-timeout", "2s")
	before := h.WaitList(10*time.Second, "r1 and r2 online", func(rows []api.Instance) bool {
		return harness.AllOnline("r1", 2)(rows) && harness.AllOnline("r2", 1)(rows)
	})
	out := h.OK("save")
	dump := filepath.Join(h.Dir, "dump.json")
	if !strings.Contains(out, dump) {
		t.Errorf("save output %q does not name %s", out, dump)
	}
	if _, err := os.Stat(dump); err != nil {
		t.Fatalf("dump file: %v", err)
	}
	h.OK("delete", "all")
	if rows := h.List(); len(rows) != 0 {
		t.Fatalf("list after delete all: %+v", rows)
	}
	for _, r := range before {
		if harness.Alive(r.Pid) {
			t.Errorf("pid %d alive after delete all", r.Pid)
		}
	}
	out = h.OK("resurrect")
	for _, name := range []string{"r1", "r2"} {
		if !strings.Contains(out, "resurrected "+name) {
			t.Errorf("resurrect output does not mention %s: %s", name, out)
		}
	}
	after := h.WaitList(10*time.Second, "r1 and r2 back", func(rows []api.Instance) bool {
		return harness.AllOnline("r1", 2)(rows) && harness.AllOnline("r2", 1)(rows) && len(rows) == 3
	})
	for _, r := range after {
		if !harness.Alive(r.Pid) {
			t.Errorf("%s[%d] pid %d not alive", r.Name, r.Index, r.Pid)
		}
	}
	info := h.Info("r2")
	if info.Config.Env["X"] != "1" || info.Config.KillTimeout.Std() != 2*time.Second || info.Config.Script != "sleep 1001" {
		t.Errorf("r2's config was not restored: %+v", info.Config)
	}
	// Resurrect again: everything runs already, nothing is duplicated.
	h.OK("resurrect")
	again := h.List()
	if len(again) != 3 {
		t.Errorf("second resurrect changed the list: %+v", again)
	}
	prev := harness.ByID(after)
	for _, r := range again {
		if prev[r.ID].Pid != r.Pid {
			t.Errorf("second resurrect touched %s[%d]: pid %d -> %d", r.Name, r.Index, prev[r.ID].Pid, r.Pid)
		}
	}
	if n := len(h.AppProcs()); n != 3 {
		t.Errorf("%d app processes, want 3", n)
	}
}
