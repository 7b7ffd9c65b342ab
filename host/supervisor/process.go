package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/pmdaemon/pmdaemon/host/cgroup"
	"github.com/pmdaemon/pmdaemon/host/logs"
	"golang.org/x/sys/unix"
)

// The process side of a loop: spawning into the instance's cgroup or process group, stopping
// the whole of it (SIGTERM, kill timeout, SIGKILL), and clearing what an exited process left.
// Only the loop's goroutine calls these.

// running is a live process: its pid (also its process group id), its exit, and the daemon's
// end of its IPC channel (nil without one).
type running struct {
	pid     int
	started time.Time
	exited  <-chan int
	// writer is the process's log writer, nil without one.
	writer *writerProc
	ipc    *ipcChannel
}

// release closes what the daemon holds of a process that is gone or being replaced.
func (p *running) release() {
	if p != nil {
		p.ipc.close()
	}
}

// writerWait bounds how long a stop waits for the log writer to write the last lines.
const writerWait = 2 * time.Second

// waitWriter waits until p's log writer has written what p's processes wrote (they are all
// gone: it reads to the end of its pipes and exits), so that a stop answers with the last
// lines in the files.
func (l *Loop) waitWriter(p *running) {
	if p.writer == nil {
		return
	}
	select {
	case <-p.writer.exited:
	case <-time.After(writerWait):
		l.warn(fmt.Sprintf("the log writer of %s[%d] still runs %s after its processes ended (a process outside the instance holds its output, or the machine is slow)", l.spec.App, l.spec.Index, writerWait))
		addStray(p.writer)
	}
}

// clearLeftovers kills what an exited instance left behind: its whole cgroup, or in
// process-group mode its process group (unless the pid was a stranger's already).
func (l *Loop) clearLeftovers(pid, code int) {
	if l.spec.Cgroup != "" {
		l.warnErr(cgroup.KillAll(l.spec.Cgroup, 2*time.Second))
		return
	}
	if pid > 0 && code != exitNotOurs {
		// Wait for them to be gone: one may still hold the instance's port.
		l.signalAll(pid, syscall.SIGKILL)
		l.waitGroupGone(pid)
	}
}

// waitGroupGone waits up to two seconds for process group pgid to be gone; what is left after
// that is warned of.
func (l *Loop) waitGroupGone(pgid int) {
	if !waitGroupGone(pgid, time.Now().Add(2*time.Second)) {
		l.warn(fmt.Sprintf("process group %d of %s[%d] still has processes 2s after SIGKILL", pgid, l.spec.App, l.spec.Index))
	}
}

func (l *Loop) warn(msg string) {
	if l.spec.Warn != nil {
		l.spec.Warn(msg)
	}
}

func (l *Loop) warnErr(err error) {
	if err != nil {
		l.warn(fmt.Sprintf("%s[%d]: %v", l.spec.App, l.spec.Index, err))
	}
}

// errStopped is a spawn given up because the instance was told to stop while the spawn waited
// for a slot of the spawn gate.
var errStopped = errors.New("stopped before it was spawned")

// spawn starts a process through the spawn gate. The wait for a slot ends at a stop (with
// errStopped, nothing started), so a stop while the gate is full does not start a process only
// to stop it; the state update and the notify callback come after the slot is given back, so
// a slow callback does not hold up other instances' spawns.
func (l *Loop) spawn() (*running, error) {
	leave, err := enterCtx(l.stopCtx, spawnGate)
	if err != nil {
		return nil, errStopped
	}
	s, err := l.launch()
	leave() // after launch returned: every descriptor it opened for the spawn is closed
	if err != nil {
		return nil, err
	}
	if s.startErr != nil {
		// Without it a later daemon cannot tell this process from another with its pid, and
		// will not take it back (it restarts it instead).
		l.warnErr(fmt.Errorf("start time of pid %d unknown: %w", s.p.pid, s.startErr))
	}
	p := s.p
	l.update(func(st *State) {
		st.Status, st.Pid, st.PidStart, st.StartedAt = Online, p.pid, s.pidStart, p.started
		st.Ready, st.StatusText, st.AppStopping = false, "", false
	})
	if s.ipc != nil {
		p.ipc = l.readIPC(s.ipc, p.pid) // after the state has the pid: a "ready" is taken for this process
	}
	return p, nil
}

// launched is what launch started: the process, the daemon's end of its IPC channel (nil
// without one), and its start time or why it could not be read.
type launched struct {
	p        *running
	ipc      *os.File
	pidStart uint64
	startErr error
}

// launch opens the logs and starts the process (and its log writer); the caller holds a slot
// of the spawn gate, and everything launch opens but what the process keeps is closed when it
// returns.
func (l *Loop) launch() (launched, error) {
	out, err := openLog(l.spec.OutLog)
	if err != nil {
		return launched{}, err
	}
	defer out.Close()
	errf := out
	if l.spec.ErrLog != l.spec.OutLog {
		if errf, err = openLog(l.spec.ErrLog); err != nil {
			return launched{}, err
		}
		defer errf.Close()
	}
	var writer *writerProc
	argv := l.spec.Argv
	if l.spec.Listener != nil {
		argv = withListenPid(argv)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = l.spec.Dir
	if l.spec.Listener != nil {
		cmd.ExtraFiles = []*os.File{l.spec.Listener} // fd 3; every other fd of ours is close-on-exec
	}
	cmd.Env = l.spec.Env
	var ipc *os.File // the daemon's end of the IPC channel
	if l.spec.IPC {
		ours, theirs, err := newIPC()
		if err != nil {
			return launched{}, err
		}
		defer theirs.Close() // the child has its copy once it has started
		ipc = ours
		cmd.ExtraFiles = append(cmd.ExtraFiles, theirs)
		cmd.Env = ipcEnv(cmd.Env, 2+len(cmd.ExtraFiles))
	}
	cmd.Stdout = out
	cmd.Stderr = errf
	if l.spec.LogWriter != nil {
		// The app writes into pipes the log writer reads; the writer is started first, so
		// that output the app writes at once has a reader, and an app that cannot start
		// leaves a writer that sees the end of its input and exits.
		outW, errW, w, err := l.startLogWriter(out, errf)
		if err != nil {
			return launched{}, err
		}
		writer = w
		defer outW.Close()
		defer errW.Close()
		cmd.Stdout, cmd.Stderr = outW, errW
	}
	pidfd := -1
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd}
	if l.spec.Cgroup != "" {
		fd, err := cgroup.Open(l.spec.Cgroup)
		if err != nil {
			return launched{}, err
		}
		defer unix.Close(fd)
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	}
	if err := cmd.Start(); err != nil {
		if ipc != nil {
			ipc.Close()
		}
		return launched{}, fmt.Errorf("cannot start %s: %w", l.spec.Argv[0], err)
	}
	pid := cmd.Process.Pid
	exited := waitChild(cmd, pidfd, nil)
	start, startErr := StartTime(pid)
	return launched{
		p:        &running{pid: pid, started: time.Now(), exited: exited, writer: writer},
		ipc:      ipc,
		pidStart: start,
		startErr: startErr,
	}, nil
}

// startLogWriter starts the log writer of a process about to be spawned, writing to out and
// errf (and the spec's combined log), and returns the write ends of the pipes it reads,
// for the process's stdout and stderr. The writer lives outside the instance's cgroup and
// process group, so no kill of the instance cuts off lines still in the pipes: it exits
// once every process holding the write ends has closed them and it wrote what they wrote. It
// is reaped here; after a daemon restart, by init.
func (l *Loop) startLogWriter(out, errf *os.File) (outW, errW *os.File, writer *writerProc, err error) {
	w := l.spec.LogWriter
	files := []*os.File{nil, nil, out, errf}
	var pipes []*os.File // every pipe end, closed here but the write ends returned
	defer func() {
		for _, p := range pipes {
			if err != nil || (p != outW && p != errW) {
				p.Close()
			}
		}
	}()
	for i := range 2 {
		r, wr, perr := os.Pipe()
		if perr != nil {
			return nil, nil, nil, fmt.Errorf("cannot make the pipe to the log writer: %w", perr)
		}
		pipes = append(pipes, r, wr)
		files[i] = r
	}
	if w.Combined != "" {
		c, cerr := openLog(w.Combined)
		if cerr != nil {
			return nil, nil, nil, cerr
		}
		defer c.Close()
		files = append(files, c)
	}
	cmd := exec.Command(w.Argv[0], w.Argv[1:]...)
	cmd.ExtraFiles = files // fds 3, 4: the pipes; 5, 6: out and err; 7: the combined log
	cmd.Env = w.Env
	cmd.Dir = "/"
	pidfd := -1
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, fmt.Errorf("cannot start the log writer %s: %w", w.Argv[0], err)
	}
	exited := make(chan struct{})
	proc := &writerProc{exited: exited, pgid: cmd.Process.Pid}
	writerExited := waitChild(cmd, pidfd, &proc.reapGuard)
	go func() {
		<-writerExited
		close(exited)
	}()
	return pipes[1], pipes[3], proc, nil
}

// listenPidShim sets LISTEN_PID to the shell's own pid, which the exec keeps for the app: the
// socket-activation protocol wants the pid of the process that reads it, which Go's exec cannot
// know before it forks. "$0" "$@" are the app's argv, passed as words, never re-parsed.
const listenPidShim = `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`

// withListenPid runs argv through the shim.
func withListenPid(argv []string) []string {
	return append([]string{"/bin/sh", "-c", listenPidShim}, argv...)
}

// killGroup sends SIGTERM to the instance's processes (its cgroup, or its process group), gives
// them KillTimeout to go (leader and every other member), then SIGKILLs what is left. It
// returns the leader's exit code.
func (l *Loop) killGroup(p *running) int {
	if p.pid <= 0 {
		return <-p.exited
	}
	select {
	case code := <-p.exited:
		// It has just exited on its own; clear what it left as for a stop.
		l.clearLeftovers(p.pid, code)
		l.waitWriter(p)
		return code
	default:
	}
	deadline := time.Now().Add(l.spec.KillTimeout)
	messaged := l.spec.ShutdownMessage && p.ipc.sendShutdown()
	if !messaged {
		l.signalAll(p.pid, syscall.SIGTERM)
	}
	code := 0
	killed := false
	t := time.NewTimer(l.spec.KillTimeout)
	select {
	case code = <-p.exited:
		t.Stop()
		if messaged {
			// The message went to the main process alone; the rest of the instance is told
			// as by any stop.
			l.signalAll(p.pid, syscall.SIGTERM)
		}
		if !l.waitAllGone(p.pid, deadline) {
			l.signalAll(p.pid, syscall.SIGKILL)
			killed = true
		}
	case <-t.C:
		l.signalAll(p.pid, syscall.SIGKILL)
		killed = true
		code = <-p.exited
	}
	defer l.waitWriter(p)
	if l.spec.Cgroup == "" {
		l.waitGroupGone(p.pid)
		return code
	}
	l.warnErr(cgroup.KillAll(l.spec.Cgroup, 2*time.Second))
	if killed {
		l.warnErr(cgroup.Discard(l.spec.Cgroup)) // a cgroup killed through cgroup.kill is not reused
	}
	return code
}

// signalAll signals every process of the instance: the cgroup's members (SIGKILL through
// cgroup.kill, which also catches processes forked meanwhile), or the process group.
func (l *Loop) signalAll(pid int, sig syscall.Signal) {
	switch {
	case l.spec.Cgroup == "":
		if err := syscall.Kill(-pid, sig); err != nil && err != syscall.ESRCH { // ESRCH: all gone already
			l.warnErr(fmt.Errorf("cannot signal process group %d: %w", pid, err))
		}
	case sig == syscall.SIGKILL:
		l.warnErr(cgroup.Kill(l.spec.Cgroup))
	default:
		cgroup.Signal(l.spec.Cgroup, sig)
	}
}

// waitAllGone polls until no process of the instance is left, or the deadline passes.
func (l *Loop) waitAllGone(pid int, deadline time.Time) bool {
	if l.spec.Cgroup != "" {
		return cgroup.WaitEmpty(l.spec.Cgroup, deadline)
	}
	return waitGroupGone(pid, deadline)
}

// openLog opens an instance's log for append as every log open does (host/logs): a symbolic
// link or a non-regular file planted at the path, or a directory other users may write in, is
// refused rather than followed.
func openLog(path string) (*os.File, error) {
	return logs.OpenAppend(path)
}
