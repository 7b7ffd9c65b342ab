package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/cli"
	"github.com/pmdaemon/pmdaemon/host/daemon"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// TestMain refuses to be the daemon the CLI spawns when none answers: the CLI spawns its own
// executable, which under `go test` is this test binary. Every test here either starts its
// daemon in-process first or never reaches the daemon, so a spawn is a test bug; it must fail
// fast and loud rather than rerun the whole suite as a background "daemon".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "daemon" {
		fmt.Fprintln(os.Stderr, "host/cli test binary: a test let the CLI spawn a daemon; start one in-process first")
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// run is one in-process CLI call.
type run struct {
	code           int
	stdout, stderr string
}

// pmd runs cli.Main with args, capturing its output.
func pmd(args ...string) run {
	var out, errb bytes.Buffer
	code := cli.Main(args, &out, &errb)
	return run{code, out.String(), errb.String()}
}

// mustPmd runs cli.Main and fails the test unless it exits 0.
func mustPmd(t *testing.T, args ...string) string {
	t.Helper()
	r := pmd(args...)
	if r.code != 0 {
		t.Fatalf("pmdaemon %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// newHome makes an empty PMDAEMON_HOME for this test (short: a socket path is limited to 108
// bytes) and points cli.Main at it. The test must not be parallel (t.Setenv).
func newHome(t *testing.T) string {
	t.Helper()
	home, err := os.MkdirTemp("", "pmdcli-")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PMDAEMON_HOME", home)
	t.Cleanup(func() {
		// Nothing may outlive the test: a process of this home is a leak, and is killed.
		if left := harness.ProcessesOf(home); len(left) > 0 {
			for _, p := range left {
				harness.Sigkill(t, p)
			}
			t.Errorf("processes of %s left behind: %v", home, left)
		}
		harness.RemoveCgroups(t, home)
		os.RemoveAll(home)
	})
	return home
}

// serveInProcess runs the real daemon for a fresh home in this process (daemon.Serve in a
// goroutine) and waits until it answers, so the CLI under test talks to it over the real unix
// socket and never spawns one. At cleanup the daemon is killed through the API (stopping its
// apps), Serve must return, and the goroutines it started must end.
func serveInProcess(t *testing.T) (home string, c *api.Client) {
	t.Helper()
	before := goroutines()
	home = newHome(t)
	logf, err := os.Create(filepath.Join(home, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- daemon.Serve(home, logf) }()
	c = api.NewClient(daemon.Paths{Home: home}.Socket())
	// Registered after newHome's cleanup, so it runs first: the daemon stops its apps before
	// the home is searched for leftovers.
	t.Cleanup(func() {
		defer logf.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Kill(ctx); err != nil {
			t.Errorf("killing the in-process daemon: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("daemon.Serve: %v", err)
			}
		case <-ctx.Done():
			t.Errorf("daemon.Serve did not return within 30s of the kill request")
			return
		}
		waitGoroutines(t, before)
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := c.Ping(context.Background())
		if err == nil {
			return home, c
		}
		select {
		case serr := <-served:
			t.Fatalf("daemon.Serve returned before answering: %v", serr)
		default:
		}
		if !errors.Is(err, api.ErrNoDaemon) || time.Now().After(deadline) {
			t.Fatalf("the in-process daemon does not answer: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitGoroutines fails t unless the goroutines fall back to at most n within a few seconds
// (connections the server closed take a moment to wind down).
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for goroutines() > n {
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines after the daemon stopped, %d before:\n%s", goroutines(), n, stacks())
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// goroutines counts this process's goroutines but os/signal's loop, which the first
// signal.Notify (the daemon's) starts for the life of the process: it is no leak.
func goroutines() int {
	n := 0
	for _, g := range strings.Split(stacks(), "\n\n") {
		if !strings.Contains(g, "os/signal.loop") {
			n++
		}
	}
	return n
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
