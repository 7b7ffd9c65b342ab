package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// pidFiles keeps an app's pid_file (PM2's): each instance's pid is written when its process
// starts (or is taken back by a new daemon) and the file removed when the process is gone.
// Files are numbered by the instance's index, not its id as PM2 does: an index stays the same
// through restarts and reloads (a reload beside the old instances gives the new ones other ids
// until they take the old ones over), so web-0.pid is always instance 0's. pmdaemon writes
// none unless pid_file asks: `list` and `jlist` give the pids.
type pidFiles struct {
	pattern, cwd string
	logf         func(format string, a ...any)
}

// pidFileNotify returns notify, preceded by keeping a's pid files when a has a pid_file.
// The pattern is taken at launch, so a config update applies from the next launch, as the
// rest of the spec does.
func (d *Daemon) pidFileNotify(a *app, notify func(supervisor.Change)) func(supervisor.Change) {
	if a.cfg.PidFile == "" {
		return notify
	}
	pf := pidFiles{pattern: a.cfg.PidFile, cwd: a.cfg.Cwd, logf: d.logger.Printf}
	return func(c supervisor.Change) {
		pf.changed(c)
		notify(c)
	}
}

// changed writes or removes the pid file of the instance c is about. It runs on the
// instance's goroutine; a file that cannot be written is logged and the app runs on.
func (p pidFiles) changed(c supervisor.Change) {
	o, n := c.Old, c.New
	path := config.PidFileOf(p.pattern, p.cwd, c.Spec.Index)
	if o.Pid > 0 && n.Pid != o.Pid {
		p.remove(path, o.Pid)
	}
	if n.Pid > 0 && n.Pid != o.Pid {
		if err := writePidFile(path, n.Pid); err != nil {
			p.logf("app %q: pid_file: %v", c.Spec.App, err)
		}
	}
}

// remove removes path if it still holds pid: the replacement of an instance reloaded beside it
// has written its own pid there already, and instances whose pid_file has no .pid to number
// share one file, which the last to start owns.
func (p pidFiles) remove(path string, pid int) {
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.logf("pid_file: %v", err)
	}
}

// writePidFile replaces path with pid and a newline, through a new file renamed over it: a
// reader never sees half a pid, and a symbolic link at path is replaced, not followed.
func writePidFile(path string, pid int) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	_, werr := fmt.Fprintf(tmp, "%d\n", pid)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		return fmt.Errorf("cannot write %s: %w", path, werr)
	}
	return nil
}
