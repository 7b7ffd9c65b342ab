package monite2e

import (
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// TestMonitRestartsTheSelectedApp: in a 100×30 terminal monit lists the daemon's apps; Down
// selects the second, r asks, y restarts it (a new pid in the daemon's list, the other app
// untouched), a resize redraws the screen to fit, and q ends monit with status 0.
func TestMonitRestartsTheSelectedApp(t *testing.T) {
	h := harness.NewHome(t)
	startEcho(h, "alpha")
	startEcho(h, "beta")
	before := h.APIList()

	tm := newTmux(t, h, 100, 30)
	tm.waitScreen("the apps", "pmdaemon monit · 2 apps, 2 instances", " alpha ", " beta ", "── logs of alpha")
	tm.keys("Down")
	tm.waitScreen("beta selected", "── beta · id 1", "── logs of beta")
	tm.keys("r")
	tm.waitScreen("the question", "restart beta? (y/n)")
	tm.keys("y")
	tm.waitScreen("the outcome", "restarted beta (ids 1)")

	after := h.APIList()
	if b, a := harness.PidsOf(before, "beta")[0], harness.PidsOf(after, "beta")[0]; a == b || a == 0 {
		t.Errorf("beta's pid is %d after the restart, was %d", a, b)
	}
	if b, a := harness.PidsOf(before, "alpha")[0], harness.PidsOf(after, "alpha")[0]; a != b {
		t.Errorf("alpha's pid changed from %d to %d", b, a)
	}
	// The table shows the new pid.
	tm.waitScreen("beta's new pid on the screen", " "+strconv.Itoa(harness.PidsOf(after, "beta")[0])+" ")

	// A smaller terminal: monit redraws to fit, the status line on the last of the 12 rows.
	tm.run("resize-window", "-x", "100", "-y", "12")
	tm.waitRows("the status line on row 12", func(rows []string) bool {
		return len(rows) == 12 && strings.HasPrefix(rows[11], "restarted beta (ids 1)")
	})

	tm.keys("q")
	if code := tm.waitExit(); code != 0 {
		t.Fatalf("monit exited with status %d after q", code)
	}
}

// TestMonitColour: monit colours its screen in a terminal, and leaves every cell plain under
// NO_COLOR or TERM=dumb (capture-pane -e writes each cell's attributes as escape sequences).
func TestMonitColour(t *testing.T) {
	cases := []struct {
		name   string
		env    []string
		colour bool
	}{
		{"a terminal", nil, true},
		{"NO_COLOR", []string{"NO_COLOR=1"}, false},
		{"TERM=dumb", []string{"TERM=dumb"}, false},
	}
	h := harness.NewHome(t)
	startEcho(h, "web")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tm := newTmux(t, h, 80, 24, c.env...)
			tm.waitScreen("the table", "pmdaemon monit · 1 app, 1 instance", "›   0 web")
			if got := strings.Contains(tm.screen(true), "\x1b["); got != c.colour {
				t.Errorf("escape sequences on the screen: %v, want %v:\n%q", got, c.colour, tm.screen(true))
			}
			tm.keys("q")
			if code := tm.waitExit(); code != 0 {
				t.Fatalf("monit exited with status %d after q", code)
			}
		})
	}
}

// TestMonitNeedsATerminal: without a terminal monit says what to use instead.
func TestMonitNeedsATerminal(t *testing.T) {
	h := harness.NewHome(t)
	r := h.Run("monit")
	if r.Code != 1 {
		t.Fatalf("monit without a terminal: exit %d, want 1", r.Code)
	}
	harness.ErrLike(t, r.Stderr, "monit needs a terminal", "pmdaemon list --json")
}

// TestMonitEndsOnSignals: SIGINT and SIGTERM from outside end monit as q does, with status 0
// and the terminal given back.
func TestMonitEndsOnSignals(t *testing.T) {
	h := harness.NewHome(t)
	startEcho(h, "web")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tm := newTmux(t, h, 80, 24)
			tm.waitScreen("the table", "›   0 web")
			if err := syscall.Kill(tm.monitPid(), sig); err != nil {
				t.Fatal(err)
			}
			if code := tm.waitExit(); code != 0 {
				t.Fatalf("monit exited with status %d after %v", code, sig)
			}
		})
	}
}
