package lifecycle

import (
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// nextVersion is the version of the binary an update test installs.
const nextVersion = "0.1.0-next"

// buildNext builds the daemon (pmdaemond) again as version nextVersion, as the harness built
// the binary under test (with the race detector when that one has it): the "installed daemon"
// of an update.
func buildNext(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "pmdaemond-next")
	args := []string{"build", "-o", out, "-ldflags", "-X github.com/pmdaemon/pmdaemon/host/api.Version=" + nextVersion}
	info, err := buildinfo.ReadFile(harness.Daemon)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range info.Settings {
		if s.Key == "-race" && s.Value == "true" {
			args = append(args, "-race")
		}
	}
	cmd := exec.Command("go", append(args, "./cmd/pmdaemond")...)
	cmd.Dir = harness.ModuleRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", out, err, b)
	}
	return out
}

// processMode is the daemon's way of owning processes, from ping.
func processMode(t *testing.T, h *harness.Home) string {
	t.Helper()
	var p api.Ping
	if err := json.Unmarshal([]byte(h.OK("ping", "--json")), &p); err != nil {
		t.Fatal(err)
	}
	return p.ProcessMode
}

// treeScript is an app with children: one in its process group that ignores SIGTERM, and in
// cgroup mode one that left the group (setsid), which only the cgroup holds.
const treeScript = `#!/bin/sh
(trap '' TERM; exec sleep 1000) &
echo $! > c1
if [ "$1" = cgroup ]; then
  setsid sleep 1001 &
  echo $! > c2
fi
wait
`

// pmdaemon update replaces the daemon with the installed binary and every app runs on, untouched:
// same pids, ids, ports and restart counts, still answering on its port. The new daemon
// supervises them: a crash is restarted, and a stop kills an instance with all its children.
// The CLI, now of another version than the daemon, says so and how to fix it, and goes on.
func TestUpdateKeepsAppsRunning(t *testing.T) {
	t.Parallel()
	next := buildNext(t)
	h := harness.NewHome(t)
	dir := t.TempDir()
	mode := processMode(t, h)
	harness.WriteScript(t, dir, "tree.sh", treeScript)
	fixed, auto := harness.FreePorts(t, 2), harness.FreePorts(t, 4)
	h.OK("start", harness.Echo, "--name", "web", "--instances", "2", "--port", fmt.Sprintf("%d-%d", fixed, fixed+1))
	h.OK("start", harness.Echo, "--name", "api", "--port", fmt.Sprintf("auto:%d-%d", auto, auto+3))
	h.OK("start", "./tree.sh "+mode, "--cwd", dir, "--name", "tree", "--kill-timeout", "500ms")
	online := func(rows []api.Instance) bool {
		return harness.AllOnline("web", 2)(rows) && harness.AllOnline("api", 1)(rows) && harness.AllOnline("tree", 1)(rows)
	}
	before := h.WaitList(20*time.Second, "every app online", online)
	children := []int{harness.ReadPids(t, filepath.Join(dir, "c1"), 1)[0]}
	if mode == "cgroup" {
		children = append(children, harness.ReadPids(t, filepath.Join(dir, "c2"), 1)[0])
	}
	for _, r := range before {
		if r.Name != "tree" {
			harness.WaitWho(t, portOf(r), r.Name, r.Index)
		}
	}
	oldDaemon := h.DaemonPid()

	out := h.OK("update", "--binary", next)
	want := fmt.Sprintf("[pmdaemon] daemon updated: pid %d (version %s) handed 4 running instance(s) over to pid ", oldDaemon, api.Version)
	if !strings.Contains(out, want) || !strings.Contains(out, "(version "+nextVersion+"), without restarting them") {
		t.Fatalf("update said %q, want %q... (version %s)", out, want, nextVersion)
	}
	newDaemon := h.DaemonPid()
	if newDaemon == oldDaemon || harness.Alive(oldDaemon) {
		t.Fatalf("daemon pid %d after update (was %d, alive: %v)", newDaemon, oldDaemon, harness.Alive(oldDaemon))
	}

	r := h.Run("list")
	mismatch := fmt.Sprintf("pmdaemon: the daemon runs version %s and this pmdaemon is %s; run 'pmdaemon update' to replace the daemon without restarting your apps\n",
		nextVersion, api.Version)
	if r.Code != 0 || r.Stderr != mismatch {
		t.Errorf("list against the updated daemon: exit %d, stderr %q; want exit 0 and %q", r.Code, r.Stderr, mismatch)
	}
	// When the daemon binary this CLI would start is itself of the daemon's version, update
	// would not help: the advice says to install the matching pmdaemond.
	r = runBin(t, harness.Bin, h.Dir, []string{"PMDAEMON_DAEMON=" + next}, "list", "--json")
	wrongBinary := fmt.Sprintf("pmdaemon: the daemon runs version %s and this pmdaemon is %s; the daemon binary %s is version %s: install the pmdaemond built with this pmdaemon, then run 'pmdaemon update'\n",
		nextVersion, api.Version, next, nextVersion)
	if r.Code != 0 || r.Stderr != wrongBinary {
		t.Errorf("list with the older pmdaemond installed: exit %d, stderr %q; want exit 0 and %q", r.Code, r.Stderr, wrongBinary)
	}

	after := h.WaitList(10*time.Second, "every app online", online)
	now := harness.ByID(after)
	if len(after) != len(before) {
		t.Errorf("%d rows after update, want %d", len(after), len(before))
	}
	for _, b := range before {
		a, ok := now[b.ID]
		switch {
		case !ok:
			t.Errorf("id %d (%s[%d]) is gone", b.ID, b.Name, b.Index)
		case a.Name != b.Name || a.Index != b.Index || a.Pid != b.Pid || portOf(a) != portOf(b) || a.Restarts != b.Restarts:
			t.Errorf("id %d was %s[%d] pid %d port %d restarts %d; after update %s[%d] pid %d port %d restarts %d",
				b.ID, b.Name, b.Index, b.Pid, portOf(b), b.Restarts, a.Name, a.Index, a.Pid, portOf(a), a.Restarts)
		case a.Name != "tree":
			if w := harness.WaitWho(t, portOf(a), a.Name, a.Index); w.Pid != a.Pid {
				t.Errorf("%s[%d]: pid %d answers on %d, want %d", a.Name, a.Index, w.Pid, portOf(a), a.Pid)
			}
		}
	}
	for _, c := range children {
		if !harness.Alive(c) {
			t.Errorf("child %d of tree died in the update", c)
		}
	}

	// A crash after the update is the new daemon's to restart, on the same port.
	crashed := harness.Rows(after, "web")[0]
	harness.Sigkill(t, crashed.Pid)
	rows := h.WaitList(15*time.Second, "web[0] restarted", func(rows []api.Instance) bool {
		r := harness.ByID(rows)[crashed.ID]
		return r.Status == "online" && r.Pid > 0 && r.Pid != crashed.Pid && r.Restarts == crashed.Restarts+1
	})
	if w := harness.WaitWho(t, portOf(crashed), "web", crashed.Index); w.Pid != harness.ByID(rows)[crashed.ID].Pid {
		t.Errorf("web[0] restarted as pid %d, but pid %d answers", harness.ByID(rows)[crashed.ID].Pid, w.Pid)
	}

	// Stop kills the adopted instance with every child it has, one that ignores SIGTERM and,
	// in cgroup mode, one that left its process group.
	tree := harness.Rows(after, "tree")[0]
	h.OK("stop", "tree")
	harness.WaitDead(t, 5*time.Second, "tree and its children gone after stop", append(children, tree.Pid)...)
}

// An update that cannot happen leaves the daemon as it was: a binary that cannot be run, or
// that is not a pmdaemond (asked for its --version), or a pmdaemon CLI without its pmdaemond,
// is refused before anything is handed over.
func TestUpdateRefusesWhatCannotRun(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	notExec := harness.WriteScript(t, dir, "pmdaemon", "#!/bin/sh\n")
	if err := syscall.Chmod(notExec, 0o644); err != nil {
		t.Fatal(err)
	}
	notDaemon := harness.WriteScript(t, dir, "impostor", "#!/bin/sh\necho 'pmdaemond? no'\n")
	lonely := lonelyCLI(t)
	h.OK("start", "sleep 1000", "--name", "s")
	before := h.WaitList(10*time.Second, "s online", harness.AllOnline("s", 1))
	daemon := h.DaemonPid()
	tests := []struct {
		binary string
		want   []string
	}{
		{filepath.Join(dir, "missing"), []string{"cannot run the new daemon from " + filepath.Join(dir, "missing"), "no such file"}},
		{notExec, []string{"cannot run the new daemon from " + notExec + ": not an executable file"}},
		{dir, []string{"cannot run the new daemon from " + dir + ": not an executable file"}},
		// Runs, but is no pmdaemond: refused on its answer to --version, before any handover.
		{"/bin/true", []string{"cannot run the new daemon from /bin/true: it is not a pmdaemond", "--version"}},
		{notDaemon, []string{"cannot run the new daemon from " + notDaemon + ": it is not a pmdaemond", `answered "pmdaemond? no"`}},
		// A pmdaemon CLI without its pmdaemond beside it.
		{lonely, []string{"--binary " + lonely + " is a pmdaemon CLI", filepath.Join(filepath.Dir(lonely), "pmdaemond") + " beside it: no such file"}},
	}
	for _, tt := range tests {
		harness.ErrLike(t, h.Fail("update", "--binary", tt.binary), tt.want...)
		if h.DaemonPid() != daemon {
			t.Fatalf("update --binary %s replaced the daemon", tt.binary)
		}
	}
	if after := h.List(); len(after) != 1 || after[0].Pid != before[0].Pid {
		t.Errorf("after refused updates: %+v, want pid %d running", after, before[0].Pid)
	}
}

// portOf is the port of r, 0 when it has none.
func portOf(r api.Instance) int {
	if r.Port == nil {
		return 0
	}
	return *r.Port
}
