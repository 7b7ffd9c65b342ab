package lifecycle

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// A command line with --instances 3 runs three processes, each its own row, detached from the
// CLI that started them.
func TestStartInstancesDetachFromTheCLI(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	out := h.OK("start", "sleep 1000", "--instances", "3")
	if !strings.Contains(out, "started sleep") {
		t.Errorf("start output does not report the app: %s", out)
	}
	rows := h.WaitOnline("sleep", 3)
	if len(rows) != 3 {
		t.Fatalf("list has %d rows, want 3", len(rows))
	}
	ids := map[int]bool{}
	idx := map[int]bool{}
	pids := map[int]bool{}
	d := h.DaemonPid()
	for _, r := range rows {
		if ids[r.ID] {
			t.Errorf("duplicate id %d", r.ID)
		}
		ids[r.ID] = true
		idx[r.Index] = true
		pids[r.Pid] = true
		if r.Name != "sleep" || r.Status != "online" {
			t.Errorf("row %+v: want name sleep, status online", r)
		}
		if !harness.Alive(r.Pid) {
			t.Errorf("instance %d: pid %d is not alive", r.Index, r.Pid)
		}
		// Supervised by the daemon, in its own process group: not tied to the CLI.
		if p := harness.Ppid(r.Pid); p != d {
			t.Errorf("instance %d: parent is %d, want the daemon %d", r.Index, p, d)
		}
		if g := harness.Pgid(r.Pid); g != r.Pid {
			t.Errorf("instance %d: process group %d, want its own (%d)", r.Index, g, r.Pid)
		}
		if r.Port != nil {
			t.Errorf("instance %d has port %d without --port", r.Index, *r.Port)
		}
	}
	for i := 0; i < 3; i++ {
		if !idx[i] {
			t.Errorf("no instance %d; rows: %+v", i, rows)
		}
	}
	if len(pids) != 3 {
		t.Errorf("pids are not distinct: %v", pidsOf(rows))
	}
	// The CLI has exited; the apps still run, and a later CLI sees the same processes.
	again := h.List()
	for _, r := range again {
		if r.Status != "online" || !pids[r.Pid] || !harness.Alive(r.Pid) {
			t.Errorf("after the CLI exited: %+v (pids before: %v)", r, pidsOf(rows))
		}
	}
}

// Every instance gets PORT, PM2_INSTANCE_ID, NODE_APP_INSTANCE, PMDAEMON_APP_NAME,
// PMDAEMON_HOME and the app's --env values.
func TestStartInjectsInstanceEnv(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	base := harness.FreePorts(t, 2)
	spec := strconv.Itoa(base) + "-" + strconv.Itoa(base+1)
	h.OK("start", harness.Echo, "--name", "envapp", "--instances", "2", "--port", spec, "--env", "FOO=bar")
	rows := h.WaitOnline("envapp", 2)
	for _, r := range rows {
		want := map[string]string{
			"PM2_INSTANCE_ID":   strconv.Itoa(r.Index),
			"NODE_APP_INSTANCE": strconv.Itoa(r.Index),
			"PMDAEMON_APP_NAME": "envapp",
			"PMDAEMON_HOME":     h.Dir,
			"PORT":              strconv.Itoa(base + r.Index),
			"FOO":               "bar",
		}
		if r.Port == nil || *r.Port != base+r.Index {
			t.Errorf("instance %d: port %v in list, want %d", r.Index, r.Port, base+r.Index)
		}
		if who := harness.WaitWho(t, base+r.Index, "envapp", r.Index); who.Pid != r.Pid {
			t.Errorf("instance %d answered %+v; list says pid %d", r.Index, who, r.Pid)
		}
		for name, v := range want {
			got, err := harness.EchoEnv(base+r.Index, name)
			if err != nil {
				t.Errorf("instance %d: GET /env?name=%s: %v", r.Index, name, err)
				continue
			}
			if got != v {
				t.Errorf("instance %d: %s=%q, want %q", r.Index, name, got, v)
			}
		}
	}
}

// A .sh script started by path runs under bash in --cwd; its default name is the base name
// without the extension.
func TestStartScriptByExtension(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := harness.NewHome(t)
	// Not executable: the .sh extension alone must make pmdaemon run it with bash.
	script := filepath.Join(dir, "worker.sh")
	if err := os.WriteFile(script, []byte("pwd > where\nexec sleep 1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.OK("start", "./worker.sh", "--cwd", dir)
	rows := h.WaitOnline("worker", 1)
	if len(rows) != 1 || rows[0].Name != "worker" {
		t.Fatalf("want one app named worker, got %+v", rows)
	}
	harness.Eventually(t, 10*time.Second, "the script to write ./where", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "where"))
		return err == nil && strings.TrimSpace(string(b)) == dir
	})
	info := h.Info("worker")
	if len(info.Command) < 2 || filepath.Base(info.Command[0]) != "bash" || info.Command[1] != script {
		t.Errorf("command is %q, want [bash %s]", info.Command, script)
	}
	if info.Config.Cwd != dir {
		t.Errorf("cwd in config is %q, want %q", info.Config.Cwd, dir)
	}
	if cwd, err := os.Readlink("/proc/" + strconv.Itoa(rows[0].Pid) + "/cwd"); err != nil || cwd != dir {
		t.Errorf("process cwd is %q (%v), want %q", cwd, err, dir)
	}
}

// Starting a name that exists is refused, and the running app is left alone.
func TestStartDuplicateName(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 1000", "--name", "dup")
	rows := h.WaitOnline("dup", 1)
	r := h.Run("start", "sleep 2000", "--name", "dup")
	if r.Code == 0 {
		t.Fatalf("second start of dup succeeded: %s", r.Stdout)
	}
	harness.ErrLike(t, r.Stderr, "'dup' already exists")
	after := h.List()
	if len(after) != 1 || after[0].Pid != rows[0].Pid || after[0].ID != rows[0].ID || after[0].Status != "online" {
		t.Errorf("the first dup was disturbed: before %+v, after %+v", rows, after)
	}
	if n := len(h.AppProcs()); n != 1 {
		t.Errorf("%d app processes run, want 1", n)
	}
}
