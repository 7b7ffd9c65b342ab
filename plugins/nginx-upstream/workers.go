package main

import (
	"bytes"
	"errors"
	"fmt"
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

// nginxMaster reads the master's pid from pidFile and checks the process is nginx's.
func nginxMaster(pidFile string) (int, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf(`reading "pid_file": %w`, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf(`"pid_file" %s does not hold a process id (%q)`, pidFile, truncate(strings.TrimSpace(string(b)), 40))
	}
	comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	if err != nil {
		return 0, fmt.Errorf(`"pid_file" %s names pid %d, which is not running: is nginx running?`, pidFile, pid)
	}
	if name := strings.TrimSpace(string(comm)); name != "nginx" {
		return 0, fmt.Errorf(`"pid_file" %s names pid %d, which is %q, not nginx`, pidFile, pid, truncate(name, 40))
	}
	return pid, nil
}

// workersOf lists the children of master that are not already shutting down (those run an
// older configuration still and will not take new connections). Cache managers count: the
// master replaces them on a reload too.
func workersOf(master int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parentOf(pid) != master {
			continue
		}
		title, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(title, []byte("shutting down")) {
			continue
		}
		out = append(out, pid)
	}
	return out
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

// awaitExit waits until every pid in pids that is still master's child has exited, or until
// limit. It watches each through a pidfd, so it sees the exit as it happens.
func awaitExit(master int, pids []int, limit time.Duration) error {
	var fds []unix.PollFd
	defer func() {
		for _, p := range fds {
			unix.Close(int(p.Fd))
		}
	}()
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone already
		}
		// The pid may have been reused between the listing and the open: only a child of the
		// master is waited for.
		if parentOf(pid) != master {
			unix.Close(fd)
			continue
		}
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
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
		fds = slices.DeleteFunc(fds, func(p unix.PollFd) bool {
			if p.Revents == 0 {
				return false
			}
			unix.Close(int(p.Fd))
			return true
		})
		for i := range fds {
			fds[i].Revents = 0
		}
	}
	return nil
}
