package logs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Watcher says which files of a set of directories were written to, from the kernel's inotify
// IN_MODIFY events (and which names appeared there: IN_CREATE, IN_MOVED_TO), so that a log is rotated as soon as it passes its size instead of at the
// next tick of a timer (at 100 MB/s a 2 s tick lets a 10 MB log reach 200 MB).
//
// Why inotify rather than polling faster: a poll interval short enough for a burst (tens of
// milliseconds) would wake an idle daemon tens of times a second for nothing, and an interval
// adapted to each file's past growth misses a file that bursts after being idle. Events cost
// nothing while nothing is written, and arrive within microseconds of a write.
//
// Why a gap: an app writing line by line makes one event per write(2). After each batch of
// events the Watcher waits gap before reading the next; meanwhile the kernel merges repeated
// events on the same file into one, so a chatty app costs at most one wake-up per gap however
// many writes it makes, and a log grows by at most gap × its write rate before it is looked at.
// If the kernel's queue overflows (very many files written in one gap), Written reports all.
//
// Directories are watched rather than files: a log file that is removed and created again (by
// hand, or because the app restarts after that) is still seen.
type Watcher struct {
	f       *os.File // the inotify descriptor, in Go's poller
	fd      int
	gap     time.Duration
	c       chan struct{}
	closing chan struct{}
	done    chan struct{}

	mu      sync.Mutex
	dirs    map[string]int32   // watched directory -> watch descriptor
	wds     map[int32][]string // watch descriptor -> its directories (two paths may be one directory)
	written map[string]bool    // paths written since the last Written
	all     bool               // events were lost: anything may have been written
	dropped []string           // directories whose watch the kernel dropped since the last Dropped
}

// watchMask is what a watched directory reports: writes to its files, and names that appear
// in it (created, or renamed or moved there), so that a log replaced by something else (a
// symbolic link planted at its path) is looked at as soon as it is, like a log written to.
// IN_MOVE_SELF: a directory renamed away is no longer the one at the path; its watch is let go
// as if it had been removed.
const watchMask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// NewWatcher starts a Watcher that watches nothing yet; gap is the least time between two
// signals on C.
func NewWatcher(gap time.Duration) (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &Watcher{
		f:       os.NewFile(uintptr(fd), "inotify"),
		fd:      fd,
		gap:     gap,
		c:       make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		dirs:    map[string]int32{},
		wds:     map[int32][]string{},
		written: map[string]bool{},
	}
	go w.read()
	return w, nil
}

// Watch makes dirs the directories watched (the others are dropped). A directory that cannot
// be watched (missing, or past the kernel's limit of watches) is left out and named in the
// error; the others are watched all the same.
func (w *Watcher) Watch(dirs []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	next := map[string]int32{}
	for _, dir := range dirs {
		dir = filepath.Clean(dir)
		if _, ok := next[dir]; ok {
			continue
		}
		// Adding a watch on a directory already watched returns its descriptor; a directory
		// replaced since (same path, new inode) gets a new one.
		wd, err := unix.InotifyAddWatch(w.fd, dir, watchMask)
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot watch %s for writes: %w", dir, err))
			continue
		}
		next[dir] = int32(wd)
	}
	wds := map[int32][]string{}
	for dir, wd := range next {
		wds[wd] = append(wds[wd], dir)
	}
	for wd := range w.wds {
		if _, ok := wds[wd]; !ok {
			unix.InotifyRmWatch(w.fd, uint32(wd))
		}
	}
	w.dirs, w.wds = next, wds
	return errors.Join(errs...)
}

// C receives a value when files were written since the last Written.
func (w *Watcher) C() <-chan struct{} { return w.c }

// Written returns the paths (directory joined with file name) written since the last call, or
// all == true when events were lost and any file may have been.
func (w *Watcher) Written() (paths []string, all bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p := range w.written {
		paths = append(paths, p)
	}
	clear(w.written)
	all, w.all = w.all, false
	return paths, all
}

// dropLocked forgets watch wd: nothing written in its directories is reported until Watch
// adds them again, which the owner learns from Dropped.
func (w *Watcher) dropLocked(wd int32) {
	for _, dir := range w.wds[wd] {
		delete(w.dirs, dir)
		w.dropped = append(w.dropped, dir)
	}
	delete(w.wds, wd)
}

// Dropped returns the directories that stopped being watched since the last call, because
// they were removed or moved away (or their file system unmounted); C receives a value when
// one is. Watch them again to see their files' writes.
func (w *Watcher) Dropped() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.dropped
	w.dropped = nil
	return d
}

// Close stops the Watcher and releases its descriptor.
func (w *Watcher) Close() error {
	close(w.closing)
	err := w.f.Close() // ends the pending Read
	<-w.done
	return err
}

func (w *Watcher) read() {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	gap := time.NewTimer(0)
	defer gap.Stop()
	<-gap.C
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return // closed
		}
		w.parse(buf[:n])
		// The rest of the queue too (it can hold more than buf), without waiting for more.
		if !w.drain(buf) {
			return
		}
		select {
		case w.c <- struct{}{}:
		default:
		}
		gap.Reset(w.gap)
		select {
		case <-w.closing:
			return
		case <-gap.C:
		}
	}
}

// drain reads and records the events queued, until none is left; it reports false once the
// Watcher is closed.
func (w *Watcher) drain(buf []byte) bool {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return false
	}
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			return true // never wait for more
		})
		if err != nil {
			return false
		}
		if rerr != nil || n <= 0 {
			return true // EAGAIN: nothing left
		}
		w.parse(buf[:n])
	}
}

// parse records a batch of struct inotify_event.
func (w *Watcher) parse(b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(b) >= unix.SizeofInotifyEvent {
		wd := int32(binary.NativeEndian.Uint32(b[0:]))
		mask := binary.NativeEndian.Uint32(b[4:])
		size := int(binary.NativeEndian.Uint32(b[12:]))
		b = b[unix.SizeofInotifyEvent:]
		if size > len(b) {
			w.all = true
			return
		}
		name := b[:size]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		b = b[size:]
		switch {
		case mask&unix.IN_Q_OVERFLOW != 0:
			w.all = true
		case mask&unix.IN_MOVE_SELF != 0:
			if _, ok := w.wds[wd]; ok {
				unix.InotifyRmWatch(w.fd, uint32(wd)) // its IN_IGNORED then finds no wd
				w.dropLocked(wd)
			}
		case mask&unix.IN_IGNORED != 0:
			// The directory went away (or its watch was dropped). A watch Watch removed
			// itself is no longer in wds by the time its event comes.
			w.dropLocked(wd)
		case mask&(unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO) != 0 && len(name) > 0:
			for _, dir := range w.wds[wd] {
				w.written[filepath.Join(dir, string(name))] = true
			}
		}
	}
}
