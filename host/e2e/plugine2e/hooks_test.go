package plugine2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// event is a line the example eventlog plugin writes.
type event struct {
	Kind     string `json:"kind"`
	App      string `json:"app"`
	Instance int    `json:"instance"`
	ID       int    `json:"id"`
	Pid      int    `json:"pid"`
	Ports    []int  `json:"ports"`
	AppPorts []int  `json:"app_ports"`
	ExitCode int    `json:"exit_code"`
}

func readEvents(t *testing.T, path string) []event {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("events file line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// kinds lists the kinds of instance i's events (-1: the app's ports-changed events too).
func kinds(evs []event, i int) string {
	var ks []string
	for _, e := range evs {
		if e.Instance == i {
			ks = append(ks, e.Kind)
		}
	}
	return strings.Join(ks, ",")
}

// The third-party example hook sees every lifecycle event, in order per instance, with the
// pids, ports and exit codes that really happened.
func TestHookSeesTheLifecycle(t *testing.T) {
	h := harness.NewHome(t)
	log := filepath.Join(t.TempDir(), "events.log")
	h.OK("plugin", "add", "eventlog", eventlog, "--config", `{"file": "`+log+`"}`)
	base := harness.FreePorts(t, 2)
	h.OK("start", harness.Echo, "--name", "web", "-i", "2", "--port", harness.PortRange(base, base+1))
	rows := h.WaitList(wait, "web online", harness.AllOnline("web", 2))
	pids := harness.PidsOf(rows, "web")
	harness.Eventually(t, wait, "started events", func() bool {
		return kinds(readEvents(t, log), 1) == "starting,started"
	})
	evs := readEvents(t, log)
	for _, e := range evs {
		if e.Kind == "started" && e.Instance == 1 {
			if e.Pid != pids[1] || !slices.Equal(e.Ports, []int{base + 1}) {
				t.Errorf("started event %+v, want pid %d port %d", e, pids[1], base+1)
			}
		}
	}

	// A crash: crashed (non-zero exit code) then started again with a new pid.
	harness.Sigkill(t, pids[0])
	harness.Eventually(t, wait, "crash and restart events", func() bool {
		return kinds(readEvents(t, log), 0) == "starting,started,crashed,started"
	})
	evs = readEvents(t, log)
	var crashed event
	for _, e := range evs {
		if e.Kind == "crashed" {
			crashed = e
		}
	}
	if crashed.Pid != pids[0] || crashed.ExitCode == 0 || slices.Contains(crashed.AppPorts, base) {
		t.Errorf("crashed event %+v: want pid %d, a non-zero code, and port %d gone from app_ports", crashed, pids[0], base)
	}

	// A restart on new ports: each instance stops and starts, then ports-changed says where the
	// app is now.
	nb := harness.FreePorts(t, 2)
	h.OK("restart", "web", "--port", harness.PortRange(nb, nb+1))
	harness.Eventually(t, wait, "ports-changed", func() bool {
		return strings.HasSuffix(kinds(readEvents(t, log), -1), "ports-changed")
	})
	evs = readEvents(t, log)
	last := evs[len(evs)-1]
	if last.Kind != "ports-changed" || !slices.Equal(last.Ports, harness.Seq(nb, 2)) || !slices.Equal(last.AppPorts, harness.Seq(nb, 2)) {
		t.Errorf("last event %+v, want ports-changed to %v", last, harness.Seq(nb, 2))
	}
	if got := kinds(evs, 1); got != "starting,started,starting,stopping,stopped,started" {
		t.Errorf("instance 1 events %s", got)
	}

	h.OK("stop", "web")
	harness.Eventually(t, wait, "stop events", func() bool {
		return strings.HasSuffix(kinds(readEvents(t, log), 0), "stopping,stopped")
	})
	evs = readEvents(t, log)
	if last := evs[len(evs)-1]; len(last.AppPorts) != 0 {
		t.Errorf("after stop, app_ports %v, want none", last.AppPorts)
	}
}

// Plugins are part of the daemon's state: a new daemon has them and applies them.
func TestPluginsSurviveADaemonRestart(t *testing.T) {
	h := harness.NewHome(t)
	mustBeFree(t, 9100)
	h.OK("plugin", "add", "reserved-range", reservedRange, "--config", monitoring, "--timeout", "3s")
	before := pluginRow(t, h, "reserved-range")
	h.OK("kill")
	after := pluginRow(t, h, "reserved-range")
	if after.SHA256 != before.SHA256 || after.Timeout.String() != "3s" || after.Path != reservedRange {
		t.Fatalf("after a daemon restart: %+v, before: %+v", after, before)
	}
	harness.ErrLike(t, h.Fail("start", harness.Echo, "--name", "mon", "--port", "9100"),
		"Port 9100 is reserved by policy 'reserved-range'")
}

// A plugin process never outlives its daemon, even one killed with SIGKILL.
func TestPluginProcessDiesWithTheDaemon(t *testing.T) {
	h := harness.NewHome(t)
	log := filepath.Join(t.TempDir(), "events.log")
	h.OK("plugin", "add", "eventlog", eventlog, "--config", `{"file": "`+log+`"}`)
	var plugin int
	for _, p := range h.Processes() {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); strings.HasPrefix(string(b), eventlog) {
			plugin = p
		}
	}
	if plugin == 0 {
		t.Fatal("the plugin process is not running after plugin add")
	}
	harness.Sigkill(t, h.DaemonPid())
	harness.Eventually(t, wait, "the plugin process to go", func() bool { return !harness.Alive(plugin) })
}

// After a reload onto new ports, the new instances take the old ids, and so do their events.
func TestEventIDsFollowAReload(t *testing.T) {
	h := harness.NewHome(t)
	log := filepath.Join(t.TempDir(), "events.log")
	h.OK("plugin", "add", "eventlog", eventlog, "--config", `{"file": "`+log+`"}`)
	a, b := harness.FreePorts(t, 2), harness.FreePorts(t, 2)
	h.OK("start", harness.Echo, "--name", "web", "-i", "2", "--port", harness.PortRange(a, a+1), "--min-uptime", "200ms")
	h.WaitList(wait, "web online", harness.AllOnline("web", 2))
	h.OK("reload", "web", "--port", harness.PortRange(b, b+1))
	rows := h.WaitList(wait, "web online", harness.AllOnline("web", 2))
	ids := map[int]bool{}
	for _, r := range rows {
		ids[r.ID] = true
	}
	harness.Sigkill(t, rows[0].Pid)
	harness.Eventually(t, wait, "the crash event", func() bool {
		for _, e := range readEvents(t, log) {
			if e.Kind == "crashed" {
				return true
			}
		}
		return false
	})
	for _, e := range readEvents(t, log) {
		if e.Kind == "crashed" && (e.ID != rows[0].ID || !ids[e.ID]) {
			t.Errorf("crashed event has id %d; list says the instance is id %d", e.ID, rows[0].ID)
		}
	}
}
