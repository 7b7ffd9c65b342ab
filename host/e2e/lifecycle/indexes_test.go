package lifecycle

import (
	"strconv"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// After one instance is deleted by id, scaling the app back up gives every instance its own
// index again: no two share PM2_INSTANCE_ID or log files.
func TestIndexesStayDenseAfterDeleteByID(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 100000", "--name", "pair", "--instances", "2")
	rows := h.WaitList(10*time.Second, "pair online", harness.AllOnline("pair", 2))
	first := harness.Rows(rows, "pair")[0]
	h.OK("delete", strconv.Itoa(first.ID))
	h.OK("restart", "pair", "--instances", "3")
	rows = h.WaitList(10*time.Second, "3 instances online", harness.AllOnline("pair", 3))
	seen := map[int]bool{}
	logs := map[string]bool{}
	for _, r := range harness.Rows(rows, "pair") {
		if seen[r.Index] || logs[r.OutLog] {
			t.Fatalf("instance index %d or log %s used twice: %+v", r.Index, r.OutLog, rows)
		}
		seen[r.Index], logs[r.OutLog] = true, true
	}
	for i := 0; i < 3; i++ {
		if !seen[i] {
			t.Errorf("no instance with index %d: %+v", i, rows)
		}
	}
}
