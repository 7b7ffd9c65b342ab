package daemon

import (
	"bytes"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// logBuffer is daemon.log in memory, safe for the daemon's goroutines and the test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestDaemon(t *testing.T) (*Daemon, *logBuffer) {
	t.Helper()
	buf := &logBuffer{}
	d, err := New(t.TempDir(), log.New(buf, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	return d, buf
}

// TestCheckLogsRefusesUnsafeLogs: an app whose log directory other users can write in, or whose
// log path is a symbolic link, is refused before it starts, with the app, the path and why; the
// file the link points at is untouched. A safe log is created and handed to the rotation loop.
func TestCheckLogsRefusesUnsafeLogs(t *testing.T) {
	d, _ := newTestDaemon(t)
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious\n"), 0o600)
	shared := filepath.Join(t.TempDir(), "shared")
	os.Mkdir(shared, 0o700)
	syscall.Chmod(shared, 0o1777)
	private := t.TempDir()
	link := filepath.Join(private, "web-out.log")
	os.Symlink(victim, link)
	for _, tc := range []struct {
		name, out, want string
	}{
		{"world-writable directory", filepath.Join(shared, "web-out.log"),
			`app "web": log directory ` + shared + ` is writable by other users (mode 1777); pick a directory only pmdaemon's user can write`},
		{"symbolic link", link, `app "web": log file ` + link + ` is a symbolic link; refusing to follow it`},
		{"safe", filepath.Join(private, "ok-out.log"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &app{cfg: &config.App{Name: "web", OutFile: tc.out, ErrorFile: filepath.Join(private, "web-err.log")}}
			err := d.checkLogs(a, &slot{})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(tc.out); err != nil {
					t.Errorf("the log was not created: %v", err)
				}
				if p := d.logw.take(); len(p) != 2 || p[tc.out].MaxSize != config.DefaultLogMaxSize {
					t.Errorf("handed to the rotation loop: %v", p)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("checkLogs = %v\nwant %s", err, tc.want)
			}
			if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
				t.Errorf("the victim changed: %q", b)
			}
			if ents, _ := os.ReadDir(shared); len(ents) != 0 {
				t.Errorf("files created in the refused directory: %v", ents)
			}
		})
	}
}

// TestRotateLoopFollowsWrites: the rotation loop rotates a log as soon as a process writes it
// past log_max_size, though its periodic tick is an hour away, and it watches a log from the
// moment checkLogs accepts it.
func TestRotateLoopFollowsWrites(t *testing.T) {
	d, logbuf := newTestDaemon(t)
	d.wg.Add(1)
	go d.rotateLoop(time.Hour)
	defer func() {
		close(d.quit)
		d.wg.Wait()
	}()
	dir := t.TempDir()
	out := filepath.Join(dir, "web-out.log")
	a := &app{cfg: &config.App{Name: "web", OutFile: out, LogMaxSize: config.MinLogMaxSize, LogKeep: 3}}
	if err := d.checkLogs(a, &slot{}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	writeAndAwaitRotation(t, f, out, logbuf)
	if strings.Contains(logbuf.String(), "rotat") {
		t.Errorf("daemon.log:\n%s", logbuf)
	}
}

// TestRotateLoopWatchesARemovedLogDirectoryAgain: a log directory removed while the app runs
// (by hand, by a clean-up job) and made again is watched again at once, not at the next full
// look 30 s away: a log written past log_max_size in it is rotated within seconds. The log
// belongs to an operation that has not committed yet (no app owns it), as while an app waits
// to be ready, and stays looked at past the loop's few-second tick.
func TestRotateLoopWatchesARemovedLogDirectoryAgain(t *testing.T) {
	d, logbuf := newTestDaemon(t)
	d.wg.Add(1)
	go d.rotateLoop(200 * time.Millisecond)
	defer func() {
		close(d.quit)
		d.wg.Wait()
	}()
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "web-out.log")
	a := &app{cfg: &config.App{Name: "web", OutFile: out, LogMaxSize: config.MinLogMaxSize, LogKeep: 3}}
	if err := d.checkLogs(a, &slot{}); err != nil {
		t.Fatal(err)
	}
	// Several of the loop's ticks pass: the handed-over log must outlive them.
	time.Sleep(time.Second) // not synchronisation: a span that must pass
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	writeAndAwaitRotation(t, f, out, logbuf)
}

// writeAndAwaitRotation writes 1 MB to f (the log at out), in 16 writes of 64 KB by a process,
// and waits up to 10 s for the log to be rotated: under MinLogMaxSize, with its 3 rotated
// files.
func writeAndAwaitRotation(t *testing.T, f *os.File, out string, logbuf *logBuffer) {
	t.Helper()
	cmd := exec.Command("sh", "-c", `i=0; while [ $i -lt 16 ]; do head -c 65536 /dev/zero | tr '\0' x; i=$((i+1)); done`)
	cmd.Stdout = f
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		rotated, _ := filepath.Glob(out + ".*")
		if fi.Size() < config.MinLogMaxSize && len(rotated) == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the write, the log holds %d bytes and %d rotated files; daemon.log:\n%s", fi.Size(), len(rotated), logbuf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
