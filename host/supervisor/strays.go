package supervisor

import (
	"fmt"
	"sync"
	"syscall"
	"time"
)

// A log writer exits once every process holding its pipes has closed them. A stop waits for
// that only writerWait: a process outside the instance may hold the pipes, or the machine may
// be slow (CI saw a writer still there when its daemon had exited, left behind by `kill`).
// Writers that outlive the wait are strays; the daemon waits for them, and kills what is left,
// before it exits, so that nothing of its home outlives it.

// writerProc is a running log writer.
type writerProc struct {
	exited <-chan struct{}
	reapGuard
}

var strays = struct {
	sync.Mutex
	set map[*writerProc]struct{}
}{set: map[*writerProc]struct{}{}}

// addStray records w until it exits.
func addStray(w *writerProc) {
	strays.Lock()
	strays.set[w] = struct{}{}
	strays.Unlock()
	go func() {
		<-w.exited
		strays.Lock()
		delete(strays.set, w)
		strays.Unlock()
	}()
}

// AwaitStrayWriters waits up to limit for the log writers that outlived their instance's stop,
// then kills those still there (and waits a moment for them to be reaped). It returns what
// it had to kill, for the daemon's log.
func AwaitStrayWriters(limit time.Duration) error {
	strays.Lock()
	left := make([]*writerProc, 0, len(strays.set))
	for w := range strays.set {
		left = append(left, w)
	}
	strays.Unlock()
	timeout := time.After(limit)
	expired, killed := false, 0
	for _, w := range left {
		if !expired {
			select {
			case <-w.exited:
				continue
			case <-timeout:
				expired = true
			}
		}
		select {
		case <-w.exited:
			continue
		default:
		}
		w.signal(syscall.SIGKILL)
		killed++
		select {
		case <-w.exited:
		case <-time.After(2 * time.Second):
		}
	}
	if killed > 0 {
		return fmt.Errorf("%d log writer(s) still ran %s after their instances had stopped (a process outside an instance held its output); killed them", killed, limit)
	}
	return nil
}
