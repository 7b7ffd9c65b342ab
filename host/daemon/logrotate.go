package daemon

import (
	"errors"
	"path/filepath"
	"sync"
	"time"

	"github.com/pmdaemon/pmdaemon/host/logs"
)

// rotateGap is the least time between two rounds of rotation checks set off by writes (see
// logs.Watcher). At 100 MB/s a log grows 1 MB in it, a tenth of the default log_max_size; what
// the app writes while the rotation runs (10 ms for 10 MB on tmpfs, 40 to 100 ms on ext4 under
// such a writer) comes on top, so a live log stays under 2 × log_max_size as long as rotations
// take less than log_max_size / rate. A chatty app costs the daemon at most 100 looks a second
// (a stat and a few opens each).
const rotateGap = 10 * time.Millisecond

// rotateFullLook is how often every log is looked at while inotify watches every log
// directory: a safety net only, since writes and names planted where a log was come as events.
// Looking at every log every 2 s cost a daemon with 4500 instances (9000 logs) about 5 % of a
// core, idle or not.
const rotateFullLook = 30 * time.Second

// rotateLoop rotates the instances' log files that have grown past their app's log_max_size.
// It looks at a file when inotify reports a write to it or a name that appears where it is (a
// link planted at its path; at most every rotateGap), at the logs an operation hands over, and
// at every file each tick, which also picks up apps added or removed. The tick is every
// rotateFullLook while every log directory is watched, every `every` when one cannot be (a
// kernel limit reached; daemon.log says so) or without inotify at all; an idle daemon wakes
// only for the tick. It runs on its own goroutine so that a big copy never delays
// metrics; apps write straight into their files and never wait for it (see package logs).
func (d *Daemon) rotateLoop(every time.Duration) {
	defer d.wg.Done()
	var written <-chan struct{}
	w, err := logs.NewWatcher(rotateGap)
	if err != nil {
		d.logger.Printf("log rotation cannot watch the logs for writes (%v): it checks them every %s only, and a log written fast grows past log_max_size in between", err, every)
	} else {
		defer w.Close()
		written = w.C()
	}
	files := map[string]logs.Rotator{}
	// added are the logs checkLogs handed over, kept until a refresh finds them among the apps'
	// (the operation that checked them has committed) or, for an operation that failed, for
	// handOverKeep. Keeping them a fixed few seconds lost the logs of an app still waiting to be
	// ready at the next tick: written, but not rotated until it was.
	type added struct {
		r     logs.Rotator
		until time.Time
	}
	extra := map[string]added{}
	failed := map[string]string{} // path -> the error last logged for it
	watchErr := ""
	dirs := map[string]bool{} // the directories of files, watched (or tried) at the last refresh
	t := time.NewTicker(every)
	defer t.Stop()
	// tick sets the ticker to the full look's interval: slow while inotify covers every
	// log directory, every `every` otherwise.
	tick := func() {
		if w != nil && watchErr == "" {
			t.Reset(max(every, rotateFullLook))
		} else {
			t.Reset(every)
		}
	}
	watch := func() {
		if w == nil {
			return
		}
		list := make([]string, 0, len(dirs))
		for dir := range dirs {
			list = append(list, dir)
		}
		msg := ""
		if err := w.Watch(list); err != nil {
			msg = err.Error()
		}
		if msg != watchErr {
			if msg != "" {
				d.logger.Printf("log rotation: %s; those logs are checked every %s only", msg, every)
			}
			watchErr = msg
			tick()
		}
	}
	// handOver takes the logs checkLogs handed over and returns their paths.
	handOver := func() (handed []string) {
		until := time.Now().Add(handOverKeep)
		for p, r := range d.logw.take() {
			p = filepath.Clean(p)
			extra[p] = added{r, until}
			files[p] = r
			handed = append(handed, p)
		}
		return handed
	}
	// refresh re-reads every instance's logs: a look at all of them, done on the tick only.
	refresh := func() {
		handOver()
		now := time.Now()
		files = d.logFiles()
		for p, e := range extra {
			if _, owned := files[p]; owned || now.After(e.until) {
				delete(extra, p)
				continue
			}
			files[p] = e.r
		}
		clear(dirs)
		for p := range files {
			dirs[filepath.Dir(p)] = true
		}
		watch()
	}
	refresh()
	tick()
	for {
		var paths []string // the files to look at; nil: all of them
		select {
		case <-d.quit:
			return
		case <-t.C:
			refresh()
		case <-d.logw.signal():
			// Only the handed-over logs are new. Re-reading and looking at every log here made
			// each start cost a look at every running instance's logs: quadratic in a batch.
			paths = handOver()
			newDir := false
			for _, p := range paths {
				if dir := filepath.Dir(p); !dirs[dir] {
					dirs[dir], newDir = true, true
				}
			}
			if newDir {
				watch()
			}
			if len(paths) == 0 {
				continue
			}
		case <-written:
			if dropped := w.Dropped(); len(dropped) > 0 {
				// A log directory was removed or moved away: watch it again (it may be back
				// already; if not, watch says so and the tick falls back to `every` until it
				// is) and look at its logs, which may have been written meanwhile.
				watch()
				paths = logsIn(files, dropped)
			}
			p, all := w.Written()
			if all {
				paths = nil
			} else {
				paths = append(paths, p...)
				if len(paths) == 0 {
					continue
				}
			}
		}
		if paths == nil {
			for p := range files {
				paths = append(paths, p)
			}
		}
		todo := make(map[string]logs.Rotator, len(paths))
		for _, path := range paths {
			if r, ok := files[path]; ok { // else another file in a log directory
				todo[path] = r
			}
		}
		logs.RotateEach(todo, func(path string, _ bool, err error) {
			switch {
			case err == nil:
				if failed[path] != "" {
					d.logger.Printf("log %s rotates again", path)
					delete(failed, path)
				}
			case errors.Is(err, logs.ErrBusy):
				// Someone holds the file (a flush, a reader): next time.
			case failed[path] != err.Error():
				d.logger.Printf("rotating logs: %v", err)
				failed[path] = err.Error()
			}
		})
	}
}

// handOverKeep is how long the rotation loop keeps a log an operation handed over but no app
// owns yet: longer than readiness waits are in practice. The log of one still waiting after
// that is looked at again from the refresh after its operation commits.
const handOverKeep = 10 * time.Minute

// logsIn are the paths in files that lie in one of dirs.
func logsIn(files map[string]logs.Rotator, dirs []string) []string {
	in := map[string]bool{}
	for _, d := range dirs {
		in[filepath.Clean(d)] = true
	}
	var paths []string
	for p := range files {
		if in[filepath.Dir(p)] {
			paths = append(paths, p)
		}
	}
	return paths
}

// logFiles lists every instance's log files once (an app's out and err may be one file,
// and several instances may share an out_file) with the rotation its app asks for.
func (d *Daemon) logFiles() map[string]logs.Rotator {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]logs.Rotator{}
	for _, a := range d.apps {
		size, keep := a.cfg.LogLimits()
		for _, s := range a.slots {
			for _, p := range d.logsOf(a, s) {
				out[filepath.Clean(p)] = logs.Rotator{MaxSize: size, Keep: keep}
			}
		}
	}
	return out
}

// logsOf are the files slot s of a writes: its out and err logs, and the app's log_file.
func (d *Daemon) logsOf(a *app, s *slot) []string {
	files := []string{d.outLog(a, s), d.errLog(a, s)}
	if c := d.combinedLog(a); c != "" {
		files = append(files, c)
	}
	return files
}

// logWatch passes the rotation loop the log files an operation is about to have written (see
// checkLogs), so that it watches them from the app's first write rather than from its next
// tick.
type logWatch struct {
	mu      sync.Mutex
	pending map[string]logs.Rotator
	ch      chan struct{}
}

func (l *logWatch) chanLocked() chan struct{} {
	if l.ch == nil {
		l.ch = make(chan struct{}, 1)
	}
	return l.ch
}

// add hands path over to the rotation loop.
func (l *logWatch) add(path string, r logs.Rotator) {
	l.mu.Lock()
	if l.pending == nil {
		l.pending = map[string]logs.Rotator{}
	}
	l.pending[path] = r
	ch := l.chanLocked()
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
	default:
	}
}

// signal receives a value when add was called.
func (l *logWatch) signal() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.chanLocked()
}

// take returns and forgets what add handed over.
func (l *logWatch) take() map[string]logs.Rotator {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.pending
	l.pending = nil
	return p
}
