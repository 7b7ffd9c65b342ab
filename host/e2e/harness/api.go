package harness

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// APITimeout bounds each API call the harness makes: a wedged daemon fails the test rather
// than hanging it.
const APITimeout = 10 * time.Second

// Socket is the path of this home's daemon API socket.
func (h *Home) Socket() string { return filepath.Join(h.Dir, "daemon.sock") }

// API is a typed client of this home's daemon, for tests that need the daemon's state rather
// than what the CLI prints: a call costs no process (a -race CLI costs more CPU than much of
// what a test measures) and no parsing of `list --json`. Unlike the CLI it never starts a
// daemon. One client serves the whole test, so polls reuse one connection.
func (h *Home) API() *api.Client {
	h.apiOnce.Do(func() { h.api = api.NewClient(h.Socket()) })
	return h.api
}

// APIList is the running daemon's list, read through the API; an error fails the test,
// with the daemon's log.
func (h *Home) APIList() []api.Instance {
	h.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), APITimeout)
	defer cancel()
	rows, err := h.API().List(ctx)
	if err != nil {
		h.T.Fatalf("list through the API: %v\ndaemon.log:\n%s", err, h.DaemonLog())
	}
	return rows
}

// DaemonLog is $PMDAEMON_HOME/daemon.log ("" when there is none).
func (h *Home) DaemonLog() string {
	b, _ := os.ReadFile(filepath.Join(h.Dir, "daemon.log"))
	return string(b)
}

// WaitAPI polls the daemon's list through the API until cond holds, and fails the test at
// timeout. A daemon that does not answer for a while (one being restarted) is polled again.
func (h *Home) WaitAPI(timeout time.Duration, what string, cond func([]api.Instance) bool) []api.Instance {
	h.T.Helper()
	return WaitRows(h.T, h.API(), timeout, what, cond)
}

// WaitOnline waits (up to 30s) until app name has n instances, all online with a pid, and
// returns the whole list.
func (h *Home) WaitOnline(name string, n int) []api.Instance {
	h.T.Helper()
	return h.WaitAPI(30*time.Second, name+" online", AllOnline(name, n))
}

// WaitRows polls c's list until cond holds, and fails t at timeout with the last list or the
// last error.
func WaitRows(t testing.TB, c *api.Client, timeout time.Duration, what string, cond func([]api.Instance) bool) []api.Instance {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), APITimeout)
		rows, err := c.List(ctx)
		cancel()
		if err == nil && cond(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("timed out after %s waiting for %s; the last list failed: %v", timeout, what, err)
			}
			b, _ := json.MarshalIndent(rows, "", " ")
			t.Fatalf("timed out after %s waiting for %s; list:\n%s", timeout, what, b)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// HTTP is a plain HTTP client whose every request goes to this home's daemon socket (the
// URL's host is ignored: use http://pmdaemon/v1/...). It is for tests that send the API
// bodies as they are, past the typed client's checks; no connection is kept between calls.
func (h *Home) HTTP(timeout time.Duration) *http.Client {
	sock := h.Socket()
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// HoldsFor polls c's list for d and fails t (without stopping it) the first time bad returns a
// complaint, or the daemon does not answer; it reports whether the state held. It checks that
// a state lasts (a crash loop that stays errored, an app that is not restarted), which one
// look cannot.
func HoldsFor(t testing.TB, c *api.Client, d time.Duration, what string, bad func([]api.Instance) string) bool {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), APITimeout)
		rows, err := c.List(ctx)
		cancel()
		if err != nil {
			t.Errorf("%s: the daemon does not answer: %v", what, err)
			return false
		}
		if msg := bad(rows); msg != "" {
			b, _ := json.MarshalIndent(rows, "", " ")
			t.Errorf("%s: %s; list:\n%s", what, msg, b)
			return false
		}
	}
	return true
}
