package portse2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// tableRows parses the `list` table into cells (header first), skipping border lines.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "│") {
			continue
		}
		parts := strings.Split(strings.Trim(strings.TrimSpace(line), "│"), "│")
		cells := make([]string, len(parts))
		for i, c := range parts {
			cells[i] = strings.TrimSpace(c)
		}
		rows = append(rows, cells)
	}
	return rows
}

// Acceptance 9: list shows a Port column, list --json a port (null without one), info the
// configured spec, the live assignment per instance and the override flag.
func TestVisibilityOfPortsInListAndInfo(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	a := harness.FreePorts(t, 4)
	h.OK("start", harness.Echo, "--name", "web-cluster", "--instances", "2", "--port", harness.PortRange(a, a+1))
	h.OK("start", "sleep 1000", "--name", "noport")
	h.WaitList(20*time.Second, "apps online", func(rows []api.Instance) bool {
		return harness.AllOnline("web-cluster", 2)(rows) && harness.AllOnline("noport", 1)(rows)
	})

	table := tableRows(h.OK("list"))
	want := []string{"ID", "Name", "Status", "PID", "Port", "CPU (%)", "Memory", "Uptime", "Restarts"}
	if len(table) != 4 || !eqStrings(table[0], want) {
		t.Fatalf("list table = %q, want header %q and 3 rows", table, want)
	}
	ports := map[string][]string{}
	for _, r := range table[1:] {
		if len(r) != len(want) {
			t.Fatalf("row %q has %d cells, want %d", r, len(r), len(want))
		}
		ports[r[1]] = append(ports[r[1]], r[4])
	}
	if !eqStrings(ports["web-cluster"], []string{strconv.Itoa(a), strconv.Itoa(a + 1)}) {
		t.Errorf("Port column for web-cluster = %q, want %d, %d", ports["web-cluster"], a, a+1)
	}
	if len(ports["noport"]) != 1 || strings.ContainsAny(ports["noport"][0], "0123456789") {
		t.Errorf("Port column for noport = %q, want no port", ports["noport"])
	}

	// list --json: port is a number, or null for an app without ports.
	var raw []map[string]json.RawMessage
	out := h.OK("list", "--json")
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	for _, r := range raw {
		var name string
		var inst int
		json.Unmarshal(r["name"], &name)
		json.Unmarshal(r["instance"], &inst)
		port, ok := r["port"]
		switch {
		case !ok:
			t.Errorf("list --json row %s has no port key", name)
		case name == "noport" && string(port) != "null":
			t.Errorf("noport: port = %s, want null", port)
		case name == "web-cluster" && string(port) != strconv.Itoa(a+inst):
			t.Errorf("web-cluster[%d]: port = %s, want %d", inst, port, a+inst)
		}
	}

	// info: spec, per-instance ports, override flag; text and JSON.
	checkOverride(t, h.Info("web-cluster"), harness.PortRange(a, a+1), harness.PortRange(a, a+1), false, harness.Seq(a, 2))
	info := h.Info("web-cluster")
	for i, in := range info.Instances {
		if in.Port == nil || *in.Port != a+in.Index || in.Index != i {
			t.Errorf("info instance %d: %+v, want port %d", i, in, a+i)
		}
	}
	ni := h.Info("noport")
	if ni.PortSpec != "" || ni.LivePortSpec != "" || ni.PortOverride || len(ni.Ports) != 0 {
		t.Errorf("noport info: spec %q live %q override %v ports %v", ni.PortSpec, ni.LivePortSpec, ni.PortOverride, ni.Ports)
	}
	text := h.OK("info", "web-cluster")
	for _, w := range []string{harness.PortRange(a, a+1), "port " + strconv.Itoa(a), "port " + strconv.Itoa(a+1)} {
		if !strings.Contains(text, w) {
			t.Errorf("info text does not show %q:\n%s", w, text)
		}
	}
	if strings.Contains(strings.ToLower(text), "override active") {
		t.Errorf("info text shows an override that is not there:\n%s", text)
	}

	// After an override, info shows both specs and the flag.
	h.OK("restart", "web-cluster", "--port", harness.PortRange(a+2, a+3))
	h.WaitList(20*time.Second, "web-cluster online", harness.AllOnline("web-cluster", 2))
	checkOverride(t, h.Info("web-cluster"), harness.PortRange(a, a+1), harness.PortRange(a+2, a+3), true, harness.Seq(a+2, 2))
	text = h.OK("info", "web-cluster")
	for _, w := range []string{harness.PortRange(a, a+1), harness.PortRange(a+2, a+3), "override", "port " + strconv.Itoa(a+2), "port " + strconv.Itoa(a+3)} {
		if !strings.Contains(text, w) {
			t.Errorf("info text after override does not show %q:\n%s", w, text)
		}
	}
	table = tableRows(h.OK("list"))
	ports = map[string][]string{}
	for _, r := range table[1:] {
		if len(r) == len(want) {
			ports[r[1]] = append(ports[r[1]], r[4])
		}
	}
	if !eqStrings(ports["web-cluster"], []string{strconv.Itoa(a + 2), strconv.Itoa(a + 3)}) {
		t.Errorf("Port column after override = %q, want %d, %d", ports["web-cluster"], a+2, a+3)
	}
}

func eqStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
