package plugine2e

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// plugins returns `plugin list --json`.
func plugins(t *testing.T, h *harness.Home) []api.PluginRow {
	t.Helper()
	var rows []api.PluginRow
	out := h.OK("plugin", "list", "--json")
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("plugin list --json: %v\n%s", err, out)
	}
	return rows
}

func pluginRow(t *testing.T, h *harness.Home, name string) api.PluginRow {
	t.Helper()
	for _, r := range plugins(t, h) {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("plugin %s is not listed", name)
	return api.PluginRow{}
}

// mustBeFree fails the test when one of the fixed ports a test needs is taken on this
// machine: the reason is then the machine, not pmdaemon.
func mustBeFree(t *testing.T, ports ...int) {
	t.Helper()
	for _, p := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("this test needs port %d free on the machine: %v", p, err)
		}
		l.Close()
	}
}

// pingOK checks the daemon still answers (a plugin's failure must not take it down).
func pingOK(t *testing.T, h *harness.Home, pid int) {
	t.Helper()
	if got := h.DaemonPid(); got != pid {
		t.Fatalf("daemon pid changed from %d to %d: it died", pid, got)
	}
	h.OK("ping")
}

const wait = 20 * time.Second

func contains(s, sub string) bool { return strings.Contains(s, sub) }
