package socketse2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
	"github.com/pmdaemon/pmdaemon/host/state"
)

// app is one language's test app: how to start it under pmdaemon.
type app struct {
	name string
	// cmd is the command and the arguments after `--`; flags go between them.
	cmd func(t *testing.T) (command string, args []string)
	// workerPids: the pid in the app's answer is a child of the instance (gunicorn's workers),
	// not the instance itself.
	workerPids bool
	// lossyStop, when set, says why the server itself drops some connections when it stops
	// gracefully: its reloads and restarts must refuse none, and the failed ones are logged.
	lossyStop string
}

var apps = []app{
	{name: "go", cmd: func(t *testing.T) (string, []string) { return harness.Echo, nil }},
	{name: "node", cmd: func(t *testing.T) (string, []string) {
		return need(t, "node", "nodejs"), []string{filepath.Join(harness.ModuleRoot(), "examples/apps/node-http/server.js")}
	}},
	// One worker per instance, so `-i 2` is two gunicorn masters on the sockets; the app runs
	// from its directory (--chdir) so that gunicorn imports app.py.
	{name: "gunicorn", workerPids: true, cmd: func(t *testing.T) (string, []string) {
		return gunicorn(t), []string{"--workers", "1", "--chdir", filepath.Join(harness.ModuleRoot(), "examples/apps/flask"), "app:app"}
	}},
}

// recipes are the other runtimes of docs/sockets.md that install from Debian: each runs its
// recipe through a reload and a restart under load (TestRecipesUnderLoad).
var recipes = []app{
	{name: "uvicorn", lossyStop: "uvicorn 0.17's graceful shutdown closes every connection with no request in progress, " +
		"including those it has accepted (asyncio accepts many at once) but not read a request from yet (uvicorn/server.py shutdown)",
		cmd: func(t *testing.T) (string, []string) {
			return debian(t, "/usr/bin/uvicorn", "uvicorn"), []string{"--fd", "3", "--app-dir", filepath.Join(harness.ModuleRoot(), "examples/apps/asgi"), "app:app"}
		}},
	{name: "puma", lossyStop: "puma 5.6's graceful shutdown times out every client in its reactor that has sent no byte yet, " +
		"closing connections it accepted just before (puma/server.rb reactor_wakeup, client.rb can_close?)",
		cmd: func(t *testing.T) (string, []string) {
			dir := filepath.Join(harness.ModuleRoot(), "examples/apps/rack")
			return debian(t, "/usr/bin/puma", "puma"), []string{"-C", filepath.Join(dir, "puma.rb"), filepath.Join(dir, "config.ru")}
		}},
}

// startArgs is `start CMD --name NAME flags... -- ARGS...` for a.
func (a app) startArgs(t *testing.T, name string, flags ...string) []string {
	cmd, args := a.cmd(t)
	out := append([]string{"start", cmd, "--name", name}, flags...)
	if len(args) > 0 {
		out = append(append(out, "--"), args...)
	}
	return out
}

// need finds a program on PATH or fails the test saying which Debian package has it.
func need(t *testing.T, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Fatalf("this test needs %s (test.sh installs it: apt-get install -y %s): %v", prog, pkg, err)
	}
	return p
}

// gunicorn is Debian's: it runs /usr/bin/python3 with Debian's Flask, whatever python3 comes
// first on PATH (a pyenv shim would lack Flask).
func gunicorn(t *testing.T) string {
	t.Helper()
	const p = "/usr/bin/gunicorn"
	if err := exec.Command("/usr/bin/python3", "-c", "import flask").Run(); err != nil {
		t.Fatalf("this test needs Debian's gunicorn and Flask (test.sh installs them: apt-get install -y gunicorn python3-flask): %v", err)
	}
	if out, err := exec.Command(p, "--version").CombinedOutput(); err != nil {
		t.Fatalf("this test needs %s (apt-get install -y gunicorn): %v %s", p, err, out)
	}
	return p
}

// debian checks that Debian's program p (of package pkg) is there.
func debian(t *testing.T, p, pkg string) string {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("this test needs %s (test.sh installs it: apt-get install -y %s): %v", p, pkg, err)
	}
	return p
}

func url(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/", port) }

// rawRows are the instance rows of `info NAME --json`.
func rawRows(t *testing.T, h *harness.Home, name string) []map[string]any {
	t.Helper()
	var info struct {
		Instances []map[string]any `json:"instances"`
	}
	out := h.OK("info", name, "--json")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("info --json: %v\n%s", err, out)
	}
	return info.Instances
}

// rawList is `list --json` as plain JSON.
func rawList(t *testing.T, h *harness.Home) []map[string]any {
	t.Helper()
	var rows []map[string]any
	out := h.OK("list", "--json")
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	return rows
}

// mentions reports whether any string in v (a decoded JSON value) contains sub.
func mentions(v any, sub string) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, sub)
	case []any:
		for _, e := range x {
			if mentions(e, sub) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if mentions(e, sub) {
				return true
			}
		}
	}
	return false
}

// theDaemon is the pid of h's one daemon process (daemon.pid, and no other running).
func theDaemon(t *testing.T, h *harness.Home) int {
	t.Helper()
	d := h.DaemonPid()
	if ds := h.DaemonProcs(); len(ds) != 1 || ds[0] != d {
		t.Fatalf("daemon processes %v, daemon.pid %d", ds, d)
	}
	return d
}

// tail is the last n lines of s, for failure messages.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// recorded waits until the state file holds the pids that list shows for app name.
func recorded(t *testing.T, h *harness.Home, name string) {
	t.Helper()
	harness.Eventually(t, 10*time.Second, "state.json to record "+name+"'s pids", func() bool {
		// Read, not state.Load: that would move a file it cannot parse aside, and this one is
		// the live daemon's.
		b, err := os.ReadFile(filepath.Join(h.Dir, "state.json"))
		var f state.File
		if err != nil || json.Unmarshal(b, &f) != nil {
			return false
		}
		var saved []int
		for _, a := range f.Apps {
			if a.Config.Name == name {
				for _, in := range a.Instances {
					saved = append(saved, in.Pid)
				}
			}
		}
		listed := harness.PidsOf(h.APIList(), name)
		slices.Sort(saved)
		slices.Sort(listed)
		return len(listed) > 0 && slices.Equal(saved, listed)
	})
}
