package faults

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

const fleetSize = 20

// startFleet starts 4 echo apps of 5 instances: two on fixed ranges, two sharing one auto
// range of 12 ports. It returns the rows once every instance answers HTTP on its port.
func startFleet(t *testing.T, h *harness.Home) []api.Instance {
	t.Helper()
	a, b, c := harness.FreePorts(t, 5), harness.FreePorts(t, 5), harness.FreePorts(t, 12)
	apps := [][2]string{
		{"ra", fmt.Sprintf("%d-%d", a, a+4)},
		{"rb", fmt.Sprintf("%d-%d", b, b+4)},
		{"xa", fmt.Sprintf("auto:%d-%d", c, c+11)},
		{"xb", fmt.Sprintf("auto:%d-%d", c, c+11)},
	}
	for _, app := range apps {
		h.OK("start", harness.Echo, "--name", app[0], "--instances", "5", "--port", app[1])
	}
	rows := h.WaitList(20*time.Second, "the fleet online", fleetOnline)
	for _, r := range rows {
		if w := harness.WaitWho(t, port(r), r.Name, r.Index); w.Pid != r.Pid {
			t.Fatalf("%s[%d] listed with pid %d, but pid %d answers on %d", r.Name, r.Index, r.Pid, w.Pid, port(r))
		}
	}
	if d := duplicates(rows); d != "" {
		t.Fatalf("the fleet shares: %s", d)
	}
	return rows
}

func fleetOnline(rows []api.Instance) bool {
	for _, n := range []string{"ra", "rb", "xa", "xb"} {
		if !harness.AllOnline(n, 5)(rows) {
			return false
		}
	}
	return len(rows) == fleetSize
}

// sameRows checks that after has the rows of before: same ids, names, indexes, ports, restarts,
// and the same pid unless the id is in fresh (those must have a new live pid). With early set
// (the very first list of a new daemon), a row still "starting" with no pid is let through and
// counted: the daemon serves before its take-back goroutines have all run.
func sameRows(t *testing.T, before, after []api.Instance, fresh map[int]bool, early bool) (starting int) {
	t.Helper()
	if len(after) != len(before) {
		t.Errorf("%d rows, want %d", len(after), len(before))
	}
	now := harness.ByID(after)
	for _, b := range before {
		r, ok := now[b.ID]
		switch {
		case !ok:
			t.Errorf("id %d (%s[%d]) is gone", b.ID, b.Name, b.Index)
			continue
		case r.Name != b.Name || r.Index != b.Index || port(r) != port(b):
			t.Errorf("id %d was %s[%d] on port %d, is %s[%d] on port %d", b.ID, b.Name, b.Index, port(b), r.Name, r.Index, port(r))
		case early && r.Status == "starting" && r.Pid == 0:
			starting++
		case r.Status != "online":
			t.Errorf("%s[%d] is %s (pid %d), want online", r.Name, r.Index, r.Status, r.Pid)
		case fresh[b.ID]:
			if r.Pid == 0 || r.Pid == b.Pid || !harness.Alive(r.Pid) {
				t.Errorf("%s[%d] should run as a new process: pid %d (died: %d)", r.Name, r.Index, r.Pid, b.Pid)
			}
		default:
			if r.Pid != b.Pid {
				t.Errorf("%s[%d]: pid %d, want the taken-back %d", r.Name, r.Index, r.Pid, b.Pid)
			}
			if r.Restarts != b.Restarts {
				t.Errorf("%s[%d]: restarts %d, want %d", r.Name, r.Index, r.Restarts, b.Restarts)
			}
		}
	}
	if d := duplicates(after); d != "" {
		t.Errorf("after the daemon restart two rows share: %s", d)
	}
	return starting
}

// The daemon is killed with SIGKILL five times under 20 running instances. Each time the next
// CLI call starts a daemon that takes back the very same processes (same pids, ids and ports,
// nothing started twice, nothing left over), and after all that they are still supervised.
func TestDaemonSigkillLoopTakesBackFleet(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	before := startFleet(t, h)
	procs := sorted(h.AppProcs())
	if !slices.Equal(procs, onlinePids(before)) {
		t.Fatalf("app processes %v, listed pids %v", procs, onlinePids(before))
	}
	for round := 1; round <= 5; round++ {
		old := oneDaemon(t, h)
		sigkillDaemon(t, h, old)
		for _, r := range before {
			if !harness.Alive(r.Pid) {
				t.Fatalf("round %d: %s[%d] pid %d died with the daemon", round, r.Name, r.Index, r.Pid)
			}
		}
		took := time.Now()
		first := h.List() // starts the new daemon
		t.Logf("round %d: daemon %d killed; the next list took %s", round, old, time.Since(took).Round(time.Millisecond))
		if n := sameRows(t, before, first, nil, true); n > 0 {
			t.Logf("round %d: the first list of the new daemon shows %d of %d instances still starting, with no pid", round, n, len(first))
		}
		after := h.WaitList(10*time.Second, "every instance taken back", fleetOnline)
		sameRows(t, before, after, nil, false)
		if d := oneDaemon(t, h); d == old {
			t.Errorf("round %d: the daemon is still %d", round, d)
		}
		if got := sorted(h.AppProcs()); !slices.Equal(got, procs) {
			t.Errorf("round %d: app processes %v, want exactly %v", round, got, procs)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	// Every instance still answers as itself.
	for _, r := range before {
		if w := harness.WaitWho(t, port(r), r.Name, r.Index); w.Pid != r.Pid {
			t.Errorf("%s[%d]: pid %d answers on %d, want %d", r.Name, r.Index, w.Pid, port(r), r.Pid)
		}
	}
	// Still supervised after five take-backs: an instance of the fixed range and one of the
	// auto range are killed and come back on their own ports with new pids.
	for _, v := range []api.Instance{harness.Rows(before, "rb")[3], harness.Rows(before, "xa")[2]} {
		harness.Sigkill(t, v.Pid)
		rows := h.WaitList(10*time.Second, fmt.Sprintf("%s[%d] restarted", v.Name, v.Index), func(rows []api.Instance) bool {
			r := harness.ByID(rows)[v.ID]
			return r.Status == "online" && r.Pid != 0 && r.Pid != v.Pid
		})
		r := harness.ByID(rows)[v.ID]
		if port(r) != port(v) || r.Restarts != v.Restarts+1 {
			t.Errorf("%s[%d] after kill -9: port %d restarts %d, want port %d restarts %d", v.Name, v.Index, port(r), r.Restarts, port(v), v.Restarts+1)
		}
		if w := harness.WaitWho(t, port(v), v.Name, v.Index); w.Pid != r.Pid {
			t.Errorf("port %d answered by pid %d, listed %d", port(v), w.Pid, r.Pid)
		}
		if d := duplicates(rows); d != "" {
			t.Errorf("after the restart two rows share: %s", d)
		}
	}
	final := h.List()
	if got := sorted(h.AppProcs()); !slices.Equal(got, onlinePids(final)) || len(got) != fleetSize {
		t.Errorf("app processes %v, listed pids %v", got, onlinePids(final))
	}
	// And a stop of everything still reaches the taken-back processes.
	h.OK("stop", "all")
	harness.WaitDead(t, 10*time.Second, "every app process gone after stop all", procs...)
	if ps := h.AppProcs(); len(ps) != 0 {
		t.Errorf("app processes left after stop all: %v", ps)
	}
}

// Instances that die while the daemon is down are started again by the next daemon on the
// ports they had (a fixed range's and an auto range's); the others are taken back.
func TestDaemonSigkillInstancesDiedMeanwhile(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	before := startFleet(t, h)
	old := oneDaemon(t, h)
	sigkillDaemon(t, h, old)
	dead := []api.Instance{harness.Rows(before, "ra")[0], harness.Rows(before, "xb")[4]}
	fresh := map[int]bool{}
	for _, v := range dead {
		harness.Sigkill(t, v.Pid)
		fresh[v.ID] = true
	}
	harness.WaitDead(t, 10*time.Second, "the two instances to die", dead[0].Pid, dead[1].Pid)

	h.List() // starts the new daemon
	after := h.WaitList(15*time.Second, "the fleet online again", fleetOnline)
	sameRows(t, before, after, fresh, false)
	now := harness.ByID(after)
	for _, v := range dead {
		r := now[v.ID]
		if w := harness.WaitWho(t, port(v), v.Name, v.Index); w.Pid != r.Pid {
			t.Errorf("%s[%d]: port %d answered by pid %d, listed %d", v.Name, v.Index, port(v), w.Pid, r.Pid)
		}
		t.Logf("%s[%d] died while the daemon was down: pid %d -> %d, restarts %d -> %d", v.Name, v.Index, v.Pid, r.Pid, v.Restarts, r.Restarts)
	}
	oneDaemon(t, h)
	if got := sorted(h.AppProcs()); !slices.Equal(got, onlinePids(after)) {
		t.Errorf("app processes %v, listed pids %v", got, onlinePids(after))
	}
	// The restarted ones are supervised like the others.
	v := now[dead[1].ID]
	harness.Sigkill(t, v.Pid)
	h.WaitList(10*time.Second, "the restarted instance restarted again", func(rows []api.Instance) bool {
		r := harness.ByID(rows)[v.ID]
		return r.Status == "online" && r.Pid != 0 && r.Pid != v.Pid && port(r) == port(v)
	})
}

// The daemon is killed with SIGKILL in the middle of a side-by-side reload onto new ports (the
// new instances are up, waiting out a long min_uptime, the old ones still serve). The next daemon
// must come back with one consistent app: two instances with indexes 0 and 1, each answering
// on its port, no process left over from the interrupted half, and the app still restartable.
// (The app is ready by uptime, so that the reload is still waiting when the daemon is killed.)
// Today the state written mid-reload holds both halves as four wanted slots, so the next
// daemon runs four instances (two "instance 0", two "instance 1" sharing log files) on both
// ranges, and `restart web` fails: "Port range B-B+1 has only 2 ports but 4 instances requested".
func TestDaemonSigkillDuringReload(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	a, b := harness.FreePorts(t, 2), harness.FreePorts(t, 2)
	h.OK("start", harness.Echo, "--name", "web", "--instances", "2", "--port", fmt.Sprintf("%d-%d", a, a+1), "--min-uptime", "10s", "--ready", "uptime")
	h.WaitList(10*time.Second, "web online", harness.AllOnline("web", 2))
	done := make(chan harness.Result, 1)
	go func() { done <- h.Exec("reload", "web", "--port", fmt.Sprintf("%d-%d", b, b+1)) }()
	h.WaitList(10*time.Second, "the new instances up beside the old", func(rows []api.Instance) bool {
		return len(rows) == 4 && settled(rows)
	})
	// The state file holds the half-done reload too.
	harness.Eventually(t, 5*time.Second, "state.json to hold the reload", func() bool {
		f, err := stateFile(h.Dir)
		return err == nil && len(f.Apps) == 1 && len(f.Apps[0].Instances) == 4
	})
	old := oneDaemon(t, h)
	sigkillDaemon(t, h, old)
	r := <-done
	t.Logf("the interrupted reload: exit %d, stderr %q", r.Code, r.Stderr)
	if r.Code == 0 {
		t.Fatalf("the reload succeeded although its daemon was killed")
	}
	harness.ErrLike(t, r.Stderr)

	h.List() // the next daemon
	rows := h.WaitList(15*time.Second, "web settled", settled)
	web := harness.Rows(rows, "web")
	idx := map[int]int{}
	for _, r := range web {
		idx[r.Index]++
	}
	if len(web) != 2 || idx[0] != 1 || idx[1] != 1 {
		t.Errorf("after the interrupted reload web has %d rows with indexes %v, want 2 with 0 and 1:\n%s", len(web), idx, rowsText(web))
	}
	if d := duplicates(rows); d != "" {
		t.Errorf("rows share: %s", d)
	}
	if got := sorted(h.AppProcs()); !slices.Equal(got, onlinePids(rows)) {
		t.Errorf("app processes %v, listed pids %v", got, onlinePids(rows))
	}
	for _, r := range web {
		if r.Status == "online" {
			if w := harness.WaitWho(t, port(r), "web", r.Index); w.Pid != r.Pid {
				t.Errorf("port %d answered by %d, listed %d", port(r), w.Pid, r.Pid)
			}
		}
	}
	if r := h.Run("restart", "web"); r.Code != 0 {
		t.Errorf("restart web after the interrupted reload: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

func rowsText(rows []api.Instance) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "  id %d %s[%d] %s pid %d port %d\n", r.ID, r.Name, r.Index, r.Status, r.Pid, port(r))
	}
	return b.String()
}
