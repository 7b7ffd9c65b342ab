package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// testServer runs a daemon's API on a unix socket, with ctl as its control.
func testServer(t *testing.T, ctl *control) (*Daemon, *api.Client) {
	t.Helper()
	home, err := os.MkdirTemp("", "pmd-")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(home, log.New(io.Discard, "", 0))
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
	srv := &http.Server{Handler: newAPIServer(d, ctl).handler()}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		d.Shutdown()
		os.RemoveAll(home)
	})
	return d, api.NewClient(sock)
}

// Every route of the table has a handler and every handler a route: the client and the daemon
// cannot disagree on what exists.
func TestEveryRouteHandled(t *testing.T) {
	d := &Daemon{}
	handled := newAPIServer(d, &control{}).routes()
	for _, r := range api.Routes() {
		if handled[r] == nil {
			t.Errorf("route %s has no handler", r)
		}
	}
	if len(handled) != len(api.Routes()) {
		var extra []string
		for r := range handled {
			found := false
			for _, want := range api.Routes() {
				found = found || want == r
			}
			if !found {
				extra = append(extra, r.String())
			}
		}
		t.Errorf("handlers without a route in api.Routes(): %v", extra)
	}
}

// The daemon's errors reach the client with the code their kind calls for, whatever wraps them.
func TestAPIErrorCodes(t *testing.T) {
	tests := []struct {
		err  error
		code api.Code
	}{
		{&NotFoundError{Target: "web"}, api.CodeNotFound},
		{fmt.Errorf("stop: %w", &NotFoundError{Target: "web", What: "plugin"}), api.CodeNotFound},
		{userErr("instances %d is too many", 9999), api.CodeInvalid},
		{conflictErr("process '%s' already exists", "web"), api.CodeConflict},
		{errors.Join(conflictErr("a"), userErr("b")), api.CodeConflict},
		{errors.New("disk full"), api.CodeInternal},
	}
	for _, tt := range tests {
		e := apiError(tt.err)
		if e.Code != tt.code || e.Message != tt.err.Error() {
			t.Errorf("%v: %+v, want code %s and the error's message", tt.err, e, tt.code)
		}
	}
}

// Once the daemon is closing, requests that change something are refused as unavailable with
// the reason, while reads are still answered; the version header is on every answer.
func TestClosingRefusesChanges(t *testing.T) {
	ctl := &control{kill: func() {}}
	_, c := testServer(t, ctl)
	ctx := context.Background()
	if _, err := c.Stop(ctx, api.TargetRequest{Target: "nothing"}); !api.IsNotFound(err) {
		t.Fatalf("stop of nothing while open: %v, want not found", err)
	}
	if _, err := c.Update(ctx); !api.IsUnavailable(err) || !strings.Contains(err.Error(), "cannot hand over") {
		t.Errorf("update of a daemon that cannot hand over: %v", err)
	}
	ctl.close("the daemon is shutting down")
	_, err := c.Stop(ctx, api.TargetRequest{Target: "nothing"})
	if !api.IsUnavailable(err) || err.Error() != "the daemon is shutting down" {
		t.Errorf("stop while closing: %v, want unavailable with the reason", err)
	}
	if _, err := c.List(ctx); err != nil {
		t.Errorf("list while closing: %v", err)
	}
	if v := c.DaemonVersion(); v != api.Version {
		t.Errorf("version header %q, want %q", v, api.Version)
	}
}

// A problem reaches every client as one header line that Go's client accepts, however its
// text came: a control character in a home's path once made every command fail ("malformed
// MIME header line") for as long as the problem lasted.
func TestProblemHeaderSurvivesAnyText(t *testing.T) {
	d, c := testServer(t, &control{})
	var got []string
	c.OnProblems(func(ps []string) { got = ps })
	short := func(s string) string {
		if len(s) > 200 {
			return s[:100] + "..." + s[len(s)-100:]
		}
		return s
	}
	for _, tt := range []struct{ name, saveErr, want string }{
		{"escape and NUL", "cannot write /tmp/a\x1bb\x00/state.json: rename: file exists", `/tmp/a\x1bb\x00/state.json`},
		{"line breaks and tabs", "one\r\ntwo\tthree\n", "(one two three )"},
		{"invalid UTF-8 and DEL", "bad \xff\xfe byte \x7f", "bad \uFFFD byte \\x7f"},
		{"very long", strings.Repeat("x", 1<<20), "xxx..."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d.mu.Lock()
			d.saveErr = tt.saveErr
			d.mu.Unlock()
			got = nil
			if _, err := c.List(context.Background()); err != nil {
				t.Fatalf("list while the problem lasts: %v", short(err.Error()))
			}
			if len(got) != 1 || !strings.Contains(got[0], tt.want) {
				t.Fatalf("problems in the header %q, want one containing %q", short(strings.Join(got, " | ")), tt.want)
			}
			if n := len(got[0]); n > maxProblemHeader {
				t.Errorf("a problem of %d bytes came through, over %d", n, maxProblemHeader)
			}
		})
	}
	d.mu.Lock()
	d.saveErr = ""
	d.mu.Unlock()
}
