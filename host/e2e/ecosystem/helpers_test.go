package ecosystem

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Shared with the other e2e packages (host/e2e/harness).
var (
	js        = harness.JSON
	writeFile = harness.WriteFile
)

// wantApp is what one app of an ecosystem file must look like once running.
type wantApp struct {
	name  string
	ports []int // by instance; its length is the instance count
}

// allOnline is a WaitList condition: every app of want is online with its instance count,
// and nothing else is listed.
func allOnline(want []wantApp) func([]api.Instance) bool {
	return func(rows []api.Instance) bool {
		n := 0
		for _, w := range want {
			if !harness.AllOnline(w.name, len(w.ports))(rows) {
				return false
			}
			n += len(w.ports)
		}
		return len(rows) == n
	}
}

// checkRunning waits for want to be online and checks list's ports and that every instance
// answers GET / on its port with its own index and pid.
func checkRunning(t *testing.T, h *harness.Home, want []wantApp) []api.Instance {
	t.Helper()
	rows := h.WaitList(30*time.Second, "the file's apps online", allOnline(want))
	for _, w := range want {
		if got := harness.PortsOf(rows, w.name); !slices.Equal(got, w.ports) {
			t.Errorf("%s: list --json ports by instance = %v, want %v", w.name, got, w.ports)
		}
		pids := harness.PidsOf(rows, w.name)
		for i, p := range w.ports {
			got := harness.WaitWho(t, p, w.name, i)
			if got.Pid != pids[i] {
				t.Errorf("%s: port %d answered by pid %d, list says instance %d is pid %d", w.name, p, got.Pid, i, pids[i])
			}
		}
	}
	return rows
}

// planRow is one row of the --dry-run table.
type planRow struct{ name, command, instances, port, cwd string }

// parsePlan reads the rows of the plan table (box-drawn, one app a line).
func parsePlan(t *testing.T, out string) map[string]planRow {
	t.Helper()
	rows := map[string]planRow{}
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "│") {
			continue
		}
		cells := strings.Split(line, "│")
		if len(cells) != 7 {
			t.Fatalf("plan row %q has %d cells, want 5\n%s", line, len(cells)-2, out)
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if cells[1] == "Name" {
			continue
		}
		rows[cells[1]] = planRow{cells[1], cells[2], cells[3], cells[4], cells[5]}
	}
	return rows
}

// defaultWait bounds waiting for apps to come online.
const defaultWait = 30 * time.Second
