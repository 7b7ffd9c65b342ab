package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/procfs"
	"github.com/pmdaemon/pmdaemon/host/state"
)

// termGrace is how much longer than the longest kill timeout of its apps a daemon that did not
// answer gets to stop them and exit after SIGTERM, before it is killed with SIGKILL.
const termGrace = 5 * time.Second

// proc names one process: a pid and its start time, so a reused pid is never signalled.
type proc struct {
	pid   int
	start uint64
}

func (p proc) alive() bool {
	st, err := procfs.Read(p.pid)
	return err == nil && !st.Zombie() && st.StartTime == p.start
}

// killUnanswering is `kill` when no daemon answered (err says why). A daemon may hold the
// home's lock all the same: stopped (SIGSTOP), wedged, or busy starting. Then it is woken
// (SIGCONT) and asked to stop its apps and exit (SIGTERM, as systemd would); if it has not
// within its apps' kill timeouts and a grace, it is killed (SIGKILL), and any app process it
// left behind, by the pids and start times in state.json, is stopped here as the daemon would
// (SIGTERM to its process group, SIGKILL at its kill timeout). No daemon at all is not an
// error.
func (e *Env) killUnanswering(why error) error {
	d, err := e.lockHolder()
	if err != nil {
		return err
	}
	if d.pid == 0 {
		fmt.Fprintln(e.Stdout, "[pmdaemon] daemon is not running")
		return nil
	}
	fmt.Fprintf(e.Stdout, "[pmdaemon] daemon pid %d does not answer (%s); stopping its apps and killing it\n", d.pid, noAnswer(why))
	apps, longest := e.appProcs()
	wait := longest + termGrace
	for _, sig := range []syscall.Signal{syscall.SIGCONT, syscall.SIGTERM} {
		if err := syscall.Kill(d.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("cannot signal daemon pid %d: %w", d.pid, err)
		}
	}
	if !e.waitDaemonGone(d, wait) {
		fmt.Fprintf(e.Stdout, "[pmdaemon] daemon pid %d did not exit within %s of SIGTERM; killing it with SIGKILL\n", d.pid, wait)
		if err := syscall.Kill(d.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("cannot kill daemon pid %d: %w", d.pid, err)
		}
		if !e.waitDaemonGone(d, 10*time.Second) {
			return fmt.Errorf("daemon pid %d is still there 10s after SIGKILL", d.pid)
		}
	}
	// A daemon that stopped cleanly stopped its apps; one that was killed left them running.
	// Read the state again: the daemon may have started processes after the first read.
	after, _ := e.appProcs()
	for k, v := range after {
		apps[k] = v
	}
	var mu sync.Mutex
	var left []string
	var wg sync.WaitGroup
	for p, timeout := range apps {
		if !p.alive() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stopGroup(p, timeout); err != nil {
				mu.Lock()
				left = append(left, err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(left) > 0 {
		return fmt.Errorf("the daemon is gone but app processes could not be stopped: %s", strings.Join(left, "; "))
	}
	fmt.Fprintln(e.Stdout, "[pmdaemon] apps stopped, daemon killed")
	return nil
}

// noAnswer says in a few words why a ping got no answer.
func noAnswer(err error) string {
	var stopped *api.StoppedError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer to ping within 2s"
	case errors.Is(err, api.ErrNoDaemon):
		return "its socket refuses connections"
	case errors.As(err, &stopped):
		return "it closed the connection without answering"
	}
	return err.Error()
}

// lockHolder finds the process that holds the home's daemon lock: the flock on daemon.lock
// as /proc/locks lists it, else the pid in daemon.pid, in both cases only if that process has
// the lock file open. The zero proc means no daemon holds it.
func (e *Env) lockHolder() (proc, error) {
	lockPath := e.paths().Lock()
	st, err := os.Stat(lockPath)
	if errors.Is(err, fs.ErrNotExist) {
		return proc{}, nil
	}
	if err != nil {
		return proc{}, fmt.Errorf("cannot look at the daemon lock: %w", err)
	}
	ino := st.Sys().(*syscall.Stat_t).Ino
	pids, err := flockHolders(ino)
	if err != nil {
		// No /proc/locks: trust the pid file, if its process has the lock file open.
		pids = nil
		if b, err := os.ReadFile(e.paths().Pid()); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				pids = []int{pid}
			}
		}
	}
	for _, pid := range pids {
		if pid <= 0 || pid == os.Getpid() || !hasOpen(pid, lockPath) {
			continue
		}
		s, err := procfs.Read(pid)
		if err != nil || s.Zombie() {
			continue
		}
		return proc{pid: pid, start: s.StartTime}, nil
	}
	return proc{}, nil
}

// flockHolders lists the pids that /proc/locks shows holding a flock on inode ino (waiters
// excluded). The device is not compared: on overlay file systems stat and the lock disagree.
func flockHolders(ino uint64) ([]int, error) {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 8097 fe:00:9978686 0 EOF"; waiters have "->" after the id.
		fl := strings.Fields(sc.Text())
		if len(fl) < 6 || fl[1] != "FLOCK" {
			continue
		}
		id := fl[5]
		if i := strings.LastIndexByte(id, ':'); i < 0 || id[i+1:] != strconv.FormatUint(ino, 10) {
			continue
		}
		if pid, err := strconv.Atoi(fl[4]); err == nil {
			out = append(out, pid)
		}
	}
	return out, sc.Err()
}

// hasOpen reports whether process pid has path open.
func hasOpen(pid int, path string) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, ent := range ents {
		if target, err := os.Readlink(filepath.Join(dir, ent.Name())); err == nil && target == path {
			return true
		}
	}
	return false
}

// waitDaemonGone waits until d has exited for good: its pid is gone (or a zombie, or another
// process) and it no longer holds the lock, which it keeps until its last thread is gone.
func (e *Env) waitDaemonGone(d proc, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !d.alive() {
			if h, err := e.lockHolder(); err == nil && h != d {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// appProcs reads state.json, leniently (this is no daemon: it neither repairs nor moves a bad
// file), and returns the app processes it names that still run, each with its kill timeout,
// and the longest of those timeouts.
func (e *Env) appProcs() (map[proc]time.Duration, time.Duration) {
	out := map[proc]time.Duration{}
	var longest time.Duration
	b, err := os.ReadFile(e.paths().State())
	if err != nil {
		return out, 0
	}
	var f state.File
	if json.Unmarshal(b, &f) != nil {
		return out, 0
	}
	for _, a := range f.Apps {
		// This read is lenient (the daemon may have left anything): an app without a config
		// still has its processes stopped, with the default kill timeout.
		timeout := config.DefaultKillTimeout
		if a.Config != nil {
			timeout = a.Config.KillTimeout
		}
		for _, in := range a.Instances {
			p := proc{pid: in.Pid, start: in.PidStart}
			if in.Pid <= 0 || !p.alive() {
				continue
			}
			out[p] = timeout
			longest = max(longest, timeout)
		}
	}
	return out, longest
}

// stopGroup stops app process p as the daemon stops an instance: SIGTERM (and SIGCONT, in case
// it is stopped too) to its process group, SIGKILL to the group at the kill timeout. A process
// that does not lead its own group is signalled alone.
func stopGroup(p proc, timeout time.Duration) error {
	target := p.pid
	if st, err := procfs.Read(p.pid); err == nil && st.Pgid == p.pid {
		target = -p.pid
	}
	gone := func() bool {
		if target > 0 {
			return !p.alive()
		}
		all, err := procfs.All()
		if err != nil {
			return !p.alive()
		}
		for _, s := range all {
			if s.Pgid == p.pid && !s.Zombie() {
				return false
			}
		}
		return true
	}
	waitFor := func(d time.Duration) bool {
		deadline := time.Now().Add(d)
		for !gone() {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
		return true
	}
	if !p.alive() {
		return nil
	}
	if err := syscall.Kill(target, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pid %d: %v", p.pid, err)
	}
	syscall.Kill(target, syscall.SIGCONT)
	if waitFor(timeout) {
		return nil
	}
	syscall.Kill(target, syscall.SIGKILL)
	if waitFor(5 * time.Second) {
		return nil
	}
	return fmt.Errorf("pid %d survived SIGKILL", p.pid)
}
