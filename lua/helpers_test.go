package lua

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/daemon"
)

// script writes body as dir/name and returns its path.
func script(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuf is a log writer tests can read while a script writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dry evaluates body as ecosystem.lua in a temp dir, in a dry run without a daemon.
// The evaluation limit is generous: cases that must fail fail with their own error, and the
// limit only bites when a loaded machine is slow (a 5s limit cut unpack(t, 1, 1e7) short at
// load 20 under the race detector).
func dry(t testing.TB, body string) (*Result, error, string) {
	t.Helper()
	dir := t.TempDir()
	var logs syncBuf
	res, err := Run(context.Background(), script(t, dir, "ecosystem.lua", body), Options{DryRun: true, Log: &logs, Timeout: time.Minute})
	if res == nil {
		t.Fatal("Run returned a nil Result")
	}
	return res, err, logs.String()
}

// wantErr checks that err's text contains every part.
func wantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

// testDaemon is a real daemon serving its API on a unix socket, in-process.
type testDaemon struct {
	d      *daemon.Daemon
	srv    *httptest.Server
	client *api.Client
	home   string
}

func startDaemon(t testing.TB) *testDaemon {
	t.Helper()
	home, err := os.MkdirTemp("", "pmd-")
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(home, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	d.Restore()
	d.Run()
	sock := filepath.Join(home, "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(d.Handler(func() {}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	td := &testDaemon{d: d, srv: srv, client: api.NewClient(sock), home: home}
	t.Cleanup(func() {
		srv.Close()
		d.Shutdown()
		os.RemoveAll(home)
	})
	return td
}

// names lists the app names of the daemon's instances, one per instance.
func (td *testDaemon) names(t testing.TB) []string {
	t.Helper()
	rows, err := td.client.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.Name)
	}
	return out
}

// freeRange finds n consecutive ports that nothing listens on.
func freeRange(t testing.TB, n int) int {
	t.Helper()
	for start := 21000 + int(time.Now().UnixNano()%2000)*10; start < 60000; start += n + 7 {
		ok := true
		var held []net.Listener
		for p := start; p < start+n; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
			if err != nil {
				ok = false
				break
			}
			held = append(held, ln)
		}
		for _, ln := range held {
			ln.Close()
		}
		if ok {
			return start
		}
	}
	t.Fatal("no free port range")
	return 0
}
