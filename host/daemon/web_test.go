package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
)

// webFixture is a daemon in-process with its API on a unix socket and on the web listener,
// the admin and read tokens made.
type webFixture struct {
	d            *Daemon
	s            *apiServer
	c            *api.Client // over the unix socket
	home, url    string
	admin, read  string
	webAddr      string
	unixListener net.Listener
}

func newWebFixture(t *testing.T) *webFixture {
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
	f := &webFixture{d: d, home: home, s: newAPIServer(d, &control{kill: func() {}})}
	sock := filepath.Join(home, "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.s.handler()}
	go srv.Serve(ln)
	t.Cleanup(func() {
		f.s.closeWeb()
		srv.Close()
		d.Shutdown()
		os.RemoveAll(home)
	})
	f.c = api.NewClient(sock)
	ctx := context.Background()
	st, err := f.c.Web(ctx, api.WebRequest{Addr: freeLoopback(t)})
	if err != nil {
		t.Fatal(err)
	}
	f.webAddr, f.url = st.Listening, "http://"+st.Listening
	tok, err := f.c.WebToken(ctx, api.WebTokenRequest{})
	if err != nil || tok.Access != api.AccessAdmin || tok.Created {
		t.Fatalf("admin token: %+v %v (it is made with the listener)", tok, err)
	}
	f.admin = tok.Token
	tok, err = f.c.WebToken(ctx, api.WebTokenRequest{ReadOnly: true})
	if err != nil || tok.Access != api.AccessRead || !tok.Created {
		t.Fatalf("read token: %+v %v", tok, err)
	}
	f.read = tok.Token
	return f
}

// freeLoopback is a loopback address with a port free now.
func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// do sends a request to the web listener with token ("" for none).
func (f *webFixture) do(t *testing.T, method, path, token string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// Over TCP, a request without a valid token is 401, an action with the read token 403, and the
// admin token may do anything; a rotated token stops working at once; a body over the limit
// is refused (413) before any handler runs. The unix socket needs no token.
func TestWebTokens(t *testing.T) {
	f := newWebFixture(t)
	stop := `{"target":"nothing"}`
	tests := []struct {
		name, method, path, token, body string
		status                          int
		code                            api.Code
	}{
		{"no token", "GET", "/v1/list", "", "", 401, api.CodeUnauthorized},
		{"wrong token", "GET", "/v1/list", "not-a-token", "", 401, api.CodeUnauthorized},
		{"admin token with a byte more", "GET", "/v1/list", f.admin + "x", "", 401, api.CodeUnauthorized},
		{"no token for an unknown route", "GET", "/v1/nothing", "", "", 401, api.CodeUnauthorized},
		{"read token lists", "GET", "/v1/list", f.read, "", 200, ""},
		{"read token reads metrics", "GET", "/metrics", f.read, "", 200, ""},
		{"read token reads the document", "GET", "/v1/openapi.json", f.read, "", 200, ""},
		{"read token may not stop", "POST", "/v1/stop", f.read, stop, 403, api.CodeForbidden},
		{"read token may not read an environment", "GET", "/v1/env?id=1", f.read, "", 403, api.CodeForbidden},
		{"read token may not make tokens", "POST", "/v1/web/token", f.read, `{}`, 403, api.CodeForbidden},
		{"admin token stops", "POST", "/v1/stop", f.admin, stop, 404, api.CodeNotFound},
		{"admin token, unknown route", "GET", "/v1/nothing", f.admin, "", 404, api.CodeNotFound},
		{"read token, unknown route", "GET", "/v1/nothing", f.read, "", 403, api.CodeForbidden},
		// HEAD runs the GET handler, so it needs what GET needs.
		{"read token may not HEAD an environment", "HEAD", "/v1/env?id=1", f.read, "", 403, ""},
		{"read token may HEAD the list", "HEAD", "/v1/list", f.read, "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			resp, b := f.do(t, tt.method, tt.path, tt.token, body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if resp.Header.Get(api.VersionHeader) != api.Version {
				t.Errorf("no version header")
			}
			if tt.code != "" {
				var e api.Error
				if err := json.Unmarshal(b, &e); err != nil || e.Code != tt.code || e.Message == "" {
					t.Errorf("body %s, want code %s with a message", b, tt.code)
				}
			}
			if tt.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if (tt.status == 401 || tt.status == 403) && !resp.Close {
				t.Errorf("a %d keeps the connection open", tt.status)
			}
		})
	}
	rot, err := f.c.WebToken(context.Background(), api.WebTokenRequest{ReadOnly: true, Rotate: true})
	if err != nil || rot.Token == f.read || !rot.Created {
		t.Fatalf("rotate: %+v %v", rot, err)
	}
	if resp, _ := f.do(t, "GET", "/v1/list", f.read, nil); resp.StatusCode != 401 {
		t.Errorf("the rotated-out read token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/v1/list", rot.Token, nil); resp.StatusCode != 200 {
		t.Errorf("the new read token: %d, want 200", resp.StatusCode)
	}
	big := bytes.Repeat([]byte(" "), 5<<20)
	if resp, b := f.do(t, "POST", "/v1/start", f.admin, bytes.NewReader(big)); resp.StatusCode != 413 || !strings.Contains(string(b), "too_large") {
		t.Errorf("5 MiB body: %d %s, want 413 too_large", resp.StatusCode, b)
	}
	// The same without a length announced: cut at the limit as it is read. The daemon
	// answers and hangs up while the client still sends, so the client may see the answer
	// or a reset connection, never a success.
	pr, pw := io.Pipe()
	go func() { pw.Write(big); pw.Close() }()
	req, _ := http.NewRequest("POST", f.url+"/v1/start", pr)
	req.Header.Set("Authorization", "Bearer "+f.admin)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("5 MiB chunked body: %d, want 413", resp.StatusCode)
		}
	}
	pr.Close()
	fi, err := os.Stat(f.d.paths.Web())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("web.json: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
}

// A body that does not come in time is refused; headers that do not come in time close the connection. CORS headers are
// sent only for a configured origin.
func TestWebBadClients(t *testing.T) {
	old := []time.Duration{webHeaderTimeout, webBodyTimeout}
	webHeaderTimeout, webBodyTimeout = 300*time.Millisecond, 300*time.Millisecond
	// Registered first, so it runs after the fixture's listener is closed.
	t.Cleanup(func() { webHeaderTimeout, webBodyTimeout = old[0], old[1] })
	f := newWebFixture(t)
	// The listener was opened with the usual timeouts: open it again with the short ones.
	ctx := context.Background()
	if _, err := f.c.Web(ctx, api.WebRequest{Off: true}); err != nil {
		t.Fatal(err)
	}
	st, err := f.c.Web(ctx, api.WebRequest{Addr: freeLoopback(t), CORSOrigins: []string{"https://grafana.example"}})
	if err != nil {
		t.Fatal(err)
	}
	f.url = "http://" + st.Listening

	// Headers sent halfway, then nothing: the daemon hangs up.
	conn, err := net.Dial("tcp", st.Listening)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/list HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Errorf("a client that never finishes its headers is still connected: %v", err)
	}

	// A body announced and never sent: refused, saying so.
	conn2, err := net.Dial("tcp", st.Listening)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	fmt.Fprintf(conn2, "POST /v1/stop HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{", f.admin)
	conn2.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn2), nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a body that never comes: %v %v, want 400", resp, err)
	}
	if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "did not arrive within") {
		t.Errorf("a body that never comes: %s", b)
	}

	for _, origin := range []string{"https://grafana.example", "https://evil.example"} {
		req, _ := http.NewRequest("OPTIONS", f.url+"/v1/list", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		allowed := resp.Header.Get("Access-Control-Allow-Origin")
		if origin == "https://grafana.example" && (resp.StatusCode != 204 || allowed != origin) {
			t.Errorf("preflight from a configured origin: %d %q", resp.StatusCode, allowed)
		}
		if origin == "https://evil.example" && (allowed != "" || resp.StatusCode != 401) {
			t.Errorf("preflight from another origin: %d %q, want 401 and no CORS header", resp.StatusCode, allowed)
		}
	}
}

// Addresses other machines may reach need allow_remote; bad addresses and origins are refused
// naming what is wrong, and leave the listener as it was.
func TestWebSettingsChecked(t *testing.T) {
	f := newWebFixture(t)
	ctx := context.Background()
	tests := []struct {
		req  api.WebRequest
		want string
	}{
		{api.WebRequest{Addr: "0.0.0.0:9615"}, "other machines may reach"},
		{api.WebRequest{Addr: ":9615"}, "every interface"},
		{api.WebRequest{Addr: "192.0.2.1:9615"}, "pass --allow-remote"},
		{api.WebRequest{Addr: "127.0.0.1"}, "not host:port"},
		{api.WebRequest{Addr: "127.0.0.1:99999"}, "from 1 to 65535"},
		{api.WebRequest{CORSOrigins: []string{"https://ok.example", "grafana"}}, "cors origin 2"},
		{api.WebRequest{CORSOrigins: []string{"https://ok.example/path"}}, "no path"},
	}
	for _, tt := range tests {
		_, err := f.c.Web(ctx, tt.req)
		if !api.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want invalid with %q", tt.req, err, tt.want)
		}
	}
	// A port another listener holds: conflict, and the old listener still serves.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if _, err := f.c.Web(ctx, api.WebRequest{Addr: taken.Addr().String()}); !api.IsConflict(err) {
		t.Errorf("a taken port: %v, want conflict", err)
	}
	st, err := f.c.WebStatus(ctx)
	if err != nil || st.Listening != f.webAddr || st.Addr != f.webAddr || !st.On {
		t.Errorf("after refusals: %+v %v, want still on %s", st, err, f.webAddr)
	}
	if resp, _ := f.do(t, "GET", "/v1/ping", f.read, nil); resp.StatusCode != 200 {
		t.Errorf("the listener stopped serving after a refused move: %d", resp.StatusCode)
	}
}

// The listener's settings outlive the daemon: the next daemon of the home opens the same
// listener with the same tokens; off stays off.
func TestWebPersists(t *testing.T) {
	f := newWebFixture(t)
	f.s.closeWeb()
	next := newAPIServer(f.d, &control{})
	next.openWeb()
	defer next.closeWeb()
	next.web.mu.Lock()
	st := next.webStatusLocked()
	next.web.mu.Unlock()
	if st.Listening != f.webAddr {
		t.Fatalf("the next daemon listens on %q, want %q (%s)", st.Listening, f.webAddr, st.Error)
	}
	if resp, _ := f.do(t, "GET", "/v1/ping", f.read, nil); resp.StatusCode != 200 {
		t.Errorf("the read token after a restart: %d", resp.StatusCode)
	}
	if _, err := next.webSet(context.Background(), api.WebRequest{Off: true}); err != nil {
		t.Fatal(err)
	}
	third := newAPIServer(f.d, &control{})
	third.openWeb()
	third.web.mu.Lock()
	defer third.web.mu.Unlock()
	if third.web.ln != nil || third.web.cfg.On {
		t.Errorf("web turned off, yet the next daemon listens")
	}
}

// A read token sees an app's configuration but not the values of its environment (secrets:
// GET /v1/env is admin's); the admin token sees them.
func TestWebReadTokenHidesEnv(t *testing.T) {
	f := newWebFixture(t)
	cfg := config.NewApp()
	cfg.Name, cfg.Script, cfg.Args, cfg.Cwd = "secret", "sleep", []string{"600"}, os.TempDir()
	cfg.Env = map[string]string{"DB_PASSWORD": "hunter2"}
	if _, err := f.d.Start(context.Background(), api.StartRequest{App: cfg}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token, want string
	}{{f.read, hiddenValue}, {f.admin, "hunter2"}} {
		resp, b := f.do(t, "GET", "/v1/info?target=secret", tc.token, nil)
		var app api.App
		if resp.StatusCode != 200 || json.Unmarshal(b, &app) != nil {
			t.Fatalf("info: %d %s", resp.StatusCode, b)
		}
		if got := app.Config.Env["DB_PASSWORD"]; got != tc.want {
			t.Errorf("DB_PASSWORD = %q, want %q", got, tc.want)
		}
		if strings.Contains(string(b), "hunter2") != (tc.want == "hunter2") {
			t.Errorf("the answer %s the secret", map[bool]string{true: "holds", false: "lacks"}[strings.Contains(string(b), "hunter2")])
		}
	}
}

// A stream opened with a token ends when the tokens are rotated: the token it was opened with
// may be the one rotated away.
func TestWebStreamEndsOnRotation(t *testing.T) {
	f := newWebFixture(t)
	req, err := http.NewRequest("GET", f.url+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.read)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("events: %v %v", resp, err)
	}
	defer resp.Body.Close()
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		ended <- err
	}()
	if _, err := f.c.WebToken(context.Background(), api.WebTokenRequest{ReadOnly: true, Rotate: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the stream opened with the rotated token still runs 30s after the rotation")
	}
}

// The listener holds at most its cap of connections; one more is accepted only when one
// closes.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &limitListener{Listener: inner, slots: make(chan struct{}, 2)}
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted with a cap of two")
	case <-time.After(300 * time.Millisecond): // a window in which the third must not come
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("the third connection was not accepted after one closed")
	}
	second.Close()
	if n := connLimit(); n < 64 || n > maxStreams+256 {
		t.Errorf("connLimit() = %d, want 64..%d", n, maxStreams+256)
	}
}
