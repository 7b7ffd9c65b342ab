// Package supervisor runs one instance of an app: it spawns the process in its own process
// group with its output going straight to its log files, restarts it by the RestartPolicy, and
// stops the whole group (SIGTERM, kill timeout, SIGKILL) so that nothing is left behind.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
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
	// Warn, when set, is told what the loop could not do and went on without (a process that
	// could not be signalled, a group or cgroup that would not empty), for the daemon's log.
	Warn func(msg string)
	// Listener, when set, is the listening socket the daemon holds for the instance: every
	// process gets it as fd 3 with LISTEN_PID set to its own pid (systemd's socket
	// activation; the rest of the LISTEN_ variables are in Env).
	Listener *os.File
	// Watchdog, when positive, restarts a process that sends no WATCHDOG=1 for that long.
	Watchdog time.Duration
	// LogWriter, when set, puts pmdaemon's log writer between each process and its log
	// files (lines stamped, JSON, a combined log); nil: the process writes into them itself.
	LogWriter *LogWriterSpec
	// IPC gives every process PM2's IPC channel (NODE_CHANNEL_FD; ipc.go): process.send works
	// in node, and process.send('ready') makes the process ready.
	IPC bool
	// ShutdownMessage stops a process by sending it "shutdown" on its IPC channel instead of
	// SIGTERM (PM2's shutdown_with_message); the kill timeout and SIGKILL follow as for a signal.
	ShutdownMessage bool
	// OnHealth, when set, is told every health check's result once the loop has judged it
	// (for metrics and events). It runs on the loop's goroutine and must not block.
	OnHealth func(HealthReport)
}

// LogWriterSpec is how to run the log writer (host/logs, stamp.go) for an instance.
type LogWriterSpec struct {
	// Argv runs it: the pmdaemon binary and logs.WriterArg, then its configuration.
	Argv []string
	// Combined is the log_file that gets both streams, "" for none.
	Combined string
	// Env is its environment.
	Env []string
}

// HealthReport is one health check's result: whether it passed, how long it took, what it
// said when it failed, and the instance's health once it was counted.
type HealthReport struct {
	ID     int // the instance's id now
	OK     bool
	Took   time.Duration
	Error  string
	Health string
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
	// Ready is set when the running process sent READY=1 to NOTIFY_SOCKET or "ready" on its IPC
	// channel; StatusText is the last STATUS= it sent. Both start empty with every process.
	Ready      bool
	StatusText string
	// AppStopping is set when the process sent STOPPING=1: it is shutting down of its own
	// accord, and no wait takes it for ready.
	AppStopping bool
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

// Loop is the supervising loop of one process: its goroutine spawns the process, watches it,
// restarts it by the policy and stops it. Only that goroutine touches the process; others read
// State, wait on Changed, and ask for a Stop or a Restart.
type Loop struct {
	spec    Spec
	id      atomic.Int64
	notify  func(Change)
	mu      sync.Mutex
	st      State
	changed chan struct{} // closed (and replaced) at every change of st; under mu
	// stopCtx is cancelled by Stop; stopCh is its Done channel, for the loop's selects, and the
	// context for the waits that take one (a slot of the spawn or check gate).
	stopCtx    context.Context
	cancelStop context.CancelFunc
	stopCh     <-chan struct{}
	kickCh     chan string   // restart requests from the daemon (memory limit), with the reason
	pingCh     chan struct{} // WATCHDOG=1 from the running process
	trigCh     chan struct{} // WATCHDOG=trigger from the running process
	done       chan struct{}
	spawned    chan struct{} // closed after the first spawn attempt or the adoption
	spawnOne   sync.Once

	// Owned by the loop's goroutine alone.
	proc *running // the process now running; nil between two
	hc   *checker // its health checker; nil without a check or between processes
	bo   backoff
	wd   watchdog
}

// Start begins supervising. restarts carries the count over from an earlier incarnation. With
// adopt set, the loop watches that process instead of spawning one. notify is called after
// every change of state, from the loop's goroutine; it must not block.
func Start(spec Spec, restarts int, adopt *Adopt, notify func(Change)) *Loop {
	l := &Loop{
		spec:    spec,
		notify:  notify,
		st:      State{Status: Starting, Restarts: restarts},
		changed: make(chan struct{}),
		kickCh:  make(chan string, 1),
		pingCh:  make(chan struct{}, 1),
		trigCh:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		spawned: make(chan struct{}),
	}
	l.stopCtx, l.cancelStop = context.WithCancel(context.Background())
	l.stopCh = l.stopCtx.Done()
	l.id.Store(int64(spec.ID))
	go l.run(adopt)
	return l
}

// SetID renames the loop for its reports: a graceful reload hands the old instance's id to its
// replacement.
func (l *Loop) SetID(id int) { l.id.Store(int64(id)) }

// ID is the id the instance goes by now.
func (l *Loop) ID() int { return int(l.id.Load()) }

// Spec returns the loop's spec.
func (l *Loop) Spec() Spec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spec
}

// State returns a snapshot.
func (l *Loop) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

// Watch returns a snapshot and a channel closed at the next change after it (health included),
// so a caller waiting for a condition wakes when it may have become true, without polling.
func (l *Loop) Watch() (State, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st, l.changed
}

// Stop stops the process group and the supervision, and returns when both are done.
func (l *Loop) Stop() {
	l.cancelStop() // idempotent
	<-l.done
}

// Restart asks the loop to replace the running process (stopped as by Stop, then started again
// at once), counting a restart and recording reason. It does not wait; a request while one is
// pending is dropped.
func (l *Loop) Restart(reason string) {
	select {
	case l.kickCh <- reason:
	default:
	}
}

// Spawned is closed once the first process has been started (or failed to start, or was
// adopted), so a caller can report a pid.
func (l *Loop) Spawned() <-chan struct{} { return l.spawned }

func (l *Loop) markSpawned() { l.spawnOne.Do(func() { close(l.spawned) }) }

// Done is closed when supervision has ended.
func (l *Loop) Done() <-chan struct{} { return l.done }

// update changes the state, wakes the watchers and tells notify.
func (l *Loop) update(f func(*State)) {
	l.mu.Lock()
	old := l.st
	f(&l.st)
	now := l.st
	l.wakeLocked()
	l.mu.Unlock()
	if l.notify != nil {
		l.notify(Change{Spec: l.spec, ID: int(l.id.Load()), Old: old, New: now})
	}
}

// wakeLocked wakes every Watch caller; l.mu must be held.
func (l *Loop) wakeLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// next is what the loop does after handling an event.
type next bool

const (
	carryOn next = false
	over    next = true
)

// run is the loop: make sure a process runs, then hand the next event to its handler.
func (l *Loop) run(adopt *Adopt) {
	defer close(l.done)
	defer l.markSpawned()
	defer l.stopChecks()
	l.bo = backoff{unstable: l.spec.Unstable}
	l.mu.Lock()
	l.st.Unstable = l.bo.unstable
	l.mu.Unlock()
	if adopt != nil {
		l.proc = &running{pid: adopt.Pid, started: adopt.StartedAt, exited: watchPid(adopt.Pid, adopt.PidStart)}
		l.update(func(s *State) {
			s.Status, s.Pid, s.PidStart, s.StartedAt = Online, adopt.Pid, adopt.PidStart, adopt.StartedAt
		})
	}
	first := adopt == nil // the operation that launches the loop has checked the first spawn
	for {
		if l.proc == nil {
			if !first && l.spec.BeforeSpawn != nil && l.checkRespawn() == over {
				return
			}
			if l.proc = l.spawnOrFail(); l.proc == nil {
				l.end() // stopped while it waited for a slot to spawn: nothing was started
				return
			}
		}
		first = false
		l.markSpawned()
		l.startChecks()
		var then next
		select {
		case r := <-l.hc.resultsCh():
			then = l.onHealth(r)
		case <-l.pingCh:
			l.wd.arm(l.spec.Watchdog)
		case <-l.wd.expired():
			then = l.onWatchdog(fmt.Sprintf("watchdog: no WATCHDOG=1 within %s", l.spec.Watchdog))
		case <-l.trigCh:
			then = l.onWatchdog("watchdog: the app asked for a restart (WATCHDOG=trigger)")
		case code := <-l.proc.exited:
			then = l.onExit(code)
		case reason := <-l.kickCh:
			then = l.onKick(reason)
		case <-l.stopCh:
			then = l.onStop()
		}
		if then == over {
			return
		}
	}
}

// spawnOrFail starts a process; a spawn failure counts as a run of zero length that exited at
// once, so the policy bounds the retries. It returns nil when a stop came while the spawn
// waited for a slot: no process was started, and no failure is counted.
func (l *Loop) spawnOrFail() *running {
	p, err := l.spawn()
	if err == nil {
		return p
	}
	if errors.Is(err, errStopped) {
		return nil
	}
	ch := make(chan int, 1)
	ch <- -1
	l.update(func(s *State) { s.Reason = err.Error() })
	return &running{started: time.Now(), exited: ch}
}

// startChecks starts the health checker and the watchdog of a running process that has none
// yet.
func (l *Loop) startChecks() {
	if l.hc == nil && l.proc.pid > 0 && l.spec.Health != nil {
		l.update(func(s *State) { s.Health, s.HealthFails, s.HealthError = HealthChecking, 0, "" })
		l.hc = l.startChecker()
	}
	if !l.wd.armed() && l.proc.pid > 0 {
		l.wd.arm(l.spec.Watchdog)
	}
}

func (l *Loop) stopChecks() {
	l.hc.close()
	l.hc = nil
	l.wd.disarm()
}

// onWatchdog ends a process that stopped sending WATCHDOG=1 or asked to be (WATCHDOG=trigger)
// and lets the restart policy decide what follows, as for a crash (systemd too counts a
// watchdog failure as one): an app that fails its watchdog at every start is paced and ends
// errored after max_restarts instead of being restarted in a busy loop.
func (l *Loop) onWatchdog(reason string) next {
	if l.proc.pid <= 0 {
		return carryOn
	}
	l.stopChecks()
	l.update(func(s *State) { s.Status, s.Reason = Stopping, reason })
	return l.onExit(l.killGroup(l.proc))
}

// onHealth records a check's result; a process the check condemns is replaced.
func (l *Loop) onHealth(r healthResult) next {
	reason := l.judge(r, l.proc.started)
	if l.spec.OnHealth != nil {
		l.spec.OnHealth(HealthReport{ID: l.ID(), OK: r.ok, Took: r.took, Error: r.msg, Health: l.State().Health})
	}
	if reason != "" {
		return l.replace(reason)
	}
	return carryOn
}

// onKick replaces the process at the daemon's request (memory limit).
func (l *Loop) onKick(reason string) next {
	if l.proc.pid <= 0 {
		return carryOn
	}
	return l.replace(reason)
}

// onStop is a stop request while a process runs (or has just failed to start).
func (l *Loop) onStop() next {
	l.stopChecks()
	return l.end()
}

// onExit handles the process's exit: by the policy, it is restarted (after its delay) or the
// loop parks, stopped or errored, until it is told to stop.
func (l *Loop) onExit(code int) next {
	l.stopChecks()
	proc := l.proc
	l.proc = nil
	proc.release()
	uptime := time.Since(proc.started)
	// Whatever the app left behind is orphaned now; a fresh process may follow.
	l.clearLeftovers(proc.pid, code)
	if l.spec.Policy.stopsOn(code) && proc.pid > 0 {
		l.update(func(s *State) {
			s.Status, s.Pid, s.PidStart, s.ExitCode = Stopped, 0, 0, code
			s.Reason = fmt.Sprintf("exited with code %d, one of stop_exit_codes: not restarted", code)
		})
		return l.parkUntilStop()
	}
	restart, delay := l.spec.Policy.decide(uptime, &l.bo)
	l.mu.Lock()
	l.st.Unstable = l.bo.unstable
	l.mu.Unlock()
	if !restart {
		final, reason := Stopped, ""
		if l.spec.Policy.Autorestart {
			final = Errored
			reason = l.spec.Policy.gaveUp(l.bo.unstable)
			if proc.pid <= 0 {
				reason += " (last attempt: " + l.State().Reason + ")"
			}
		} else if code != 0 {
			final = Errored
			reason = fmt.Sprintf("exited with code %d (autorestart off)", code)
		}
		l.update(func(s *State) {
			s.Status, s.Pid, s.PidStart, s.ExitCode = final, 0, 0, code
			if reason != "" {
				s.Reason = reason
			}
		})
		return l.parkUntilStop()
	}
	l.update(func(s *State) { s.Status, s.Pid, s.PidStart, s.ExitCode = WaitingRestart, 0, 0, code })
	if l.sleepUnlessStopped(delay) {
		return l.end()
	}
	// Counted and marked starting in one step: a state file written in between must not show
	// the restart counted while still waiting for it, or a daemon that dies then would have
	// the next one count it again.
	l.update(func(s *State) { s.Status, s.Restarts = Starting, s.Restarts+1 })
	return carryOn
}

// sleepUnlessStopped waits out delay and reports whether a stop came first (a stop already
// requested counts even with no delay).
func (l *Loop) sleepUnlessStopped(delay time.Duration) bool {
	if delay <= 0 {
		return l.stopPending()
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return false
	case <-l.stopCh:
		return true
	}
}

// parkUntilStop keeps a loop whose process will not run again (errored, or finished) until it
// is told to stop.
func (l *Loop) parkUntilStop() next {
	<-l.stopCh
	return l.end()
}

func (l *Loop) stopPending() bool {
	select {
	case <-l.stopCh:
		return true
	default:
		return false
	}
}

// end is the one way supervision ends: the process, if one runs, is stopped (SIGTERM, kill
// timeout, SIGKILL) and the loop is left stopped.
func (l *Loop) end() next {
	if l.proc == nil {
		l.update(func(s *State) { s.Status = Stopped })
		return over
	}
	l.update(func(s *State) { s.Status = Stopping })
	code := l.killGroup(l.proc)
	l.proc.release()
	l.proc = nil
	l.update(func(s *State) { s.Status, s.Pid, s.PidStart, s.ExitCode = Stopped, 0, 0, code })
	return over
}

// checkRespawn asks the spec's BeforeSpawn whether (and as what) the next process may start.
// A veto leaves the loop errored with the reason until it is stopped.
func (l *Loop) checkRespawn() next {
	spec, err := l.spec.BeforeSpawn(l.stopCh)
	if l.stopPending() {
		return l.end()
	}
	if err != nil {
		l.update(func(s *State) { s.Status, s.Pid, s.PidStart, s.Reason = Errored, 0, 0, err.Error() })
		return l.parkUntilStop()
	}
	if spec != nil {
		spec.BeforeSpawn = l.spec.BeforeSpawn
		l.mu.Lock()
		l.spec = *spec
		l.mu.Unlock()
	}
	return carryOn
}

// replace stops the process as a stop would, for a restart the daemon or a health check asked
// for; the loop then spawns a new process at once, unless a stop came meanwhile (no process is
// spawned only to be stopped at once).
func (l *Loop) replace(reason string) next {
	l.stopChecks()
	l.update(func(s *State) { s.Status = Stopping })
	code := l.killGroup(l.proc)
	l.proc.release()
	l.proc = nil
	l.update(func(s *State) {
		s.Status, s.Pid, s.PidStart, s.ExitCode, s.Restarts = WaitingRestart, 0, 0, code, s.Restarts+1
		s.Reason = reason
	})
	if l.stopPending() {
		return l.end()
	}
	return carryOn
}

// judge records a health result and returns why the process must be restarted, or "".
func (l *Loop) judge(r healthResult, started time.Time) string {
	h := l.spec.Health
	var restart string
	// Health is read live by list and not persisted: no need to notify anyone of it, but
	// whoever waits for readiness is woken.
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.wakeLocked()
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
	}(&l.st)
	return restart
}

// ResetRestarts sets the restart count shown to users back to zero (pmdaemon reset). The
// unstable-exit count that max_restarts is judged on is the policy's, and stays.
func (l *Loop) ResetRestarts() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.Restarts = 0
	l.wakeLocked()
}
