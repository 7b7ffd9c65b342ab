package portse2e

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Acceptance 7: an instance killed with SIGKILL is restarted on the port it had, for a range
// and for an auto spec.
func TestAutoRestartKeepsPort(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 6)
	h.OK("start", harness.Echo, "--name", "cluster", "--instances", "2", "--port", harness.PortRange(b, b+1))
	// The auto app's instance 1 gets b+4; b+3 is free, so a restart that re-ran the
	// allocation would move it there.
	l := harness.Listen(t, "tcp4", "0.0.0.0:"+strconv.Itoa(b+3))
	h.OK("start", harness.Echo, "--name", "workers", "--instances", "2", "--port", harness.AutoRange(b+2, b+5))
	rows := h.WaitAPI(20*time.Second, "both apps online", func(rows []api.Instance) bool {
		return harness.AllOnline("cluster", 2)(rows) && harness.AllOnline("workers", 2)(rows)
	})
	if got := harness.PortsOf(rows, "workers"); !slices.Equal(got, []int{b + 2, b + 4}) {
		t.Fatalf("workers ports = %v, want [%d %d]", got, b+2, b+4)
	}
	l.Close()
	for _, c := range []struct {
		app  string
		port int
	}{{"cluster", b + 1}, {"workers", b + 4}} {
		rows := h.APIList()
		old := harness.PidsOf(rows, c.app)[1]
		harness.WaitWho(t, c.port, c.app, 1)
		harness.Sigkill(t, old)
		rows = h.WaitAPI(20*time.Second, c.app+" instance 1 restarted", func(rows []api.Instance) bool {
			for _, r := range harness.Rows(rows, c.app) {
				if r.Index == 1 {
					return r.Status == "online" && r.Pid != 0 && r.Pid != old && r.Restarts >= 1
				}
			}
			return false
		})
		if got := harness.PortsOf(rows, c.app)[1]; got != c.port {
			t.Errorf("%s instance 1 restarted on port %d, want %d", c.app, got, c.port)
		}
		w := harness.WaitWho(t, c.port, c.app, 1)
		if w.Pid == old || w.Pid != harness.PidsOf(rows, c.app)[1] {
			t.Errorf("%s: port %d answered by pid %d (old %d, list %d)", c.app, c.port, w.Pid, old, harness.PidsOf(rows, c.app)[1])
		}
	}
	if got := harness.PortsOf(h.APIList(), "cluster"); !slices.Equal(got, []int{b, b + 1}) {
		t.Errorf("cluster ports after restarts = %v", got)
	}
}

// Acceptance 7: stop releases the ports (the seed's "stop api-v1, then start on 8000" flow).
func TestStopReleasesPort(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	p := harness.FreePorts(t, 1)
	h.OK("start", harness.Echo, "--name", "api-v1", "--port", strconv.Itoa(p))
	h.WaitOnline("api-v1", 1)
	wantErr(t, h.Fail("start", harness.Echo, "--name", "app", "--port", strconv.Itoa(p)),
		"Port "+strconv.Itoa(p)+" is already assigned to process 'api-v1'")
	h.OK("stop", "api-v1")
	rows := h.List()
	for _, r := range harness.Rows(rows, "api-v1") {
		if r.Status != "stopped" || r.Port != nil {
			t.Errorf("stopped api-v1 row: status %s port %v, want stopped with no port", r.Status, r.Port)
		}
	}
	h.OK("start", harness.Echo, "--name", "app", "--port", strconv.Itoa(p))
	h.WaitOnline("app", 1)
	harness.WaitWho(t, p, "app", 0)
	// The stopped app cannot take its old port back while app holds it.
	wantErr(t, h.Fail("restart", "api-v1"), "Port "+strconv.Itoa(p)+" is already assigned to process 'app'")
	harness.WaitWho(t, p, "app", 0)
}

// Acceptance 7: assignments survive `pmdaemon kill` and the next daemon.
func TestPortsSurviveDaemonRestart(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	p := harness.FreePorts(t, 3)
	h.OK("start", harness.Echo, "--name", "first", "--instances", "2", "--port", harness.PortRange(p, p+1))
	h.WaitOnline("first", 2)
	h.OK("kill")
	waitSilent(t, p)
	// The next CLI call starts a new daemon, which must know p is first's.
	wantErr(t, h.Fail("start", harness.Echo, "--name", "second", "--port", strconv.Itoa(p)),
		"Port "+strconv.Itoa(p)+" is already assigned to process 'first'")
	wantErr(t, h.Fail("start", harness.Echo, "--name", "second", "--instances", "2", "--port", harness.PortRange(p+1, p+2)),
		"Port "+strconv.Itoa(p+1)+" is already assigned to process 'first'")
	rows := h.WaitOnline("first", 2)
	if got := harness.PortsOf(rows, "first"); !slices.Equal(got, harness.Seq(p, 2)) {
		t.Errorf("first's ports after the daemon restart = %v, want %v", got, harness.Seq(p, 2))
	}
	harness.WaitWho(t, p, "first", 0)
	harness.WaitWho(t, p+1, "first", 1)
	noApp(t, h, "second")
}

// Acceptance 7: and survive the daemon being killed with SIGKILL.
func TestPortsSurviveDaemonSigkill(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	p := harness.FreePorts(t, 1)
	h.OK("start", harness.Echo, "--name", "first", "--port", strconv.Itoa(p))
	rows := h.WaitOnline("first", 1)
	pid := harness.PidsOf(rows, "first")[0]
	d := h.DaemonPid()
	harness.Sigkill(t, d)
	harness.Eventually(t, 10*time.Second, "the daemon to die", func() bool { return !harness.Alive(d) })
	wantErr(t, h.Fail("start", harness.Echo, "--name", "second", "--port", strconv.Itoa(p)),
		"Port "+strconv.Itoa(p)+" is already assigned to process 'first'")
	rows = h.WaitOnline("first", 1)
	if got := harness.PortsOf(rows, "first"); !slices.Equal(got, []int{p}) {
		t.Errorf("first's ports = %v, want [%d]", got, p)
	}
	w := harness.WaitWho(t, p, "first", 0)
	if w.Pid != harness.PidsOf(rows, "first")[0] {
		t.Errorf("port %d answered by pid %d, list says %d", p, w.Pid, harness.PidsOf(rows, "first")[0])
	}
	if w.Pid != pid {
		t.Logf("first was restarted rather than taken back (pid %d -> %d)", pid, w.Pid)
	}
	noApp(t, h, "second")
}
