package tui

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

const wait = 30 * time.Second

// startEcho starts n instances of the echo app as name on free ports and waits for them to be
// online.
func startEcho(h *harness.Home, name string, n int) {
	h.T.Helper()
	port := harness.FreePorts(h.T, n)
	h.OK("start", harness.Echo, "--name", name, "-i", fmt.Sprint(n), "--port", harness.PortRange(port, port+n-1))
	h.WaitOnline(name, n)
}

func pidOf(h *harness.Home, name string) int {
	h.T.Helper()
	return harness.PidsOf(h.APIList(), name)[0]
}

// TestKeysAskThenAct: each action key asks "verb app? (y/n)" for the app of the selected
// instance; y sends it to the daemon for the whole app and the status line tells the outcome,
// which the daemon's list confirms; any other key cancels and sends nothing.
func TestKeysAskThenAct(t *testing.T) {
	h := harness.NewHome(t)
	startEcho(h, "alpha", 1)
	startEcho(h, "beta", 2)
	d := drive(t, newModel(h.API(), false))
	d.until(wait, "both apps listed", d.shows(" alpha ", " beta "))
	d.key("down")
	d.key("down")
	d.until(wait, "beta's second instance selected", d.shows("── beta · id 2 · instance 1"))

	cases := []struct {
		name, key, answer string
		verb              string
		done              string // the status once the daemon answered; "" for a cancel
		check             func(t *testing.T, before, after []api.Instance)
	}{
		{name: "n cancels", key: "r", answer: "n", verb: "restart", check: samePids},
		{name: "esc cancels", key: "s", answer: "esc", verb: "stop", check: samePids},
		{name: "r restarts", key: "r", answer: "y", verb: "restart", done: "restarted beta (ids 1, 2)", check: newBetaPid},
		{name: "R reloads", key: "R", answer: "y", verb: "reload", done: "reloaded beta (ids 1, 2)", check: newBetaPid},
		{name: "l reloads", key: "l", answer: "y", verb: "reload", done: "reloaded beta (ids 1, 2)", check: newBetaPid},
		{name: "s stops", key: "s", answer: "y", verb: "stop", done: "stopped beta (ids 1, 2)", check: func(t *testing.T, before, after []api.Instance) {
			for _, b := range harness.Rows(after, "beta") {
				if b.Status != "stopped" || b.Pid != 0 {
					t.Errorf("beta id %d after stop: status %s, pid %d; want stopped, no pid", b.ID, b.Status, b.Pid)
				}
			}
			sameAlpha(t, before, after)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.APIList()
			d.key(c.key)
			if want := c.verb + " beta? (y/n)"; !strings.Contains(d.screen(), want) {
				t.Fatalf("after %q the screen does not ask %q:\n%s", c.key, want, d.screen())
			}
			if c.done == "" {
				_, cmd := d.m.Update(keyMsg(c.answer))
				if cmd != nil {
					t.Fatalf("%q after the question returned a command; a cancel sends nothing", c.answer)
				}
				if want := c.verb + " beta cancelled"; !strings.Contains(d.screen(), want) {
					t.Fatalf("the status line does not say %q:\n%s", want, d.screen())
				}
				c.check(t, before, h.APIList())
				return
			}
			d.key(c.answer)
			if want := doing[c.verb] + " beta…"; !strings.Contains(d.screen(), want) {
				t.Fatalf("while the daemon works the status line does not say %q:\n%s", want, d.screen())
			}
			// One action at a time: another key asks nothing until the daemon answered.
			d.key(c.key)
			if want := "still " + doing[c.verb] + " beta; wait for its answer"; d.m.confirm != nil || !strings.Contains(d.screen(), want) {
				t.Fatalf("an action key while the daemon works: the screen does not say %q (question: %v):\n%s", want, d.m.confirm, d.screen())
			}
			d.until(wait, "the outcome "+c.done, d.shows(c.done))
			c.check(t, before, h.APIList())
		})
	}
}

func keyMsg(k string) tea.KeyMsg {
	if k == "esc" {
		return tea.KeyMsg{Type: tea.KeyEsc}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

func samePids(t *testing.T, before, after []api.Instance) {
	for _, app := range []string{"alpha", "beta"} {
		if b, a := harness.PidsOf(before, app), harness.PidsOf(after, app); !slices.Equal(a, b) {
			t.Errorf("%s's pids changed from %v to %v after a cancelled action", app, b, a)
		}
	}
}

// newBetaPid: every instance of beta runs again with a new pid; alpha is untouched.
func newBetaPid(t *testing.T, before, after []api.Instance) {
	old := harness.PidsOf(before, "beta")
	for i, b := range harness.Rows(after, "beta") {
		if b.Pid == 0 || b.Pid == old[i] || b.Status != "online" {
			t.Errorf("beta id %d: pid %d, status %s; want online with a new pid (was %d)", b.ID, b.Pid, b.Status, old[i])
		}
	}
	sameAlpha(t, before, after)
}

func sameAlpha(t *testing.T, before, after []api.Instance) {
	if x, y := harness.PidsOf(before, "alpha")[0], harness.PidsOf(after, "alpha")[0]; x != y {
		t.Errorf("alpha's pid changed from %d to %d by an action on beta", x, y)
	}
}

// rowsOf are n instances of apps app0, app1, ... for tests of the screen's layout.
func rowsOf(n int) []api.Instance {
	rows := make([]api.Instance, n)
	for i := range rows {
		port := 3000 + i
		rows[i] = api.Instance{ID: i, Name: fmt.Sprintf("app%d", i), Status: "online", Pid: 1000 + i, Port: &port,
			CPU: float64(i), Memory: uint64(i) << 20, UptimeMS: int64(i) * 1000, Restarts: i,
			OutLog: "/nonexistent/out", ErrLog: "/nonexistent/err"}
	}
	return rows
}

// offline is a model of a home with no daemon: keys and layout, no calls that answer.
func offline(t *testing.T, colour bool) *Model {
	m := newModel(api.NewClient(filepath.Join(t.TempDir(), "daemon.sock")), colour)
	t.Cleanup(m.Close)
	return m
}

// TestKeysMoveTheSelection: the selection follows up/down/j/k/g/G within the table, several
// keys typed at once are each a key, a paste and unknown keys do nothing, and an action key
// with nothing selected says so.
func TestKeysMoveTheSelection(t *testing.T) {
	cases := []struct {
		name   string
		keys   []tea.KeyMsg
		rows   int
		cursor int
		status string
	}{
		{name: "down", keys: []tea.KeyMsg{{Type: tea.KeyDown}}, rows: 3, cursor: 1},
		{name: "j j", keys: []tea.KeyMsg{keyMsg("j"), keyMsg("j")}, rows: 3, cursor: 2},
		{name: "jj typed at once", keys: []tea.KeyMsg{keyMsg("jj")}, rows: 3, cursor: 2},
		{name: "down stops at the end", keys: []tea.KeyMsg{keyMsg("jjjjj")}, rows: 3, cursor: 2},
		{name: "up stops at the top", keys: []tea.KeyMsg{{Type: tea.KeyUp}, keyMsg("k")}, rows: 3, cursor: 0},
		{name: "G then k", keys: []tea.KeyMsg{keyMsg("G"), keyMsg("k")}, rows: 5, cursor: 3},
		{name: "end then home", keys: []tea.KeyMsg{{Type: tea.KeyEnd}, {Type: tea.KeyHome}}, rows: 5, cursor: 0},
		{name: "a paste is no command", keys: []tea.KeyMsg{{Type: tea.KeyRunes, Runes: []rune("jjr"), Paste: true}}, rows: 3, cursor: 0},
		{name: "unknown keys", keys: []tea.KeyMsg{keyMsg("x"), {Type: tea.KeyTab}}, rows: 3, cursor: 0},
		{name: "nothing to act on", keys: []tea.KeyMsg{keyMsg("r")}, rows: 0, cursor: 0, status: "no app selected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := offline(t, false)
			m.Update(listMsg{rows: rowsOf(c.rows), at: time.Now()})
			for _, k := range c.keys {
				m.Update(k)
			}
			if m.cursor != c.cursor {
				t.Errorf("cursor at %d, want %d", m.cursor, c.cursor)
			}
			if c.rows > 0 && m.selID != m.rows[c.cursor].ID {
				t.Errorf("selected id %d, want %d", m.selID, m.rows[c.cursor].ID)
			}
			if m.confirm != nil {
				t.Errorf("a question is asked: %+v", *m.confirm)
			}
			if !strings.Contains(m.View(), c.status) {
				t.Errorf("the screen does not say %q:\n%s", c.status, m.View())
			}
		})
	}
}

// TestSelectionFollowsTheInstance: a refresh that reorders the rows keeps the same instance
// selected; one that removes it selects the row in its place.
func TestSelectionFollowsTheInstance(t *testing.T) {
	m := offline(t, false)
	rows := rowsOf(4)
	m.Update(listMsg{rows: rows, at: time.Now()})
	m.Update(keyMsg("jj")) // id 2
	m.Update(listMsg{rows: []api.Instance{rows[2], rows[0], rows[1], rows[3]}, at: time.Now()})
	if m.cursor != 0 || m.selID != 2 {
		t.Fatalf("after a reorder the cursor is at %d (id %d), want 0 (id 2)", m.cursor, m.selID)
	}
	m.Update(listMsg{rows: []api.Instance{rows[0], rows[3]}, at: time.Now()})
	if m.cursor != 0 || m.selID != 0 {
		t.Fatalf("after id 2 went the cursor is at %d (id %d), want 0 (id 0)", m.cursor, m.selID)
	}
}

// TestQuitKeys: q and ctrl+c quit, and so does ctrl+c during a question; q during a question
// only answers it.
func TestQuitKeys(t *testing.T) {
	cases := []struct {
		name string
		keys []tea.KeyMsg
		quit bool
	}{
		{"q", []tea.KeyMsg{keyMsg("q")}, true},
		{"ctrl+c", []tea.KeyMsg{{Type: tea.KeyCtrlC}}, true},
		{"ctrl+c while asked", []tea.KeyMsg{keyMsg("r"), {Type: tea.KeyCtrlC}}, true},
		{"q while asked cancels", []tea.KeyMsg{keyMsg("r"), keyMsg("q")}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := offline(t, false)
			m.Update(listMsg{rows: rowsOf(2), at: time.Now()})
			var cmd tea.Cmd
			for _, k := range c.keys {
				_, cmd = m.Update(k)
			}
			quit := false
			if cmd != nil {
				_, quit = cmd().(tea.QuitMsg)
			}
			if quit != c.quit {
				t.Fatalf("quit: %v, want %v", quit, c.quit)
			}
			if quit && m.ctx.Err() == nil {
				t.Fatal("quitting left the model's context running")
			}
		})
	}
}

// TestScreenFitsTheTerminal: whatever the size, the screen is as tall as the terminal and no
// wider, ends with the status line, and keeps the selected row in view.
func TestScreenFitsTheTerminal(t *testing.T) {
	cases := []struct {
		w, h, rows int
	}{
		{80, 24, 3}, {80, 24, 40}, {100, 30, 5}, {40, 10, 6}, {20, 5, 3}, {200, 60, 100}, {10, 3, 1},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%d %d rows", c.w, c.h, c.rows), func(t *testing.T) {
			m := offline(t, false)
			m.Update(listMsg{rows: rowsOf(c.rows), at: time.Now()})
			m.Update(logMsg{gen: m.logs.gen, lines: []string{strings.Repeat("a very long log line ", 20)}, done: true})
			m.Update(keyMsg("G"))
			m.Update(tea.WindowSizeMsg{Width: c.w, Height: c.h})
			v := m.View()
			lines := strings.Split(v, "\n")
			if len(lines) != c.h {
				t.Errorf("%d lines on a screen %d high", len(lines), c.h)
			}
			for i, l := range lines {
				if w := ansi.StringWidth(l); w > c.w {
					t.Errorf("line %d is %d wide on a screen %d wide: %q", i, w, c.w, l)
				}
			}
			if last := lines[len(lines)-1]; !strings.HasPrefix(help, strings.TrimSuffix(last, "…")) {
				t.Errorf("the last line is not the status line: %q", last)
			}
			if c.h >= 8 && !strings.Contains(v, fmt.Sprintf("app%d", c.rows-1)) {
				t.Errorf("the selected last row app%d is not in view:\n%s", c.rows-1, v)
			}
		})
	}
}

// TestColour: without colour (NO_COLOR, TERM=dumb) the screen has no escape sequence; with
// colour it has some. The selected row is marked either way.
func TestColour(t *testing.T) {
	for _, colour := range []bool{false, true} {
		m := offline(t, colour)
		m.Update(listMsg{rows: rowsOf(3), at: time.Now()})
		m.Update(listMsg{err: api.ErrNoDaemon})
		v := m.View()
		if got := strings.Contains(v, "\x1b["); got != colour {
			t.Errorf("colour %v: escape sequences on the screen: %v\n%q", colour, got, v)
		}
		if !strings.Contains(ansi.Strip(v), "›   0 app0") {
			t.Errorf("colour %v: the selected row is not marked:\n%s", colour, v)
		}
	}
}

// TestDaemonGoneAndBack: a daemon that dies shows as "daemon not answering" above the last
// table, an action then fails on the status line, and the screen comes back by itself once a
// daemon answers again.
func TestDaemonGoneAndBack(t *testing.T) {
	h := harness.NewHome(t)
	startEcho(h, "web", 1)
	pid := pidOf(h, "web")
	d := drive(t, newModel(h.API(), false))
	d.until(wait, "web listed", d.shows("pmdaemon monit · 1 app, 1 instance", " web "))

	harness.Sigkill(t, h.DaemonPid())
	d.until(wait, "the daemon's absence", d.shows("daemon not answering", "table as of", " web "))
	d.key("r")
	d.key("y")
	d.until(wait, "the action's failure", d.shows("restart web failed: daemon is not running"))
	if procs := h.DaemonProcs(); len(procs) > 0 {
		t.Fatalf("a daemon runs (%v) though only the test may start one", procs)
	}

	h.OK("ping") // a new daemon takes the app back
	d.until(wait, "the table again", d.shows("pmdaemon monit · 1 app, 1 instance"))
	if strings.Contains(d.screen(), "not answering") {
		t.Fatalf("the screen still says the daemon is not answering:\n%s", d.screen())
	}
	if got := pidOf(h, "web"); got != pid {
		t.Fatalf("web's pid is %d after the daemon came back, want %d: the failed restart did something", got, pid)
	}
}

// TestNoDaemon: a home whose daemon never answered says so and keeps asking.
func TestNoDaemon(t *testing.T) {
	m := offline(t, false)
	d := drive(t, m)
	d.until(wait, "the absence", d.shows("daemon not answering (retrying every 100ms)", "daemon is not running"))
	// Each answer ends a poll; the clock starts the next one.
	answers, was := 0, m.polling
	d.until(wait, "three more polls", func() bool {
		if was && !m.polling {
			answers++
		}
		was = m.polling
		return answers >= 3
	})
}

// TestLogsOfTheSelectedApp: the log pane shows the selected app's last lines and follows new
// ones, without the app's escape sequences; selecting another app shows that app's logs, and
// the followers of the first stop, as do all at Close.
func TestLogsOfTheSelectedApp(t *testing.T) {
	h := harness.NewHome(t)
	dir := t.TempDir()
	talker := harness.WriteScript(t, dir, "talker.sh", "#!/bin/bash\nprintf '\\033[31mred words\\033[0m\\n'\n"+
		"echo 'to stderr' >&2\ni=0\nwhile :; do echo \"line $i\"; i=$((i+1)); sleep 0.2; done\n")
	h.OK("start", talker, "--name", "talker")
	h.WaitOnline("talker", 1)
	startEcho(h, "quiet", 1)

	m := newModel(h.API(), false)
	d := drive(t, m)
	d.until(wait, "talker's logs", d.shows("── logs of talker", "0 | red words", "0 err | to stderr", "0 | line 1"))
	if strings.Contains(d.screen(), "\x1b") {
		t.Fatalf("the app's escape sequences reached the screen:\n%q", d.screen())
	}
	// Following: lines written after the pane opened arrive.
	n := len(m.logs.lines)
	d.until(wait, "new lines", func() bool { return len(m.logs.lines) > n+3 })

	d.key("down")
	d.until(wait, "quiet's logs", d.shows("── logs of quiet", "listening on"))
	if strings.Contains(d.screen(), "| line ") {
		t.Fatalf("talker's lines are in quiet's pane:\n%s", d.screen())
	}
	// One app's followers run: talker's stopped when quiet was selected.
	harness.Eventually(t, wait, "talker's followers to stop", func() bool { return followers() == 2 })
	m.Close()
	harness.Eventually(t, wait, "every follower to stop", func() bool { return followers() == 0 })
}

// followers counts the goroutines following a log file.
func followers() int {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "host/logs.FollowFrom(")
}

// TestPrintable: what an app writes reaches the screen without anything that moves the
// cursor, changes colours or reorders text.
func TestPrintable(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain words", "plain words"},
		{"\x1b[31mred\x1b[0m", "red"},
		{"a\tb", "a    b"},
		{"over\rwrite", "overwrite"},
		{"\x1b[2J\x1b[Hcleared", "cleared"},
		{"bidi \u202eesrever", "bidi esrever"},
		{"bad \xff byte", "bad  byte"},
		{"\x1b]0;title\x07after", "after"},
	}
	for _, c := range cases {
		if got := printable(c.in); got != c.want {
			t.Errorf("printable(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
