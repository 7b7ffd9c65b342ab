package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Why wait for nginx's workers: `nginx -s reload` (and `systemctl reload nginx`) only signal
// the master and return. The master then reads the configuration, starts new workers and asks
// the old ones to finish; until they have, the old workers still accept connections and send
// them to the upstream servers of the old file. Were the daemon to stop the old instances as
// soon as the reload command returns, those requests would fail with 502 (a few in a hundred
// under load). With "pid_file" the plugin knows the master and waits, after the reload command,
// until every worker it had before has exited.

// masterTitle is how nginx's master titles itself in its command line.
const masterTitle = "nginx: master process"

// nginxMaster reads the master's pid from pidFile and checks the process is nginx's master.
func nginxMaster(pidFile string) (int, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf(`reading "pid_file": %w`, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf(`"pid_file" %s does not hold a process id (%q)`, pidFile, truncate(strings.TrimSpace(string(b)), 40))
	}
	title, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	switch {
	case errors.Is(err, fs.ErrNotExist) || err == nil && len(title) == 0:
		return 0, fmt.Errorf(`"pid_file" %s names pid %d, which is not running: is nginx running?`, pidFile, pid)
	case err != nil:
		return 0, fmt.Errorf(`"pid_file" %s names pid %d, whose /proc entry cannot be read (/proc mounted with hidepid, or another pid namespace?): %w`, pidFile, pid, err)
	}
	if !bytes.HasPrefix(title, []byte(masterTitle)) {
		shown := strings.TrimSpace(string(bytes.ReplaceAll(title, []byte{0}, []byte{' '})))
		return 0, fmt.Errorf(`"pid_file" %s names pid %d, which is not nginx's master (its command line is %q): give the file of nginx's "pid" directive`,
			pidFile, pid, truncate(shown, 60))
	}
	return pid, nil
}

// workerSet is nginx's workers as they were before a reload: a pidfd each, which names that
// process and no later one with the same pid.
type workerSet struct {
	master int
	fds    []int
}

// snapshotWorkers opens a pidfd on each child of master that is not already shutting down
// (those run an older configuration still and take no new connections). Cache managers count:
// the master replaces them on a reload too. A master without workers (master_process off, a
// pid file naming something else) cannot be waited for and is an error.
func snapshotWorkers(master int) (*workerSet, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	ws := &workerSet{master: master}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parentOf(pid) != master {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, unix.ESRCH) {
			continue // gone already
		}
		if err != nil {
			ws.close()
			return nil, fmt.Errorf("cannot watch nginx's worker %d: pidfd_open: %w (pidfds need Linux 5.3)", pid, err)
		}
		// Checked again once the pidfd is open: the pid could have been reused in between.
		title, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if parentOf(pid) != master || bytes.Contains(title, []byte("shutting down")) {
			unix.Close(fd)
			continue
		}
		ws.fds = append(ws.fds, fd)
	}
	if len(ws.fds) == 0 {
		return nil, fmt.Errorf("nginx's master %d has no workers to wait for (is it run with master_process off?)", master)
	}
	return ws, nil
}

func (ws *workerSet) close() {
	for _, fd := range ws.fds {
		unix.Close(fd)
	}
	ws.fds = nil
}

// parentOf is pid's parent pid, or 0 when pid is gone.
func parentOf(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces and parentheses: fields start after
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// errWorkersLinger says nginx's old workers outlived the wait.
var errWorkersLinger = errors.New("nginx's workers from before the reload still run")

// await waits until every process of the set has exited (wherever it went: a reload command
// that restarts nginx leaves the old workers to init), or until limit, and closes the set.
func (ws *workerSet) await(limit time.Duration) error {
	defer ws.close()
	fds := make([]unix.PollFd, len(ws.fds))
	for i, fd := range ws.fds {
		fds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	deadline := time.Now().Add(limit)
	for len(fds) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%w after %s (%d of them)", errWorkersLinger, limit.Round(time.Millisecond), len(fds))
		}
		_, err := unix.Poll(fds, int(min(left, time.Second).Milliseconds())+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("waiting for nginx's old workers: %w", err)
		}
		fds = slices.DeleteFunc(fds, func(p unix.PollFd) bool { return p.Revents != 0 })
		for i := range fds {
			fds[i].Revents = 0
		}
	}
	return nil
}
