package supervisor

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// holdGate takes every slot of gate, so that whatever wants one next waits; release gives them
// back (once; also at the test's end).
func holdGate(t *testing.T, gate chan struct{}) (release func()) {
	t.Helper()
	return holdSlots(t, gate, cap(gate))
}

// holdSlots takes n slots of gate.
func holdSlots(t *testing.T, gate chan struct{}, n int) (release func()) {
	t.Helper()
	var once sync.Once
	held := 0
	release = func() {
		once.Do(func() {
			for range held {
				<-gate
			}
		})
	}
	t.Cleanup(release)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for held < n {
		if _, err := enterCtx(ctx, gate); err != nil {
			t.Fatalf("cannot take %d slots of the gate (%d taken): %v", n, held, err)
		}
		held++
	}
	return release
}

// waitBlockedIn polls until a goroutine is blocked on a channel (a gate's slot) inside function
// fn ("supervisor.(*Loop).spawn"), so that what a test does next comes while it waits.
func waitBlockedIn(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	poll(t, "a goroutine blocked in "+fn, func() bool {
		all := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(all, "\n\n") {
			head, _, _ := strings.Cut(g, "\n")
			blocked := strings.Contains(head, "[select") || strings.Contains(head, "[chan send")
			if blocked && strings.Contains(g, fn+"(") {
				return true
			}
		}
		return false
	})
}

// changeLog records every state change of a loop.
type changeLog struct {
	mu      sync.Mutex
	changes []Change
}

func (c *changeLog) add(ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.changes = append(c.changes, ch)
}

func (c *changeLog) since(n int) []Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Change(nil), c.changes[n:]...)
}

func (c *changeLog) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.changes)
}

// A stop while the instance waits for a slot of a full gate ends the wait at once: no process
// is started only to be stopped, and Stop does not wait for another instance to give a slot
// back.
func TestStopWhileWaitingForASlot(t *testing.T) {
	const spawner, checker = "supervisor.(*Loop).spawn", "supervisor.(*Loop).probe"
	restarting := RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: 0}
	tests := []struct {
		name   string
		gate   chan struct{}
		waiter string // the function that waits for the slot
		health *HealthSpec
		// toWait brings the loop, its gate held, to wait for a slot; nil: the gate is held
		// before the loop starts, so its first spawn waits.
		toWait func(t *testing.T, h *harness, l *Loop, first State)
	}{
		{name: "first spawn", gate: spawnGate, waiter: spawner},
		{name: "respawn after a restart request", gate: spawnGate, waiter: spawner,
			toWait: func(t *testing.T, h *harness, l *Loop, first State) {
				l.Restart("asked")
				h.wait(l, "the old process replaced", func(s State) bool { return s.Status == WaitingRestart && s.Restarts == 1 })
			}},
		{name: "respawn after an exit", gate: spawnGate, waiter: spawner,
			toWait: func(t *testing.T, h *harness, l *Loop, first State) {
				if err := syscall.Kill(first.Pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				h.wait(l, "the exit counted", func(s State) bool { return s.Status == Starting && s.Restarts == 1 })
			}},
		{name: "health check", gate: checkGate, waiter: checker,
			health: &HealthSpec{Argv: []string{"true"}, Interval: time.Second, Timeout: time.Second, Retries: 3},
			toWait: func(t *testing.T, h *harness, l *Loop, first State) {
				h.wait(l, "checking", func(s State) bool { return s.Health == HealthChecking })
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			var log changeLog
			spec := h.spec(restarting, 2*time.Second, "sleep", "600")
			spec.Health = tt.health
			var release func()
			if tt.toWait == nil {
				release = holdGate(t, tt.gate)
			}
			l := Start(spec, 0, nil, func(c Change) {
				log.add(c)
				select {
				case h.notify <- struct{}{}:
				default:
				}
			})
			t.Cleanup(l.Stop) // after release (cleanups run last first): a loop that waits ends
			held, firstPid := 0, 0
			if tt.toWait != nil {
				first := h.wait(l, "online", online)
				release = holdGate(t, tt.gate)
				held, firstPid = log.len(), first.Pid
				tt.toWait(t, h, l, first)
			}
			waitBlockedIn(t, tt.waiter)

			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				l.Stop()
			}()
			select {
			case <-stopped:
			case <-time.After(10 * time.Second):
				release() // so that the loop, and the test, can end
				<-stopped
				t.Fatalf("Stop waited for a slot of the gate: it returned only once the gate was released")
			}
			if st := l.State(); st.Status != Stopped || st.Pid != 0 {
				t.Fatalf("after stop: %+v; want stopped with no pid", st)
			}
			if tt.gate != spawnGate {
				return
			}
			for _, c := range log.since(held) {
				if c.New.Status == Online || (c.New.Pid != 0 && c.New.Pid != firstPid) {
					t.Fatalf("a process was started while the gate was held: %+v", c.New)
				}
			}
		})
	}
}

// The time a health check is reported to have taken is the check's own, not its wait for a
// slot of the check gate.
func TestHealthTookExcludesTheWaitForASlot(t *testing.T) {
	h := newHarness(t)
	spec := h.spec(RestartPolicy{Autorestart: true, MaxRestarts: 3, MinUptime: time.Second}, 2*time.Second, "sleep", "600")
	spec.Health = &HealthSpec{Argv: []string{"true"}, Interval: time.Hour, Timeout: 10 * time.Second, Retries: 3}
	reports := make(chan HealthReport, 1)
	spec.OnHealth = func(r HealthReport) {
		select {
		case reports <- r:
		default:
		}
	}
	release := holdGate(t, checkGate)
	h.start(spec, 0, nil)
	waitBlockedIn(t, "supervisor.(*Loop).probe")
	// Not a synchronisation (the check waits already): the wait for the slot is made long
	// enough to stand out beside the check itself.
	time.Sleep(400 * time.Millisecond)
	released := time.Now()
	release()
	var r HealthReport
	select {
	case r = <-reports:
	case <-time.After(15 * time.Second):
		t.Fatal("no health report")
	}
	since := time.Since(released)
	if !r.OK {
		t.Fatalf("check failed: %+v", r)
	}
	if r.Took <= 0 || r.Took > since {
		t.Fatalf("check took %s, reported %s after the slot was given: the wait for the slot was counted", r.Took, since)
	}
}

// A spawn gives its slot back before it tells anyone of the new process: a notify callback
// that is slow to return does not hold up other instances' spawns.
func TestSpawnGivesItsSlotBackBeforeNotify(t *testing.T) {
	holdSlots(t, spawnGate, cap(spawnGate)-1) // one slot left
	h := newHarness(t)
	entered, unblock := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow := Start(h.spec(RestartPolicy{}, 2*time.Second, "sleep", "600"), 0, nil, func(c Change) {
		if c.New.Status == Online {
			once.Do(func() {
				close(entered)
				<-unblock
			})
		}
	})
	t.Cleanup(slow.Stop)
	var unblockOnce sync.Once
	letGo := func() { unblockOnce.Do(func() { close(unblock) }) }
	t.Cleanup(letGo) // before slow.Stop
	select {
	case <-entered:
	case <-time.After(15 * time.Second):
		t.Fatal("the first instance never went online")
	}
	// The first instance's notify callback is stuck; the second instance wants the slot.
	other := h.start(h.spec(RestartPolicy{}, 2*time.Second, "sleep", "600"), 0, nil)
	select {
	case <-other.Spawned():
	case <-time.After(10 * time.Second):
		letGo() // before other.Stop, which would wait for the slot
		t.Fatal("a spawn waited for the slot another spawn kept while it told of its process")
	}
	if st := other.State(); !online(st) {
		t.Fatalf("second instance: %+v, want online", st)
	}
}
