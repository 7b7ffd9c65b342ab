// Package supervisor runs one instance of an app: it spawns the process in its own process
// group with its output going straight to its log files, restarts it by the RestartPolicy, and
// stops the whole group (SIGTERM, kill timeout, SIGKILL) so that nothing is left behind.
package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pmdaemon/pmdaemon/host/cgroup"
	"github.com/pmdaemon/pmdaemon/host/logs"
)

// Status is what `list` shows for an instance.
type Status string

const (
	Starting       Status = "starting"
	Online         Status = "online"
	Stopping       Status = "stopping"
	Stopped        Status = "stopped"
	Errored        Status = "errored"
	WaitingRestart Status = "waiting-restart"
)

// Spec is everything an instance needs to run; it does not change during the instance's life.
type Spec struct {
	ID          int
	App         string
	Index       int
	Argv        []string
	Dir         string
	Env         []string
	OutLog      string
	ErrLog      string
	Policy      RestartPolicy
	KillTimeout time.Duration
	Port        int // the port the instance was given (PORT in Env), 0 for none; for reports only
	Health      *HealthSpec
	// Unstable is the count of consecutive unstable exits carried over from an earlier daemon,
	// so that a crash loop's max_restarts budget survives the daemon's own restart.
	Unstable int
	// Cgroup is the instance's cgroup v2 directory: every process is spawned into it and every
	// stop kills all of it. "" in process-group mode, where the process group is all there is.
	Cgroup string
	// BeforeSpawn, when set, is called before each automatic respawn (not the first spawn,
	// which the operation that launches the instance checks itself). It may veto the respawn
	// with the reason the instance then goes errored with (its port is held by a stranger), or
	// return the spec the next process runs with (another port of an auto: range). stop is
	// closed when the instance is being stopped, so the callback can give up waiting.
	BeforeSpawn func(stop <-chan struct{}) (*Spec, error)
}

// State is a snapshot of an instance, safe to copy.
type State struct {
	Status    Status
	Pid       int
	PidStart  uint64 // the process's start time, to tell it from a later process with its pid
	StartedAt time.Time
	Restarts  int
	Unstable  int // consecutive unstable exits, towards max_restarts
	ExitCode  int
	Reason    string // why it is errored or last restarted
	// Health is "" without a health check, else checking, healthy or unhealthy.
	Health      string
	HealthFails int    // consecutive failed checks
	HealthError string // what the last failed check said
}

// Adopt describes a process left running by an earlier daemon that this instance takes back.
type Adopt struct {
	Pid       int
	PidStart  uint64
	StartedAt time.Time
}

// Change is one state transition, reported to the notify callback in the order it happened.
type Change struct {
	Spec Spec
	// ID is the id the instance goes by now (SetID), which a graceful reload changes.
	ID       int
	Old, New State
}

// Instance supervises one process. Its goroutine owns the process; others read State.
type Instance struct {
	spec     Spec
	id       atomic.Int64
	notify   func(Change)
	mu       sync.Mutex
	st       State
	stopOnce sync.Once
	stopCh   chan struct{}
	kickCh   chan string // restart requests from the daemon (memory limit), with the reason
	done     chan struct{}
	spawned  chan struct{} // closed after the first spawn attempt or the adoption
	spawnOne sync.Once
}

// Start begins supervising. restarts carries the count over from an earlier incarnation. With
// adopt set, the instance watches that process instead of spawning one. notify is called after
// every change of state, from the instance's goroutine; it must not block.
func Start(spec Spec, restarts int, adopt *Adopt, notify func(Change)) *Instance {
	in := &Instance{
		spec:    spec,
		notify:  notify,
		st:      State{Status: Starting, Restarts: restarts},
		stopCh:  make(chan struct{}),
		kickCh:  make(chan string, 1),
		done:    make(chan struct{}),
		spawned: make(chan struct{}),
	}
	in.id.Store(int64(spec.ID))
	go in.run(adopt)
	return in
}

// SetID renames the instance for its reports: a graceful reload hands the old instance's id
// to its replacement.
func (in *Instance) SetID(id int) { in.id.Store(int64(id)) }

// Spec returns the instance's spec.
func (in *Instance) Spec() Spec {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.spec
}

// State returns a snapshot.
func (in *Instance) State() State {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.st
}

// Stop stops the process group and the supervision, and returns when both are done.
func (in *Instance) Stop() {
	in.stopOnce.Do(func() { close(in.stopCh) })
	<-in.done
}

// Restart asks the supervisor to replace the running process (stopped as by Stop, then
// started again at once), counting a restart and recording reason. It does not wait; a request
// while one is pending is dropped.
func (in *Instance) Restart(reason string) {
	select {
	case in.kickCh <- reason:
	default:
	}
}

// Spawned is closed once the first process has been started (or failed to start, or was
// adopted), so a caller can report a pid.
func (in *Instance) Spawned() <-chan struct{} { return in.spawned }

func (in *Instance) markSpawned() { in.spawnOne.Do(func() { close(in.spawned) }) }

// Done is closed when supervision has ended.
func (in *Instance) Done() <-chan struct{} { return in.done }

func (in *Instance) update(f func(*State)) {
	in.mu.Lock()
	old := in.st
	f(&in.st)
	now := in.st
	in.mu.Unlock()
	if in.notify != nil {
		in.notify(Change{Spec: in.spec, ID: int(in.id.Load()), Old: old, New: now})
	}
}

// running is a live process: its pid (also its process group id) and its exit.
type running struct {
	pid     int
	started time.Time
	exited  <-chan int
}

func (in *Instance) run(adopt *Adopt) {
	defer close(in.done)
	defer in.markSpawned()
	bo := backoff{unstable: in.spec.Unstable}
	in.mu.Lock()
	in.st.Unstable = bo.unstable
	in.mu.Unlock()
	var proc *running
	var hc *checker
	stopChecks := func() {
		hc.close()
		hc = nil
	}
	defer func() { stopChecks() }()
	if adopt != nil {
		proc = &running{pid: adopt.Pid, started: adopt.StartedAt, exited: watchPid(adopt.Pid, adopt.PidStart)}
		in.update(func(s *State) {
			s.Status, s.Pid, s.PidStart, s.StartedAt = Online, adopt.Pid, adopt.PidStart, adopt.StartedAt
		})
	}
	respawn := adopt != nil
	for {
		if proc == nil && respawn && in.spec.BeforeSpawn != nil {
			if done := in.checkRespawn(); done {
				return
			}
		}
		respawn = true
		if proc == nil {
			p, err := in.spawn()
			if err != nil {
				// A spawn failure counts as a run of zero length, so the policy bounds the retries.
				ch := make(chan int, 1)
				ch <- -1
				p = &running{started: time.Now(), exited: ch}
				in.update(func(s *State) { s.Reason = err.Error() })
			}
			proc = p
		}
		in.markSpawned()
		if hc == nil && proc.pid > 0 && in.spec.Health != nil {
			in.update(func(s *State) { s.Health, s.HealthFails, s.HealthError = HealthChecking, 0, "" })
			hc = in.startChecker()
		}
		select {
		case r := <-hc.resultsCh():
			if reason := in.judge(r, proc.started); reason != "" {
				stopChecks()
				in.replace(proc, reason)
				proc = nil
				if in.stopRequested() {
					return
				}
			}
		case code := <-proc.exited:
			stopChecks()
			uptime := time.Since(proc.started)
			// Whatever the app left behind is orphaned now; a fresh instance may follow.
			in.clearLeftovers(proc.pid, code)
			restart, delay := in.spec.Policy.decide(uptime, &bo)
			in.mu.Lock()
			in.st.Unstable = bo.unstable
			in.mu.Unlock()
			if !restart {
				final := Stopped
				reason := ""
				if in.spec.Policy.Autorestart {
					final = Errored
					reason = in.spec.Policy.gaveUp(bo.unstable)
					if proc.pid <= 0 {
						reason += " (last attempt: " + in.State().Reason + ")"
					}
				} else if code != 0 {
					final = Errored
					reason = fmt.Sprintf("exited with code %d (autorestart off)", code)
				}
				in.update(func(s *State) {
					s.Status, s.Pid, s.PidStart, s.ExitCode = final, 0, 0, code
					if reason != "" {
						s.Reason = reason
					}
				})
				<-in.stopCh
				in.update(func(s *State) { s.Status = Stopped })
				return
			}
			in.update(func(s *State) { s.Status, s.Pid, s.PidStart, s.ExitCode = WaitingRestart, 0, 0, code })
			proc = nil
			if delay > 0 {
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-in.stopCh:
					t.Stop()
					in.update(func(s *State) { s.Status = Stopped })
					return
				}
			} else {
				select {
				case <-in.stopCh:
					in.update(func(s *State) { s.Status = Stopped })
					return
				default:
				}
			}
			// Counted and marked starting in one step: a state file written in between must
			// not show the restart counted while still waiting for it, or a daemon that dies
			// then would have the next one count it again.
			in.update(func(s *State) { s.Status, s.Restarts = Starting, s.Restarts+1 })
		case reason := <-in.kickCh:
			if proc.pid <= 0 {
				continue
			}
			stopChecks()
			in.replace(proc, reason)
			proc = nil
			if in.stopRequested() {
				return
			}
		case <-in.stopCh:
			stopChecks()
			in.update(func(s *State) { s.Status = Stopping })
			code := in.killGroup(proc)
			in.update(func(s *State) { s.Status, s.Pid, s.PidStart, s.ExitCode = Stopped, 0, 0, code })
			return
		}
	}
}

// checkRespawn asks the spec's BeforeSpawn whether (and as what) the next process may start.
// A veto makes the instance errored with the reason until it is stopped; it returns true when
// supervision is over.
func (in *Instance) checkRespawn() bool {
	next, err := in.spec.BeforeSpawn(in.stopCh)
	if in.stopRequested() {
		return true
	}
	if err != nil {
		in.update(func(s *State) { s.Status, s.Pid, s.PidStart, s.Reason = Errored, 0, 0, err.Error() })
		<-in.stopCh
		in.update(func(s *State) { s.Status = Stopped })
		return true
	}
	if next != nil {
		next.BeforeSpawn = in.spec.BeforeSpawn
		in.mu.Lock()
		in.spec = *next
		in.mu.Unlock()
	}
	return false
}

// stopRequested reports (and records) a stop that came while the process was being replaced,
// so that no new process is spawned only to be stopped at once.
func (in *Instance) stopRequested() bool {
	select {
	case <-in.stopCh:
		in.update(func(s *State) { s.Status = Stopped })
		return true
	default:
		return false
	}
}

// replace stops proc as a stop would, for a restart the daemon or a health check asked for;
// the loop then spawns a new process at once.
func (in *Instance) replace(proc *running, reason string) {
	in.update(func(s *State) { s.Status = Stopping })
	code := in.killGroup(proc)
	in.update(func(s *State) {
		s.Status, s.Pid, s.PidStart, s.ExitCode, s.Restarts = WaitingRestart, 0, 0, code, s.Restarts+1
		s.Reason = reason
	})
}

// judge records a health result and returns why the process must be restarted, or "".
func (in *Instance) judge(r healthResult, started time.Time) string {
	h := in.spec.Health
	var restart string
	// Health is read live by list and not persisted: no need to notify anyone of it.
	in.mu.Lock()
	defer in.mu.Unlock()
	func(s *State) {
		if r.ok {
			s.Health, s.HealthFails, s.HealthError = HealthHealthy, 0, ""
			return
		}
		s.HealthError = r.msg
		if s.Health == HealthChecking && time.Since(started) < h.Grace {
			return // still starting: failures count once the grace period is over
		}
		s.HealthFails++
		if s.HealthFails < h.Retries {
			return
		}
		s.Health = HealthUnhealthy
		if h.Restart {
			restart = fmt.Sprintf("unhealthy: %d consecutive failed checks (last: %s)", s.HealthFails, r.msg)
		}
	}(&in.st)
	return restart
}

// clearLeftovers kills what an exited instance left behind: its whole cgroup, or in
// process-group mode its process group (unless the pid was a stranger's already).
func (in *Instance) clearLeftovers(pid, code int) {
	if in.spec.Cgroup != "" {
		cgroup.KillAll(in.spec.Cgroup, 2*time.Second)
		return
	}
	if pid > 0 && code != exitNotOurs {
		// Wait for them to be gone: one may still hold the instance's port.
		syscall.Kill(-pid, syscall.SIGKILL)
		waitGroupGone(pid, time.Now().Add(2*time.Second))
	}
}

func (in *Instance) spawn() (*running, error) {
	out, err := openLog(in.spec.OutLog)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	errf := out
	if in.spec.ErrLog != in.spec.OutLog {
		if errf, err = openLog(in.spec.ErrLog); err != nil {
			return nil, err
		}
		defer errf.Close()
	}
	cmd := exec.Command(in.spec.Argv[0], in.spec.Argv[1:]...)
	cmd.Dir = in.spec.Dir
	cmd.Env = in.spec.Env
	cmd.Stdout = out
	cmd.Stderr = errf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if in.spec.Cgroup != "" {
		fd, err := cgroup.Open(in.spec.Cgroup)
		if err != nil {
			return nil, err
		}
		defer unix.Close(fd)
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", in.spec.Argv[0], err)
	}
	pid := cmd.Process.Pid
	start, _ := StartTime(pid)
	now := time.Now()
	exited := waitChild(cmd)
	in.update(func(s *State) {
		s.Status, s.Pid, s.PidStart, s.StartedAt = Online, pid, start, now
	})
	return &running{pid: pid, started: now, exited: exited}, nil
}

// killGroup sends SIGTERM to the instance's processes (its cgroup, or its process group), gives
// them KillTimeout to go (leader and every other member), then SIGKILLs what is left. It
// returns the leader's exit code.
func (in *Instance) killGroup(p *running) int {
	if p.pid <= 0 {
		return <-p.exited
	}
	select {
	case code := <-p.exited:
		// It has just exited on its own; clear what it left as for a stop.
		in.clearLeftovers(p.pid, code)
		return code
	default:
	}
	deadline := time.Now().Add(in.spec.KillTimeout)
	in.signalAll(p.pid, syscall.SIGTERM)
	code := 0
	killed := false
	t := time.NewTimer(in.spec.KillTimeout)
	select {
	case code = <-p.exited:
		t.Stop()
		if !in.waitAllGone(p.pid, deadline) {
			in.signalAll(p.pid, syscall.SIGKILL)
			killed = true
		}
	case <-t.C:
		in.signalAll(p.pid, syscall.SIGKILL)
		killed = true
		code = <-p.exited
	}
	if in.spec.Cgroup == "" {
		waitGroupGone(p.pid, time.Now().Add(2*time.Second))
		return code
	}
	cgroup.KillAll(in.spec.Cgroup, 2*time.Second)
	if killed {
		cgroup.Discard(in.spec.Cgroup) // a cgroup killed through cgroup.kill is not reused
	}
	return code
}

// signalAll signals every process of the instance: the cgroup's members (SIGKILL through
// cgroup.kill, which also catches processes forked meanwhile), or the process group.
func (in *Instance) signalAll(pid int, sig syscall.Signal) {
	switch {
	case in.spec.Cgroup == "":
		syscall.Kill(-pid, sig)
	case sig == syscall.SIGKILL:
		cgroup.Kill(in.spec.Cgroup)
	default:
		cgroup.Signal(in.spec.Cgroup, sig)
	}
}

// waitAllGone polls until no process of the instance is left, or the deadline passes.
func (in *Instance) waitAllGone(pid int, deadline time.Time) bool {
	if in.spec.Cgroup != "" {
		return cgroup.WaitEmpty(in.spec.Cgroup, deadline)
	}
	return waitGroupGone(pid, deadline)
}

// openLog opens an instance's log for append as every log open does (host/logs): a symbolic
// link or a non-regular file planted at the path, or a directory other users may write in, is
// refused rather than followed.
func openLog(path string) (*os.File, error) {
	return logs.OpenAppend(path)
}
