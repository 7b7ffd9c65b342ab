package lifecycle

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// stop, restart and delete by name, by id and all. Each case starts app a (2 instances) and
// app b (1 instance), acts on a target, and checks every row against what it should be.
func TestTargetActionsChangeExactlyTheirRows(t *testing.T) {
	t.Parallel()
	type want int
	const (
		same      want = iota // untouched: same pid, online
		stopped               // listed, stopped, no pid, old process gone
		restarted             // new live pid, restarts+1, same id
		deleted               // no longer listed, old process gone
	)
	// target is resolved against the rows: "a", "b", "all" or "id:N" (the id of row N).
	cases := []struct {
		verb, target string
		effect       [3]want // a[0], a[1], b[0]
	}{
		{"stop", "a", [3]want{stopped, stopped, same}},
		{"stop", "id:1", [3]want{same, stopped, same}},
		{"stop", "all", [3]want{stopped, stopped, stopped}},
		{"restart", "a", [3]want{restarted, restarted, same}},
		{"restart", "id:1", [3]want{same, restarted, same}},
		{"restart", "all", [3]want{restarted, restarted, restarted}},
		{"delete", "a", [3]want{deleted, deleted, same}},
		{"delete", "id:1", [3]want{same, deleted, same}},
		{"delete", "all", [3]want{deleted, deleted, deleted}},
	}
	for _, tc := range cases {
		t.Run(tc.verb+"_"+tc.target, func(t *testing.T) {
			t.Parallel()
			h := harness.NewHome(t)
			h.OK("start", "sleep 1000", "--name", "a", "--instances", "2")
			h.OK("start", "sleep 1000", "--name", "b")
			before := h.WaitList(10*time.Second, "a and b online", func(rows []api.Instance) bool {
				return harness.AllOnline("a", 2)(rows) && harness.AllOnline("b", 1)(rows)
			})
			if len(before) != 3 {
				t.Fatalf("want 3 rows, got %+v", before)
			}
			target := tc.target
			var row int
			if _, err := fmt.Sscanf(tc.target, "id:%d", &row); err == nil {
				target = strconv.Itoa(before[row].ID)
			}
			h.OK(tc.verb, target)
			rows := h.List()
			now := harness.ByID(rows)
			for i, b := range before {
				r, listed := now[b.ID]
				switch tc.effect[i] {
				case same:
					if !listed || r.Pid != b.Pid || r.Status != "online" || r.Restarts != b.Restarts {
						t.Errorf("row %d should be untouched: before %+v, after %+v (listed %v)", i, b, r, listed)
					}
				case stopped:
					if !listed || r.Status != "stopped" || r.Pid != 0 || r.Name != b.Name || r.Index != b.Index {
						t.Errorf("row %d should be stopped: before %+v, after %+v (listed %v)", i, b, r, listed)
					}
					if harness.Alive(b.Pid) {
						t.Errorf("row %d: old pid %d still alive after %s", i, b.Pid, tc.verb)
					}
				case restarted:
					if !listed || r.Pid == 0 || r.Pid == b.Pid || r.Restarts != b.Restarts+1 || r.Name != b.Name || r.Index != b.Index {
						t.Errorf("row %d should be restarted: before %+v, after %+v (listed %v)", i, b, r, listed)
					} else if !harness.Alive(r.Pid) {
						t.Errorf("row %d: new pid %d is not alive", i, r.Pid)
					}
					if harness.Alive(b.Pid) {
						t.Errorf("row %d: old pid %d still alive after %s", i, b.Pid, tc.verb)
					}
				case deleted:
					if listed {
						t.Errorf("row %d should be deleted, still listed: %+v", i, r)
					}
					if harness.Alive(b.Pid) {
						t.Errorf("row %d: old pid %d still alive after %s", i, b.Pid, tc.verb)
					}
				}
			}
			if len(rows) != len(now) {
				t.Errorf("duplicate ids in %+v", rows)
			}
			// Restarted rows are online (they may pass through starting first).
			h.WaitList(10*time.Second, "restarted instances online", func(rows []api.Instance) bool {
				now := harness.ByID(rows)
				for i, b := range before {
					if tc.effect[i] == restarted && now[b.ID].Status != "online" {
						return false
					}
				}
				return true
			})
			// A stopped app comes back with restart.
			if tc.verb == "stop" {
				h.OK("restart", target)
				h.WaitList(10*time.Second, "everything online again", func(rows []api.Instance) bool {
					return harness.AllOnline("a", 2)(rows) && harness.AllOnline("b", 1)(rows)
				})
			}
		})
	}
}

// A target that names nothing: exit code 1 and the exact error.
func TestTargetNotFoundIsAnExactError(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 1000", "--name", "present")
	for _, verb := range []string{"stop", "restart", "delete", "reload", "info"} {
		t.Run(verb, func(t *testing.T) {
			for _, target := range []string{"nope", "4242"} {
				r := h.Run(verb, target)
				if r.Code != 1 {
					t.Errorf("%s %s: exit %d, want 1 (stderr %q)", verb, target, r.Code, r.Stderr)
				}
				harness.ErrLike(t, r.Stderr, "Error: process '"+target+"' not found")
			}
		})
	}
	rows := h.List()
	if len(rows) != 1 || rows[0].Name != "present" || rows[0].Status != "online" {
		t.Errorf("the existing app was disturbed: %+v", rows)
	}
}
