package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pmdaemon/pmdaemon/host/procfs"
)

// StartTime reads a process's start time (clock ticks since boot), which together with the
// pid identifies one process even after the pid is reused. A zombie has no start time.
func StartTime(pid int) (uint64, error) {
	st, err := procfs.Read(pid)
	if err != nil {
		return 0, err
	}
	if st.Zombie() {
		return 0, fmt.Errorf("process %d is a zombie", pid)
	}
	return st.StartTime, nil
}

// Alive reports whether pid is the process that started at start.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := StartTime(pid)
	return err == nil && st == start
}

// groupAlive reports whether any process is left in process group pgid, zombies aside.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); err != nil {
		return false
	}
	// kill(2) also succeeds for a group of zombies only; look closer.
	all, err := procfs.All()
	if err != nil {
		return true
	}
	for _, st := range all {
		if st.Pgid == pgid && !st.Zombie() {
			return true
		}
	}
	return false
}

// waitGroupGone polls until no live process is left in pgid or the deadline passes.
func waitGroupGone(pgid int, deadline time.Time) bool {
	for {
		if !groupAlive(pgid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exitNotOurs is what watchPid reports when the pid no longer belonged to the process it was
// asked to watch: that process was gone already, and the pid (and its group) is a stranger's.
const exitNotOurs = -2

// watchPid reports on the returned channel when a process that is not our child exits. It uses
// a pidfd registered with Go's poller, so an adopted instance costs no thread while it runs.
// Its exit status is unknown to us; -1 is sent.
func watchPid(pid int, start uint64) <-chan int {
	ch := make(chan int, 1)
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		go pollPid(pid, start, ch)
		return ch
	}
	if !Alive(pid, start) { // the pid may have been reused between check and open
		unix.Close(fd)
		ch <- exitNotOurs
		return ch
	}
	go func() {
		if err := awaitPidfd(fd); err != nil {
			pollPid(pid, start, ch)
			return
		}
		ch <- -1
	}()
	return ch
}

// awaitPidfd returns once the process of the pidfd has exited, and closes the pidfd. The
// goroutine waits in Go's poller, not in a system call, so it holds no OS thread: a daemon
// with 1000 instances does not need 1000 threads.
func awaitPidfd(fd int) error {
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return err == nil && n > 0
	})
}

// waitChild reports the exit code of a child we started with SysProcAttr.PidFD = &pidfd. It
// waits for the exit on that pidfd in Go's poller (no thread held, see awaitPidfd), then reaps
// the child with wait4, which no longer blocks. os/exec keeps a copy of the pidfd for
// cmd.Wait; that copy is released at once, so a running instance holds one descriptor, not
// two (fdgate.go). Without a pidfd (a kernel before 5.2, no CLONE_PIDFD) it falls back to cmd.Wait, which
// blocks a thread: slower, still right. With a guard, the child is reaped only under the
// guard's lock (see reapGuard).
func waitChild(cmd *exec.Cmd, pidfd int, guard *reapGuard) <-chan int {
	ch := make(chan int, 1)
	if pidfd < 0 {
		if guard != nil {
			guard.proc = cmd.Process // os.Process knows, under its own lock, when it was reaped
		}
		go func() { ch <- exitCode(cmd.Wait()) }()
		return ch
	}
	pid := cmd.Process.Pid
	cmd.Process.Release() // closes Go's copy; the child stays unreaped for wait4 below
	if guard != nil {
		guard.pid = pid
	}
	go func() {
		exited := false
		if err := unix.SetNonblock(pidfd, true); err == nil {
			exited = awaitPidfd(pidfd) == nil // closes it; on error, wait4 below blocks a thread
		} else {
			unix.Close(pidfd)
		}
		if guard != nil {
			// Reaped under the lock; but a wait4 that blocks must not hold it (a signal would
			// wait for the exit), so then the pid is given up first.
			guard.mu.Lock()
			guard.pid = 0
			if exited {
				defer guard.mu.Unlock()
			} else {
				guard.mu.Unlock()
			}
		}
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			if err != syscall.EINTR {
				if err != nil {
					ch <- -1
					return
				}
				break
			}
		}
		ch <- waitStatusCode(ws)
	}()
	return ch
}

// reapGuard lets another goroutine signal a child without racing its reaping: the child is
// reaped only while mu is held, and pid is 0 from then on, so a pid signalled under mu is still
// the child's (alive or a zombie), never a later process's. Holding no descriptor, it costs a
// log writer nothing in the daemon's descriptor budget (fdgate.go). Without pidfds the child is
// signalled through its os.Process, which knows when cmd.Wait reaped it.
type reapGuard struct {
	mu   sync.Mutex
	pid  int         // 0 once reaped (or given up before a blocking wait4)
	proc *os.Process // without pidfds
}

// signalGroup sends sig to the child's process group (it leads one of its own) if the child is
// not reaped yet: the unreaped leader keeps the group id from being reused.
func (g *reapGuard) signalGroup(sig syscall.Signal) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.pid > 0:
		syscall.Kill(-g.pid, sig)
	case g.proc != nil:
		g.proc.Signal(sig)
	}
}

func pollPid(pid int, start uint64, ch chan<- int) {
	if !Alive(pid, start) {
		ch <- exitNotOurs
		return
	}
	for Alive(pid, start) {
		time.Sleep(250 * time.Millisecond)
	}
	ch <- -1
}

// exitCode turns cmd.Wait's error into an exit code; killed by a signal is 128+signal.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee interface{ Sys() any }
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			return waitStatusCode(ws)
		}
	}
	return -1
}

// waitStatusCode is the exit code of a wait status; killed by a signal is 128+signal.
func waitStatusCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// StopOrphan stops the process group of pid, a process no instance supervises (left by an
// interrupted operation of an earlier daemon), as a stop would: SIGTERM, kill timeout, SIGKILL.
// It does nothing unless pid is still the process that started at start.
func StopOrphan(pid int, start uint64, timeout time.Duration) {
	if !Alive(pid, start) {
		return
	}
	syscall.Kill(-pid, syscall.SIGTERM)
	if !waitGroupGone(pid, time.Now().Add(timeout)) {
		syscall.Kill(-pid, syscall.SIGKILL)
		waitGroupGone(pid, time.Now().Add(2*time.Second))
	}
}
