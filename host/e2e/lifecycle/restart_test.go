package lifecycle

import (
	"fmt"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// An instance killed with SIGKILL is restarted: same id, new live pid, restarts+1; its
// sibling is untouched.
func TestKilledInstanceRestarts(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 1000", "--name", "victim", "--instances", "2")
	before := h.WaitList(10*time.Second, "victim online", harness.AllOnline("victim", 2))
	v, other := before[1], before[0]
	harness.Sigkill(t, v.Pid)
	rows := h.WaitList(10*time.Second, "victim[1] back with a new pid", func(rows []api.Instance) bool {
		r, ok := harness.ByID(rows)[v.ID]
		return ok && r.Status == "online" && r.Pid != 0 && r.Pid != v.Pid
	})
	r := harness.ByID(rows)[v.ID]
	if r.Restarts != v.Restarts+1 {
		t.Errorf("restarts %d, want %d", r.Restarts, v.Restarts+1)
	}
	if r.Index != v.Index || r.Name != v.Name {
		t.Errorf("restarted row %+v does not match %+v", r, v)
	}
	if !harness.Alive(r.Pid) {
		t.Errorf("new pid %d is not alive", r.Pid)
	}
	if harness.Alive(v.Pid) {
		t.Errorf("old pid %d is alive", v.Pid)
	}
	if o := harness.ByID(rows)[other.ID]; o.Pid != other.Pid || o.Restarts != other.Restarts || o.Status != "online" {
		t.Errorf("sibling disturbed: before %+v, after %+v", other, o)
	}
	if len(rows) != 2 {
		t.Errorf("want 2 rows, got %+v", rows)
	}
	if n := len(h.AppProcs()); n != 2 {
		t.Errorf("%d app processes, want 2", n)
	}
}

// An app that dies at once is restarted max_restarts times, then errored for good.
func TestRestartCrashLoopEndsErrored(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "bash -c 'exit 1'", "--name", "crash", "--max-restarts", "3", "--min-uptime", "1s")
	rows := h.WaitList(20*time.Second, "crash errored", func(rows []api.Instance) bool {
		rs := harness.Rows(rows, "crash")
		return len(rs) == 1 && rs[0].Status == "errored"
	})
	r := harness.Rows(rows, "crash")[0]
	if r.Restarts != 3 {
		t.Errorf("restarts %d, want 3", r.Restarts)
	}
	if r.Pid != 0 {
		t.Errorf("errored instance has pid %d", r.Pid)
	}
	if r.Reason == "" {
		t.Errorf("errored instance has no reason")
	}
	harness.HoldsFor(t, h.API(), 2*time.Second, "crash stays errored", func(rows []api.Instance) string {
		rs := harness.Rows(rows, "crash")
		if len(rs) != 1 || rs[0].Status != "errored" || rs[0].Restarts != 3 || rs[0].Pid != 0 {
			return fmt.Sprintf("%+v", rs)
		}
		return ""
	})
	if ps := h.AppProcs(); len(ps) != 0 {
		t.Errorf("app processes still running: %v", ps)
	}
}

// With --no-autorestart an app that exits 0 is stopped and stays stopped.
func TestRestartNotDoneWithNoAutorestart(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "bash -c 'exit 0'", "--name", "once", "--no-autorestart")
	rows := h.WaitList(10*time.Second, "once stopped", func(rows []api.Instance) bool {
		rs := harness.Rows(rows, "once")
		return len(rs) == 1 && rs[0].Status == "stopped"
	})
	r := harness.Rows(rows, "once")[0]
	if r.Restarts != 0 || r.Pid != 0 {
		t.Errorf("once: %+v, want restarts 0 and no pid", r)
	}
	harness.HoldsFor(t, h.API(), 2*time.Second, "once is not restarted", func(rows []api.Instance) string {
		rs := harness.Rows(rows, "once")
		if len(rs) != 1 || rs[0].Status != "stopped" || rs[0].Restarts != 0 || rs[0].Pid != 0 {
			return fmt.Sprintf("%+v", rs)
		}
		return ""
	})
}
