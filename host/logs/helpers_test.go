package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// filesystem is where a test puts its logs: ext4 rotates by collapsing the head, tmpfs by
// punching a hole.
type filesystem struct {
	name string
	want trim
	dir  func(t testing.TB) string
}

var filesystems = []filesystem{
	{"ext4", trimCollapse, ext4Dir},
	{"tmpfs", trimPunch, tmpfsDir},
}

// ext4Dir is a temporary directory on a filesystem that collapses ranges (/tmp here).
func ext4Dir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if how, err := probeDir(dir); err != nil || how != trimCollapse {
		t.Fatalf("%s does not support FALLOC_FL_COLLAPSE_RANGE (%v); set TMPDIR to a directory on ext4 or XFS", dir, err)
	}
	return dir
}

// tmpfsDir is a temporary directory under /dev/shm, which must be a writable tmpfs.
func tmpfsDir(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/dev/shm"); errors.Is(err, fs.ErrNotExist) {
		t.Skip("no /dev/shm on this machine: the punch-hole rotation is not tested")
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err != nil {
		t.Fatalf("statfs /dev/shm: %v", err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		t.Fatalf("/dev/shm is not a tmpfs (filesystem type %#x): the punch-hole rotation cannot be tested", st.Type)
	}
	dir, err := os.MkdirTemp("/dev/shm", "pmdaemon-logs-test-")
	if err != nil {
		t.Fatalf("/dev/shm is not writable, the punch-hole rotation cannot be tested: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func probeDir(dir string) (trim, error) {
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	return probeTrim(f, blockSize(f))
}

// openAppend opens path the way the supervisor opens an app's log.
func openAppend(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func appendString(t testing.TB, path, s string) {
	t.Helper()
	f := openAppend(t, path)
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o640); err != nil {
		t.Fatal(err)
	}
}

// numbered is lines from..to-1, one number a line.
func numbered(from, to int) string {
	var b bytes.Buffer
	for i := from; i < to; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// stream returns the whole log as rotation left it: path.K ... path.1 then the live file from
// where its data starts.
func stream(t testing.TB, path string) []byte {
	t.Helper()
	rotated, err := Rotated(path)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for i := len(rotated) - 1; i >= 0; i-- {
		b, err := os.ReadFile(rotated[i])
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(b, 0) >= 0 {
			t.Fatalf("%s holds NUL bytes", rotated[i])
		}
		all = append(all, b...)
	}
	return append(all, liveData(t, path)...)
}

// liveData is the live file after its punched head, if any.
func liveData(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	start := dataStart(f, fi.Size())
	b, err := readRange(f, start, fi.Size()-start)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		t.Fatalf("%s holds a NUL byte at %d after its data start %d", path, start+int64(i), start)
	}
	return b
}

// checkNumbered fails unless data is exactly lines 0..n-1.
func checkNumbered(t testing.TB, data []byte, n int) {
	t.Helper()
	want := numbered(0, n)
	if string(data) == want {
		return
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})
	for i, l := range lines {
		if string(l) != strconv.Itoa(i) {
			t.Fatalf("line %d of %d is %q, want %d (the stream has %d bytes, want %d)", i, len(lines), l, i, len(data), len(want))
		}
	}
	t.Fatalf("the stream has %d lines, want %d", len(lines), n)
}

// trimOf says how path was rotated, judging by what is left of it.
func trimOf(t testing.TB, path string) trim {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if dataStart(f, fi.Size()) > 0 {
		return trimPunch
	}
	return trimCollapse
}

// allocated is the disk space path uses.
func allocated(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

// unprivileged runs fn on an OS thread without the capabilities that let root ignore file
// permissions, so permission tests mean something as root too. The thread is never reused.
func unprivileged(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		fn()
		return
	}
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- fmt.Errorf("capget: %w", err)
			return
		}
		drop := uint32(1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_DAC_READ_SEARCH | 1<<unix.CAP_FOWNER)
		data[0].Effective &^= drop
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- fmt.Errorf("capset: %w", err)
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("cannot drop root's file permission override: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustRotate(t testing.TB, r Rotator, path string) {
	t.Helper()
	ok, err := r.Rotate(path)
	if err != nil || !ok {
		t.Fatalf("Rotate(%s) = %v, %v; want a rotation", filepath.Base(path), ok, err)
	}
}
