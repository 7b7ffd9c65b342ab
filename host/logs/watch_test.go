package logs

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newWatcher(t *testing.T, gap time.Duration) *Watcher {
	t.Helper()
	w, err := NewWatcher(gap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// waitWritten collects what w reports until want is among it, and fails if it reports any path
// not in allowed (or want) or nothing within 5 s.
func waitWritten(t *testing.T, w *Watcher, want string, allowed ...string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-w.C():
		case <-deadline:
			t.Fatalf("no write to %s reported within 5s", want)
		}
		paths, all := w.Written()
		if all {
			t.Fatalf("Written reported lost events")
		}
		found := false
		for _, p := range paths {
			switch {
			case p == want:
				found = true
			case !slices.Contains(allowed, p):
				t.Errorf("Written reported %s", p)
			}
		}
		if found {
			return
		}
	}
}

// TestWatcher: a write into a watched directory is reported with the file's path; writes
// elsewhere are not; a directory dropped from the set is no longer reported; a directory
// removed and made again is watched again by the next Watch.
func TestWatcher(t *testing.T) {
	w := newWatcher(t, 5*time.Millisecond)
	a, b := t.TempDir(), t.TempDir()
	if err := w.Watch([]string{a, a + "/"}); err != nil {
		t.Fatal(err)
	}
	appendString(t, filepath.Join(b, "x.log"), "unwatched\n")
	appendString(t, filepath.Join(a, "x.log"), "watched\n")
	waitWritten(t, w, filepath.Join(a, "x.log"))

	// Swap the set: b only.
	if err := w.Watch([]string{b}); err != nil {
		t.Fatal(err)
	}
	appendString(t, filepath.Join(a, "y.log"), "no longer watched\n")
	appendString(t, filepath.Join(b, "y.log"), "watched now\n")
	waitWritten(t, w, filepath.Join(b, "y.log"))

	// b removed and made again: the old watch went with it.
	if err := os.RemoveAll(b); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(b, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := w.Watch([]string{b}); err != nil {
		t.Fatal(err)
	}
	appendString(t, filepath.Join(b, "z.log"), "new directory\n")
	waitWritten(t, w, filepath.Join(b, "z.log"), filepath.Join(b, "y.log"))

	err := w.Watch([]string{filepath.Join(a, "missing")})
	if err == nil || !strings.Contains(err.Error(), "cannot watch "+filepath.Join(a, "missing")+" for writes") {
		t.Errorf("Watch of a missing directory: %v", err)
	}
}

// TestWatcherReportsNamesThatAppear: a symbolic link planted at a log's path, and a file
// renamed over it, are reported like a write, though nothing was written: the rotation loop
// then looks at that path at once instead of at its next full look.
func TestWatcherReportsNamesThatAppear(t *testing.T) {
	w := newWatcher(t, 5*time.Millisecond)
	dir, elsewhere := t.TempDir(), t.TempDir()
	if err := w.Watch([]string{dir}); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "app-0-out.log")
	if err := os.Symlink(filepath.Join(elsewhere, "victim"), link); err != nil {
		t.Fatal(err)
	}
	waitWritten(t, w, link)

	moved := filepath.Join(dir, "app-0-err.log")
	src := filepath.Join(elsewhere, "prepared")
	if err := os.WriteFile(src, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(src, moved); err != nil {
		t.Fatal(err)
	}
	waitWritten(t, w, moved)
}

// TestWatcherMergesWrites: a process writing 20,000 lines one write(2) each wakes the Watcher
// at most once per gap, not once per write.
func TestWatcherMergesWrites(t *testing.T) {
	const gap = 50 * time.Millisecond
	w := newWatcher(t, gap)
	dir := t.TempDir()
	if err := w.Watch([]string{dir}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "chatty.log")
	cmd := exec.Command("sh", "-c", shLines)
	cmd.Env = append(os.Environ(), "N=20000")
	cmd.Stdout = openAppend(t, path)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	signals := 0
	var took time.Duration
	for running := true; running; {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatal(err)
			}
			took = time.Since(start)
			running = false
		case <-w.C():
			signals++
			if paths, all := w.Written(); all || !slices.Equal(paths, []string{path}) {
				t.Errorf("Written = %v, %v; want only %s", paths, all, path)
			}
		}
	}
	if max := int(took/gap) + 2; signals < 1 || signals > max {
		t.Errorf("%d signals for 20000 writes in %s; want 1 to %d (one per %s at most)", signals, took, max, gap)
	}
	t.Logf("20000 writes in %s: %d signals", took, signals)
}

// TestWatcherOverflow: when more distinct events come in one gap than the kernel queues, they
// are not silently lost: Written reports that any file may have been written.
func TestWatcherOverflow(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Fatal(err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	const gap = 2 * time.Second
	w := newWatcher(t, gap) // after the first batch, it reads nothing for 2 s: the queue fills up
	dir := t.TempDir()
	if err := w.Watch([]string{dir}); err != nil {
		t.Fatal(err)
	}
	appendString(t, filepath.Join(dir, "first.log"), "x\n")
	waitWritten(t, w, filepath.Join(dir, "first.log"))
	// The kernel merges an event only with the one queued just before it: writes alternating
	// between two files queue one event each.
	files := []*os.File{openAppend(t, filepath.Join(dir, "a.log")), openAppend(t, filepath.Join(dir, "b.log"))}
	start := time.Now()
	for i := range limit + 10 {
		if _, err := files[i%2].WriteString("x"); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > gap {
		t.Fatalf("%d writes took %s, longer than the gap: the queue cannot be shown to overflow", limit+10, took)
	}
	select {
	case <-w.C():
	case <-time.After(5 * gap):
		t.Fatal("no signal after the gap")
	}
	paths, all := w.Written()
	if !all {
		t.Errorf("Written = %d paths, all = false; want all = true after the queue overflowed", len(paths))
	}
}

// waitDropped waits until w reports want among the directories it stopped watching, and
// returns every directory reported meanwhile.
func waitDropped(t *testing.T, w *Watcher, want string) []string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	var got []string
	for {
		got = append(got, w.Dropped()...)
		if slices.Contains(got, want) {
			return got
		}
		select {
		case <-w.C():
		case <-deadline:
			t.Fatalf("the watch of %s was not reported dropped within 5s", want)
		}
	}
}

// TestWatcherReportsDroppedDirectories: a watched directory removed, or renamed away, is
// reported by Dropped (so that its owner can watch the path again); writes in the renamed
// directory are no longer reported, since it is not the one at the path; a directory Watch
// itself stops watching is not reported.
func TestWatcherReportsDroppedDirectories(t *testing.T) {
	w := newWatcher(t, 5*time.Millisecond)
	root := t.TempDir()
	removed, renamed, unwatched, kept := filepath.Join(root, "removed"), filepath.Join(root, "renamed"), filepath.Join(root, "unwatched"), filepath.Join(root, "kept")
	for _, d := range []string{removed, renamed, unwatched, kept} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Watch([]string{removed, renamed, unwatched, kept}); err != nil {
		t.Fatal(err)
	}
	if err := w.Watch([]string{removed, renamed, kept}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(unwatched); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(removed); err != nil {
		t.Fatal(err)
	}
	if got := waitDropped(t, w, removed); slices.Contains(got, unwatched) {
		t.Errorf("Dropped reports %s, which Watch had let go itself: %v", unwatched, got)
	}
	if err := os.Rename(renamed, renamed+".old"); err != nil {
		t.Fatal(err)
	}
	waitDropped(t, w, renamed)
	appendString(t, filepath.Join(renamed+".old", "x.log"), "in the renamed directory\n")
	appendString(t, filepath.Join(kept, "x.log"), "still watched\n")
	waitWritten(t, w, filepath.Join(kept, "x.log"))
	if d := w.Dropped(); len(d) != 0 {
		t.Errorf("Dropped reports %v after the two drops were taken", d)
	}
	// The path watched again, with a directory there once more.
	if err := os.Mkdir(renamed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := w.Watch([]string{renamed, kept}); err != nil {
		t.Fatal(err)
	}
	appendString(t, filepath.Join(renamed, "y.log"), "new directory\n")
	waitWritten(t, w, filepath.Join(renamed, "y.log"))
}
