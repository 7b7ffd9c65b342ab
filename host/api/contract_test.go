package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
)

func TestDurationJSON(t *testing.T) {
	out := []struct {
		d    Duration
		want string
	}{
		{0, `"0s"`},
		{Duration(1500 * time.Millisecond), `"1.5s"`},
		{Duration(500 * time.Millisecond), `"500ms"`},
		{Duration(2 * time.Hour), `"2h0m0s"`},
	}
	for _, tt := range out {
		b, err := json.Marshal(tt.d)
		if err != nil || string(b) != tt.want {
			t.Errorf("marshal %d: %s, %v; want %s", int64(tt.d), b, err, tt.want)
		}
	}
	in := []struct {
		json string
		want Duration
		err  string // "" when it must decode
	}{
		{`"1.5s"`, Duration(1500 * time.Millisecond), ""},
		{`"500ms"`, Duration(500 * time.Millisecond), ""},
		// Numbers are nanoseconds, as Go encodes a time.Duration and clients before 0.2.0 sent.
		{`500000000`, Duration(500 * time.Millisecond), ""},
		{`0`, 0, ""},
		{`-20`, Duration(-20), ""},
		{`9223372036854775807`, Duration(math.MaxInt64), ""},
		{`"soon"`, 0, `"soon" (a duration is a string such as "1.5s" or "500ms", or a whole number of nanoseconds) into Go struct field .timeout`},
		{`""`, 0, `"" (a duration is a string`},
		{`2.5`, 0, `number 2.5 is not a whole number of nanoseconds`},
		{`1e3`, 0, `number 1e3 is not a whole number of nanoseconds`},
		{`99999999999999999999`, 0, `number 99999999999999999999 is too large`},
		{`true`, 0, `bool true (a duration is`},
		{`[1]`, 0, `array [1] (a duration is`},
		{`{"s": 1}`, 0, `object {"s": 1} (a duration is`},
	}
	for _, tt := range in {
		t.Run(tt.json, func(t *testing.T) {
			var v struct {
				Timeout Duration `json:"timeout"`
			}
			err := json.Unmarshal([]byte(`{"timeout": `+tt.json+`}`), &v)
			if tt.err == "" {
				if err != nil || v.Timeout != tt.want {
					t.Fatalf("got %v, %v; want %v", v.Timeout, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
		})
	}
	// null leaves the value alone, as for any JSON type.
	v := Duration(time.Second)
	if err := json.Unmarshal([]byte(`null`), &v); err != nil || v != Duration(time.Second) {
		t.Errorf("null: %v, %v", v, err)
	}
}

// The wire's AppConfig must carry every field of config.App, under the same JSON key, or an
// app would lose settings on its way to the daemon (start) or to the user (info).
func TestAppConfigMirrorsConfigApp(t *testing.T) {
	keys := func(typ reflect.Type) map[string]string {
		out := map[string]string{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			out[f.Name] = strings.Split(f.Tag.Get("json"), ",")[0]
		}
		return out
	}
	for _, pair := range [][2]reflect.Type{
		{reflect.TypeFor[config.App](), reflect.TypeFor[AppConfig]()},
		{reflect.TypeFor[config.HealthCheck](), reflect.TypeFor[HealthCheck]()},
	} {
		if c, w := keys(pair[0]), keys(pair[1]); !reflect.DeepEqual(c, w) {
			t.Errorf("%v has fields %v\n%v has %v", pair[0], c, pair[1], w)
		}
	}
	full := config.App{
		Name: "web", Script: "node app.js", Args: []string{"-v"}, Cwd: "/srv", Env: map[string]string{"A": "1"},
		Instances: 2, Port: "3000-3001", Autorestart: true, MaxRestarts: 3, MinUptime: time.Second,
		RestartDelay: 2 * time.Second, ExpBackoffRestartDelay: 100 * time.Millisecond, KillTimeout: 5 * time.Second,
		MaxMemoryRestart: 1 << 20, OutFile: "/o", ErrorFile: "/e",
		HealthCheck: &config.HealthCheck{URL: "http://127.0.0.1:{port}/", Interval: time.Second, Timeout: 500 * time.Millisecond, Retries: 2, Restart: true},
		WaitReady:   true, WaitTimeout: 7 * time.Second, LogMaxSize: 1 << 10, LogKeep: 4,
		Socket: config.SocketShared, Bind: "127.0.0.1", Ready: config.ReadyNotify, Watchdog: 3 * time.Second,
		EnvFile: []string{".env"}, CronRestart: "0 3 * * *", StopExitCodes: []int{0, 143}, Watch: []string{"."},
		IgnoreWatch: []string{"*.log"}, WatchDelay: 300 * time.Millisecond, WatchOptions: map[string]any{"usePolling": true},
		Time: true, LogDateFormat: "YYYY-MM-DD HH:mm:ss Z", LogType: config.LogTypeJSON, LogFile: "/all.log", MergeLogs: true,
		Namespace: "backend", PidFile: "/run/web.pid",
		ShutdownWithMessage: true, DependsOn: []config.Dependency{{App: "db", Condition: config.DependReady}},
	}
	if back := NewAppConfig(full).Config(); !reflect.DeepEqual(back, full) {
		t.Errorf("round trip through AppConfig:\n got %+v\nwant %+v", back, full)
	}
	// Every field set to something other than its zero value, so the round trip tests them all.
	rv := reflect.ValueOf(full)
	for i := range rv.NumField() {
		if rv.Field(i).IsZero() {
			t.Errorf("the round trip leaves %s at its zero value: set it", rv.Type().Field(i).Name)
		}
	}
}

// A start request carries its app with duration strings, never nanoseconds, and the daemon
// reads strings and whole milliseconds; an unknown key is refused, naming it.
func TestStartRequestWire(t *testing.T) {
	app := config.NewApp()
	app.Name, app.Script, app.KillTimeout = "web", "sleep 1", 1500*time.Millisecond
	b, err := json.Marshal(StartRequest{App: app, WaitTimeout: Duration(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kill_timeout":"1.5s"`, `"wait_timeout":"3s"`, `"min_uptime":"1s"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back StartRequest
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back.App, app) || back.WaitTimeout != Duration(3*time.Second) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	tests := []struct {
		body string
		want string // "" when it must decode
		kill time.Duration
	}{
		// A pre-0.2.0 client's nanoseconds mean what it meant.
		{`{"app": {"name": "a", "kill_timeout": 2500000000}}`, "", 2500 * time.Millisecond},
		{`{"app": {"name": "a", "kill_timeout": "2.5s"}}`, "", 2500 * time.Millisecond},
		{`{"app": {"name": "a", "kill_timeout": "long"}}`, `"long" (a duration is`, 0},
		{`{"app": {"name": "a", "colour": "red"}}`, `unknown field "colour"`, 0},
		{`{"app": {"name": "a"}, "if_exist": "keep"}`, `unknown field "if_exist"`, 0},
	}
	for _, tt := range tests {
		var r StartRequest
		err := json.Unmarshal([]byte(tt.body), &r)
		switch {
		case tt.want == "" && (err != nil || r.App.KillTimeout != tt.kill):
			t.Errorf("%s: %v, kill_timeout %v; want %v", tt.body, err, r.App.KillTimeout, tt.kill)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want %q", tt.body, err, tt.want)
		}
	}
}

// fakeDaemon serves handler on a unix socket, as the daemon does.
func fakeDaemon(t *testing.T, handler http.HandlerFunc) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "daemon.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return NewClient(sock)
}

// The client turns every error answer into an *Error with its code, the predicates see it
// through wrapping, and an answer without a code (an older daemon's {"error": ...}) gets the
// code of its status.
func TestClientErrorCodes(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		code   Code
		msg    string
		is     func(error) bool
	}{
		{"not found", 404, `{"code":"not_found","message":"process 'x' not found"}`, CodeNotFound, "process 'x' not found", IsNotFound},
		{"conflict", 409, `{"code":"conflict","message":"process 'web' already exists"}`, CodeConflict, "process 'web' already exists", IsConflict},
		{"invalid", 400, `{"code":"invalid","message":"bad request body: x"}`, CodeInvalid, "bad request body: x", IsInvalid},
		{"too large", 413, `{"code":"too_large","message":"request body is larger"}`, CodeTooLarge, "request body is larger", IsInvalid},
		{"unavailable", 503, `{"code":"unavailable","message":"shutting down"}`, CodeUnavailable, "shutting down", IsUnavailable},
		{"legacy not found", 404, `{"error":"process 'x' not found"}`, CodeNotFound, "process 'x' not found", IsNotFound},
		{"legacy invalid", 400, `{"error":"bad"}`, CodeInvalid, "bad", IsInvalid},
		{"no body", 502, ``, CodeInternal, "daemon answered 502 Bad Gateway", IsRemote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeDaemon(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			})
			_, err := c.Info(context.Background(), "x")
			wrapped := fmt.Errorf("start: %w", err)
			var e *Error
			if !errors.As(wrapped, &e) || e.Code != tt.code || e.Message != tt.msg || e.Status != tt.status {
				t.Fatalf("error %#v, want code %s, message %q, status %d", err, tt.code, tt.msg, tt.status)
			}
			if !tt.is(wrapped) {
				t.Errorf("predicate does not see %v", wrapped)
			}
			for _, other := range []func(error) bool{IsNotFound, IsConflict, IsInvalid, IsUnavailable} {
				if reflect.ValueOf(other).Pointer() != reflect.ValueOf(tt.is).Pointer() && other(err) {
					t.Errorf("%s: another predicate also holds", tt.code)
				}
			}
		})
	}
	if IsNotFound(nil) || IsRemote(errors.New("x")) || IsNotFound(ErrNoDaemon) {
		t.Error("a predicate holds for what is no API error")
	}
}

// The client builds every request from the route table: method, path and query.
func TestClientFollowsRoutes(t *testing.T) {
	var got atomic.Value
	c := fakeDaemon(t, func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Method + " " + r.URL.RequestURI())
		fmt.Fprint(w, `{}`)
	})
	ctx := context.Background()
	calls := []struct {
		call func() error
		want string
	}{
		{func() error { _, err := c.Info(ctx, "web app"); return err }, "GET /v1/info?target=web+app"},
		{func() error { _, err := c.PortFree(ctx, 8080); return err }, "GET /v1/ports/free?port=8080"},
		{func() error { _, err := c.Save(ctx); return err }, RouteSave.Pattern()},
		{func() error { return c.Kill(ctx) }, RouteKill.Pattern()},
		{func() error { _, err := c.Update(ctx); return err }, RouteUpdate.Pattern()},
		{func() error { return c.RemovePlugin(ctx, "p") }, RoutePluginRemove.Pattern()},
		{func() error { _, err := c.Reload(ctx, TargetRequest{Target: "all"}); return err }, RouteReload.Pattern()},
		{func() error { _, err := c.Env(ctx, "3"); return err }, "GET /v1/env?id=3"},
		{func() error { _, err := c.Signal(ctx, SignalRequest{Target: "web", Signal: "SIGUSR1"}); return err }, RouteSignal.Pattern()},
		{func() error { _, err := c.Reset(ctx, TargetRequest{Target: "web"}); return err }, RouteReset.Pattern()},
		{func() error { _, err := c.Scale(ctx, ScaleRequest{Name: "web", Instances: 2}); return err }, RouteScale.Pattern()},
		{func() error { _, err := c.WebStatus(ctx); return err }, RouteWeb.Pattern()},
		{func() error { _, err := c.Web(ctx, WebRequest{Off: true}); return err }, RouteWebSet.Pattern()},
		{func() error { _, err := c.WebToken(ctx, WebTokenRequest{ReadOnly: true}); return err }, RouteWebToken.Pattern()},
	}
	for _, tt := range calls {
		if err := tt.call(); err != nil {
			t.Errorf("%s: %v", tt.want, err)
		}
		if g := got.Load(); g != tt.want {
			t.Errorf("request %v, want %s", g, tt.want)
		}
	}
	seen := map[string]bool{}
	for _, r := range Routes() {
		// /metrics is where Prometheus looks by default.
		if seen[r.Pattern()] || !strings.HasPrefix(r.Path, "/v1/") && r != RouteMetrics {
			t.Errorf("route %s is repeated or outside /v1/", r)
		}
		seen[r.Pattern()] = true
	}
}

// The client reports a daemon of another version once, whatever the number of answers, from
// errors as from successes; a daemon of this version, or one that sends none, is not reported.
func TestClientVersionMismatch(t *testing.T) {
	tests := []struct {
		name   string
		header string
		status int
		told   []string
	}{
		{"same version", Version, 200, nil},
		{"other version", "9.9.9", 200, []string{"9.9.9"}},
		{"other version, errors", "9.9.9", 404, []string{"9.9.9"}},
		// Daemons before 0.2.0 sent no header: that is a mismatch too.
		{"no header", "", 200, []string{OlderVersion}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeDaemon(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.header != "" {
					w.Header().Set(VersionHeader, tt.header)
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, `{"code":"not_found","message":"x"}`)
			})
			var told []string
			c.OnVersionMismatch(func(v string) { told = append(told, v) })
			for range 3 {
				c.List(context.Background())
			}
			if !reflect.DeepEqual(told, tt.told) {
				t.Errorf("told %v, want %v", told, tt.told)
			}
			want := tt.header
			if want == "" {
				want = OlderVersion
			}
			if c.DaemonVersion() != want {
				t.Errorf("DaemonVersion %q, want %q", c.DaemonVersion(), want)
			}
		})
	}
}
