package supervisor

import (
	"fmt"
	"slices"
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
	pgid   int // its process group (it leads one): what a kill must see gone
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
// then kills those still there (SIGKILL to each one's process group, so that a writer's own
// children go too) and waits a moment for them to be reaped. The error, for the daemon's log,
// says how many were killed and how many would not go.
func AwaitStrayWriters(limit time.Duration) error {
	strays.Lock()
	left := make([]*writerProc, 0, len(strays.set))
	for w := range strays.set {
		left = append(left, w)
	}
	strays.Unlock()
	timeout := time.After(limit)
	var still []*writerProc
	for i, w := range left {
		select {
		case <-w.exited:
			continue
		case <-timeout:
			still = append(still, left[i:]...)
		}
		break
	}
	still = slices.DeleteFunc(still, func(w *writerProc) bool { return isClosed(w.exited) })
	for _, w := range still {
		w.signalGroup(syscall.SIGKILL)
	}
	// A member of the group may take a moment more than its leader to die: the whole group
	// must be gone, or nothing but zombies, before the daemon exits.
	killed, stuck := 0, 0
	grace := time.Now().Add(2 * time.Second)
	for _, w := range still {
		if closedBy(w.exited, grace) && waitGroupGone(w.pgid, grace) {
			killed++
		} else {
			stuck++
		}
	}
	switch {
	case stuck > 0:
		return fmt.Errorf("%d log writer(s) outlived their instances' stop and %s of shutdown; killed %d, %d still there 2s after SIGKILL", len(still), limit, killed, stuck)
	case killed > 0:
		return fmt.Errorf("%d log writer(s) outlived their instances' stop (a process outside an instance held its output, or the machine was slow) and %s of shutdown; killed them", killed, limit)
	}
	return nil
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// closedBy waits until c is closed (true) or deadline passes.
func closedBy(c <-chan struct{}, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-c:
		return true
	case <-t.C:
		return isClosed(c)
	}
}
