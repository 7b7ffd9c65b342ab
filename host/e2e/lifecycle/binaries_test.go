package lifecycle

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// runBin runs the pmdaemon binary bin for home with extra environment.
func runBin(t *testing.T, bin, home string, env []string, args ...string) harness.Result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "PMDAEMON_HOME="+home), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return harness.Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// lonelyCLI is a copy of the pmdaemon CLI in a directory of its own, without its pmdaemond.
func lonelyCLI(t *testing.T) string {
	t.Helper()
	lonely := filepath.Join(t.TempDir(), "pmdaemon")
	b, err := os.ReadFile(harness.Bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lonely, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return lonely
}

// The CLI and the daemon are two binaries. A pmdaemon installed without its pmdaemond says
// what is missing and how to install it, and starts nothing; PMDAEMON_DAEMON names a daemon
// elsewhere; `list --json`, which does not ping first, still starts the daemon when none runs.
func TestCLIFindsItsDaemonBinary(t *testing.T) {
	t.Parallel()
	lonely := lonelyCLI(t)
	noDaemonPath := []string{"PATH=/usr/bin:/bin", "PMDAEMON_DAEMON="}
	for _, args := range [][]string{{"list", "--json"}, {"list"}, {"start", "sleep 1000", "--name", "s"}, {"daemon"}, {"jlist"}} {
		h := harness.NewHome(t)
		r := runBin(t, lonely, h.Dir, noDaemonPath, args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "pmdaemond is not beside "+lonely+" nor on PATH") ||
			!strings.Contains(r.Stderr, "go install github.com/pmdaemon/pmdaemon/cmd/...@latest") {
			t.Errorf("pmdaemon %v without pmdaemond: exit %d, stderr %q; want a failure naming pmdaemond and how to install it", args, r.Code, r.Stderr)
		}
		if ps := h.Processes(); len(ps) != 0 {
			t.Errorf("pmdaemon %v without pmdaemond left processes %v", args, ps)
		}
	}

	// PMDAEMON_DAEMON: the lonely CLI starts the daemon named there, and `list --json`, the
	// command that asks without a ping, is the one that starts it.
	h := harness.NewHome(t)
	r := runBin(t, lonely, h.Dir, []string{"PATH=/usr/bin:/bin", "PMDAEMON_DAEMON=" + harness.Daemon}, "list", "--json")
	var rows []api.Instance
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &rows) != nil || len(rows) != 0 {
		t.Fatalf("list --json with PMDAEMON_DAEMON on a new home: exit %d, stdout %q, stderr %q; want [] from a daemon it started", r.Code, r.Stdout, r.Stderr)
	}
	pid := h.DaemonPid()
	if exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err != nil || exe != harness.Daemon {
		t.Errorf("the daemon (pid %d) runs %q (%v), want %s", pid, exe, err, harness.Daemon)
	}
}

// A problem of the daemon (here: its state file cannot be written) is shown once on stderr by
// every command while it lasts, by `list --json` too, which asks without a ping and reads it
// from the answer's header; stdout stays the JSON. When the problem ends, nothing is shown.
func TestProblemsShownByEveryCommand(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 1000", "--name", "a")
	h.WaitList(10*time.Second, "a online", harness.AllOnline("a", 1))
	// The state file becomes a directory with something in it: the atomic write's rename
	// over it fails, for root too.
	statePath := filepath.Join(h.Dir, "state.json")
	if err := os.Remove(statePath); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(statePath, "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	h.OK("start", "sleep 1000", "--name", "b")
	const problem = "the daemon cannot write its state file"
	harness.Eventually(t, 10*time.Second, "ping to report the problem", func() bool {
		return strings.Contains(h.Run("ping").Stderr, problem)
	})
	for _, args := range [][]string{{"list", "--json"}, {"jlist"}, {"list"}, {"info", "a"}} {
		r := h.Run(args...)
		if r.Code != 0 || strings.Count(r.Stderr, problem) != 1 {
			t.Errorf("pmdaemon %v while the state cannot be written: exit %d, stderr %q; want the problem once", args, r.Code, r.Stderr)
		}
		if args[0] != "list" || len(args) == 2 {
			if strings.Contains(r.Stdout, problem) {
				t.Errorf("pmdaemon %v wrote the problem to stdout: %q", args, r.Stdout)
			}
		}
	}
	if err := os.RemoveAll(statePath); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "the problem to end once the state is written (retried every second)", func() bool {
		r := h.Run("list", "--json")
		return r.Code == 0 && r.Stderr == ""
	})
	if _, err := os.Stat(statePath); err != nil {
		t.Errorf("the state file was not written again: %v", err)
	}
}

// A "daemon binary" that is the CLI never loops: PMDAEMON_DAEMON naming pmdaemon itself, or a
// copy of pmdaemon installed under the daemon's name, makes `pmdaemon daemon` and any command
// that would start the daemon fail at once with what is wrong, and leaves no process behind.
func TestCLIRefusesItselfAsTheDaemon(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(harness.Bin)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cli, impostor := filepath.Join(dir, "pmdaemon"), filepath.Join(dir, "pmdaemond")
	for _, p := range []string{cli, impostor} {
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		bin  string
		env  []string
		want string
	}{
		{"PMDAEMON_DAEMON names the CLI", harness.Bin, []string{"PMDAEMON_DAEMON=" + harness.Bin}, "is " + harness.Bin + " itself, the CLI"},
		{"a copy of the CLI installed as pmdaemond", cli, []string{"PMDAEMON_DAEMON=", "PATH=/usr/bin:/bin"}, "is a pmdaemon CLI, not pmdaemond"},
	}
	for _, tt := range tests {
		for _, args := range [][]string{{"daemon"}, {"ping"}, {"list", "--json"}} {
			h := harness.NewHome(t)
			done := make(chan harness.Result, 1)
			go func() { done <- runBin(t, tt.bin, h.Dir, tt.env, args...) }()
			var r harness.Result
			select {
			case r = <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("%s: pmdaemon %v still runs after 60 s", tt.name, args)
			}
			if args[0] == "daemon" && (r.Code == 0 || !strings.Contains(r.Stderr, tt.want)) {
				t.Errorf("%s: pmdaemon %v: exit %d, stderr %q; want a failure saying %q", tt.name, args, r.Code, r.Stderr, tt.want)
			}
			if args[0] != "daemon" && r.Code == 0 {
				t.Errorf("%s: pmdaemon %v succeeded without a daemon binary: %q", tt.name, args, r.Stdout)
			}
			harness.Eventually(t, 10*time.Second, tt.name+": no process left for the home", func() bool {
				return len(h.Processes()) == 0
			})
		}
	}
}
