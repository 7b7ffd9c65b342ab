package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/cli"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// The commands PM2 users type are in the help where they look, and a wrong command line is
// refused before any daemon is asked, with what is wrong.
func TestPM2CommandsHelpAndUsage(t *testing.T) {
	newHome(t)
	help := mustPmd(t, "--help")
	for _, name := range []string{"status", "describe", "jlist", "prettylist", "env", "signal", "reset", "scale"} {
		if !strings.Contains(help, "\n  "+name+" ") {
			t.Errorf("help does not list %s:\n%s", name, help)
		}
	}
	if h := mustPmd(t, "signal", "--help"); !strings.Contains(h, "sendSignal") || !strings.Contains(h, "not its children") {
		t.Errorf("signal's help does not give its PM2 alias and what it reaches:\n%s", h)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"env"}, `env takes one instance ID (a number from pmdaemon list), got ""`},
		{[]string{"env", "web"}, `env takes one instance ID (a number from pmdaemon list), got "web"`},
		{[]string{"signal", "SIGFOO", "web"}, `signal "SIGFOO" is unknown`},
		{[]string{"sendSignal", "99", "web"}, `signal "99" is not a signal number (1-64)`},
		{[]string{"signal", "USR1"}, "signal takes a SIGNAL and a TARGET (signal SIGUSR1 web), got 1 arguments"},
		{[]string{"reset"}, "reset takes one TARGET"},
		{[]string{"scale", "web"}, "scale takes an app NAME and a count N (scale web 4), got 1 arguments"},
		{[]string{"scale", "web", "0"}, "scale web 0: N must be a whole number of instances, at least 1"},
		{[]string{"scale", "web", "two"}, "scale web two: N must be a whole number"},
		{[]string{"jlist", "web"}, `unknown command "web" for "pmdaemon jlist"`},
	}
	for _, tt := range tests {
		r := pmd(tt.args...)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("pmdaemon %q: exit %d, stdout %q, stderr %q; want exit 1 saying %q", tt.args, r.code, r.stdout, r.stderr, tt.want)
		}
	}
}

// status, describe, jlist and prettylist answer what list, info and list --json do; env prints
// what the instance's process really holds; reset zeroes the counters; restart of one id says
// that id only.
func TestPM2CommandsThroughMain(t *testing.T) {
	_, c := serveInProcess(t)
	base := harness.FreePorts(t, 4)
	mustPmd(t, "start", "sleep 1000", "--name", "quad", "-i", "4", "--port", harness.PortRange(base, base+3),
		"--env", "GREETING=hello world", "--kill-timeout", "2s")
	rows := harness.WaitRows(t, c, 15*time.Second, "quad online", harness.AllOnline("quad", 4))
	byIndex := map[int]api.Instance{}
	for _, r := range rows {
		byIndex[r.Index] = r
	}
	last := byIndex[3]

	t.Run("status is list", func(t *testing.T) {
		out := mustPmd(t, "status")
		if !strings.Contains(out, "│ ID │ Name") || strings.Count(out, "│ online ") != 4 {
			t.Errorf("status is not the list table with 4 online rows:\n%s", out)
		}
	})
	t.Run("describe is info", func(t *testing.T) {
		if got, want := mustPmd(t, "describe", "quad"), mustPmd(t, "info", "quad"); !strings.Contains(got, "name:                  quad") ||
			!strings.Contains(got, "port spec (configured): "+harness.PortRange(base, base+3)) || len(got) < len(want)/2 {
			t.Errorf("describe quad does not describe it:\n%s", got)
		}
	})
	t.Run("jlist and prettylist", func(t *testing.T) {
		var want []api.Instance
		if err := json.Unmarshal([]byte(mustPmd(t, "list", "--json")), &want); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			cmd      string
			oneLine  bool
			indented bool
		}{{"jlist", true, false}, {"prettylist", false, true}} {
			out := mustPmd(t, tt.cmd)
			var got []api.Instance
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%s is not JSON: %v\n%s", tt.cmd, err, out)
			}
			if len(got) != len(want) || got[0].ID != want[0].ID || got[3].Pid != want[3].Pid {
				t.Errorf("%s rows differ from list --json: %+v", tt.cmd, got)
			}
			if lines := strings.Count(strings.TrimSuffix(out, "\n"), "\n"); (lines == 0) != tt.oneLine {
				t.Errorf("%s: %d line breaks, want one line %v", tt.cmd, lines, tt.oneLine)
			}
			if strings.Contains(out, "\n  {") != tt.indented {
				t.Errorf("%s: indented %v, want %v:\n%s", tt.cmd, !tt.indented, tt.indented, out)
			}
		}
	})
	t.Run("env", func(t *testing.T) {
		out := mustPmd(t, "env", strconv.Itoa(last.ID))
		env := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		for _, want := range []string{"GREETING=hello world", "PORT=" + strconv.Itoa(base+3), "NODE_APP_INSTANCE=3", "PMDAEMON_APP_NAME=quad"} {
			if !slices.Contains(env, want) {
				t.Errorf("env %d lacks %s:\n%s", last.ID, want, out)
			}
		}
		// It is the process's own: the same entries as its /proc environ.
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(last.Pid) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		if proc := strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00"); !slices.Equal(proc, env) {
			t.Errorf("env %d differs from /proc/%d/environ", last.ID, last.Pid)
		}
		r := pmd("env", "999")
		if r.code != 1 || !strings.Contains(r.stderr, "instance '999' not found") {
			t.Errorf("env 999: exit %d, stderr %q; want instance '999' not found", r.code, r.stderr)
		}
		if _, err := c.Env(context.Background(), "999"); !api.IsNotFound(err) {
			t.Errorf("the API's env of 999: %v, want a not_found error", err)
		}
	})
	t.Run("restart one id says that id", func(t *testing.T) {
		out := mustPmd(t, "restart", strconv.Itoa(last.ID))
		want := fmt.Sprintf("[pmdaemon] restarted quad (ids %d, ports %d)\n", last.ID, base+3)
		if !strings.Contains(out, want) {
			t.Errorf("restart %d printed %q, want the line %q", last.ID, out, want)
		}
		mustPmd(t, "restart", "quad")
		after := harness.WaitRows(t, c, 15*time.Second, "quad online again", harness.AllOnline("quad", 4))
		if r := harness.ByID(after)[last.ID].Restarts; r != 2 {
			t.Fatalf("instance %d restarted twice shows %d restarts", last.ID, r)
		}
	})
	t.Run("reset", func(t *testing.T) {
		before := harness.ByID(mustList(t, c))
		out := mustPmd(t, "reset", strconv.Itoa(last.ID))
		if !strings.Contains(out, fmt.Sprintf("[pmdaemon] reset quad (ids %d, ports %d)", last.ID, base+3)) {
			t.Errorf("reset %d printed %q", last.ID, out)
		}
		rows := harness.ByID(mustList(t, c))
		for id, r := range rows {
			want := before[id].Restarts
			if id == last.ID {
				want = 0
			}
			if r.Restarts != want || r.Pid != before[id].Pid {
				t.Errorf("after reset %d: id %d has %d restarts, pid %d; want %d, pid %d (nothing restarted)",
					last.ID, id, r.Restarts, r.Pid, want, before[id].Pid)
			}
		}
		mustPmd(t, "reset", "quad")
		for _, r := range mustList(t, c) {
			if r.Restarts != 0 {
				t.Errorf("after reset quad: id %d has %d restarts", r.ID, r.Restarts)
			}
		}
		if r := pmd("reset", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, "process 'nosuch' not found") {
			t.Errorf("reset nosuch: exit %d, %q", r.code, r.stderr)
		}
	})
	t.Run("list on a terminal", func(t *testing.T) {
		for _, tt := range []struct {
			noColor bool
			want    string
		}{{false, "🟢 Online"}, {true, "│ online "}} {
			if tt.noColor {
				t.Setenv("NO_COLOR", "")
			} else {
				os.Unsetenv("NO_COLOR")
				t.Setenv("TERM", "xterm")
			}
			out := listOnTTY(t)
			if !strings.Contains(out, tt.want) {
				t.Errorf("NO_COLOR set %v: list on a terminal lacks %q:\n%s", tt.noColor, tt.want, out)
			}
		}
	})
}

// mustList is the daemon's rows.
func mustList(t *testing.T, c *api.Client) []api.Instance {
	t.Helper()
	rows, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// listOnTTY runs `list` with its stdout on a real pseudo-terminal and returns what it wrote.
func listOnTTY(t *testing.T) string {
	t.Helper()
	tty, master := cli.OpenPTY(t)
	// Raw mode: the terminal passes bytes as written (no \n -> \r\n) for the comparison.
	if tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS); err == nil {
		tio.Oflag &^= unix.OPOST
		unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, tio)
	}
	got := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, master) // ends with EIO once the terminal end is closed
		got <- b.String()
	}()
	var errb bytes.Buffer
	code := cli.Main([]string{"list"}, tty, &errb)
	tty.Close()
	if code != 0 {
		t.Fatalf("list on a terminal: exit %d: %s", code, errb.String())
	}
	select {
	case out := <-got:
		return out
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end")
		return ""
	}
}

// signal and sendSignal reach the instance's main process with the signal named any way PM2
// users name it; a stopped app or an unknown target is refused.
func TestSignalThroughMain(t *testing.T) {
	home, c := serveInProcess(t)
	dir := filepath.Join(home, "app")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	marks := filepath.Join(dir, "marks")
	// The script says when its traps are set: a signal before that would end it (bash's
	// default for USR1), which a loaded machine makes likely right after the spawn.
	script := harness.WriteScript(t, dir, "trap.sh", "trap 'echo usr1 >> "+marks+"' USR1\n"+
		"trap 'echo hup >> "+marks+"' HUP\necho set >> "+marks+"\nwhile :; do sleep 0.05; done\n")
	mustPmd(t, "start", script, "--name", "trap", "--kill-timeout", "2s")
	harness.Eventually(t, 15*time.Second, "the traps set", func() bool {
		b, _ := os.ReadFile(marks)
		return strings.TrimSpace(string(b)) == "set"
	})
	rows := harness.WaitRows(t, c, 15*time.Second, "trap online", harness.AllOnline("trap", 1))
	pid := rows[0].Pid
	for i, tt := range []struct {
		args []string
		want string // the line in marks this signal adds
	}{
		{[]string{"signal", "SIGUSR1", "trap"}, "usr1"},
		{[]string{"signal", "USR1", strconv.Itoa(rows[0].ID)}, "usr1"},
		{[]string{"sendSignal", "10", "trap"}, "usr1"},
		{[]string{"signal", "hup", "all"}, "hup"},
	} {
		out := mustPmd(t, tt.args...)
		if !strings.Contains(out, fmt.Sprintf("to trap (id %d, pid %d)", rows[0].ID, pid)) {
			t.Errorf("%q printed %q", tt.args, out)
		}
		harness.Eventually(t, 10*time.Second, fmt.Sprintf("%q reaching the app", tt.args), func() bool {
			b, _ := os.ReadFile(marks)
			lines := strings.Fields(string(b))[1:] // after "set"
			return len(lines) == i+1 && lines[i] == tt.want
		})
	}
	if now := mustList(t, c); now[0].Pid != pid || now[0].Restarts != 0 {
		t.Errorf("a trapped signal restarted the app: %+v", now[0])
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"signal", "USR1", "nosuch"}, "process 'nosuch' not found"},
	} {
		if r := pmd(tt.args...); r.code != 1 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
	mustPmd(t, "stop", "trap")
	if r := pmd("signal", "USR1", "trap"); r.code != 1 || !strings.Contains(r.stderr, "no instance of trap runs") {
		t.Errorf("signal to a stopped app: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := pmd("env", strconv.Itoa(rows[0].ID)); r.code != 1 || !strings.Contains(r.stderr, "is stopped and has no process") {
		t.Errorf("env of a stopped instance: exit %d, stderr %q", r.code, r.stderr)
	}
}
