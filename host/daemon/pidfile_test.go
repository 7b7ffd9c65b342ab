package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// The pid file follows the instance's process: written with each new pid, removed when the
// process is gone, but only while it holds that pid (a replacement may have written its own).
func TestPidFileFollowsTheProcess(t *testing.T) {
	dir := t.TempDir()
	var logged []string
	pf := pidFiles{pattern: "web.pid", cwd: dir, logf: func(f string, a ...any) { logged = append(logged, f) }}
	path := filepath.Join(dir, "web-1.pid")
	change := func(oldPid, newPid int) {
		pf.changed(supervisor.Change{Spec: supervisor.Spec{App: "web", Index: 1}, ID: 7,
			Old: supervisor.State{Pid: oldPid}, New: supervisor.State{Pid: newPid}})
	}
	steps := []struct {
		name     string
		old, new int
		before   func()
		want     string // the file's content after, "" for no file
	}{
		{name: "started", old: 0, new: 100, want: "100\n"},
		{name: "a state change with the same process", old: 100, new: 100, want: "100\n"},
		{name: "respawned after a crash", old: 100, new: 200, want: "200\n"},
		{name: "stopped", old: 200, new: 0, want: ""},
		{name: "started again", old: 0, new: 300, want: "300\n"},
		{name: "another process wrote its pid meanwhile", old: 300, new: 0, before: func() {
			os.WriteFile(path, []byte("400\n"), 0o644)
		}, want: "400\n"},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		change(s.old, s.new)
		b, err := os.ReadFile(path)
		if got := string(b); (s.want == "") != os.IsNotExist(err) || got != s.want {
			t.Errorf("%s: file %q (%v), want %q", s.name, got, err, s.want)
		}
	}
	if len(logged) != 0 {
		t.Errorf("logged %v", logged)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// A symbolic link at the pid file's path is replaced, never written through; a directory that
// does not exist is logged and nothing else happens.
func TestPidFileWriteIsSafe(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "web-0.pid")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := writePidFile(link, 42); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the link's target was written: %q", b)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink != 0 {
		t.Errorf("the link is still there (%v)", err)
	}

	var logged []string
	pf := pidFiles{pattern: "missing/web.pid", cwd: dir, logf: func(f string, a ...any) { logged = append(logged, f) }}
	pf.changed(supervisor.Change{Spec: supervisor.Spec{App: "web"}, New: supervisor.State{Pid: 5}})
	if len(logged) != 1 || !strings.Contains(logged[0], "pid_file") {
		t.Errorf("a pid file that cannot be written logged %q", logged)
	}
}
