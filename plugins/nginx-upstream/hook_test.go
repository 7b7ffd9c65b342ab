package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// env is a temp dir with an output path and a reload script that records each invocation.
type env struct {
	dir, output, record, script string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{dir: dir, output: filepath.Join(dir, "upstreams.conf"), record: filepath.Join(dir, "reloads.log"),
		script: filepath.Join(dir, "reload.sh")}
	e.writeScript(t, e.script, "echo \"$*\" >> '"+e.record+"'\n")
	return e
}

func (e *env) writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// reloads returns the recorded invocations' arguments, one per call.
func (e *env) reloads(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(e.record)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func (e *env) read(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(e.output)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// config returns a configuration document for e with the given extra keys.
func (e *env) config(extra string) json.RawMessage {
	doc := fmt.Sprintf(`{"output": %q, "upstreams": {"web": "web_backend", "api": "api.v1"}, "reload": [%q, "reloaded"]`,
		e.output, e.script)
	if extra != "" {
		doc += ", " + extra
	}
	return json.RawMessage(doc + "}")
}

func configured(t *testing.T, e *env, extra string) *Hook {
	t.Helper()
	h := &Hook{}
	if err := h.Configure(context.Background(), e.config(extra)); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return h
}

const allDown = header + `
upstream api.v1 {
    # no instance of api is running
    server 127.0.0.1:9 down;
}

upstream web_backend {
    # no instance of web is running
    server 127.0.0.1:9 down;
}
`

func TestConfigureRefusals(t *testing.T) {
	e := newEnv(t)
	foreign := filepath.Join(e.dir, "foreign.conf")
	if err := os.WriteFile(foreign, []byte("upstream x { server 1.2.3.4:80; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := func(key string) string { // a valid document with key replaced or added
		keys := map[string]string{
			"output":    fmt.Sprintf("%q", e.output),
			"upstreams": `{"web": "web_backend"}`,
		}
		k, v, _ := strings.Cut(key, "=")
		if v == "" {
			delete(keys, k)
		} else {
			keys[k] = v
		}
		var parts []string
		for _, k := range sortedKeys(keys) {
			parts = append(parts, fmt.Sprintf("%q: %s", k, keys[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	tests := []struct{ name, config, want string }{
		{"null", `null`, `config must be a JSON object like {"output"`},
		{"array", `[]`, `config must be a JSON object`},
		{"unknown key", ok(`mode="x"`), `unknown config key(s) "mode"; known keys: "output", "upstreams", "reload", "pid_file", "host", "server_params"`},
		{"unknown keys", `{"b": 1, "a": 1}`, `unknown config key(s) "a", "b"`},
		{"no output", ok("output"), `"output" is required`},
		{"null output", ok("output=null"), `"output" is required`},
		{"output not a string", ok("output=1"), `"output" must be a string`},
		{"relative output", ok(`output="up.conf"`), `"output" must be an absolute path, got "up.conf"`},
		{"missing directory", ok(fmt.Sprintf("output=%q", filepath.Join(e.dir, "nope", "up.conf"))),
			fmt.Sprintf(`the directory of "output" %s does not exist: %s`, filepath.Join(e.dir, "nope", "up.conf"), filepath.Join(e.dir, "nope"))},
		{"output is a directory", ok(fmt.Sprintf("output=%q", e.dir)), fmt.Sprintf(`"output" %s exists and is not a regular file`, e.dir)},
		{"foreign file", ok(fmt.Sprintf("output=%q", foreign)),
			fmt.Sprintf(`%s exists and was not written by this plugin (its first line is not "%s"); remove it or choose another "output"`, foreign, header)},
		{"no upstreams", ok("upstreams"), `"upstreams" is required`},
		{"upstreams not an object", ok(`upstreams=["web"]`), `"upstreams" must be an object`},
		{"upstream not a string", ok(`upstreams={"web": 1}`), `"upstreams" must be an object`},
		{"empty upstreams", ok(`upstreams={}`), `"upstreams" is empty`},
		{"bad upstream name", ok(`upstreams={"web": "web backend"}`), `upstream name "web backend" for app "web" must match [A-Za-z0-9_.-]+`},
		{"upstream name with brace", ok(`upstreams={"web": "a{"}`), `upstream name "a{" for app "web" must match`},
		{"empty upstream name", ok(`upstreams={"web": ""}`), `upstream name "" for app "web" must match`},
		{"empty app name", ok(`upstreams={"": "x"}`), `"upstreams" has a bad app name ""`},
		{"app name with newline", ok(`upstreams={"a\nb": "x"}`), `"upstreams" has a bad app name "a\nb"`},
		{"duplicate upstream", ok(`upstreams={"web": "x", "api": "x"}`), `apps "api" and "web" both map to upstream "x"`},
		{"empty reload array", ok(`reload=[]`), `"reload" is an empty command`},
		{"empty reload program", ok(`reload=[""]`), `"reload" is an empty command`},
		{"empty reload string", ok(`reload=" "`), `"reload" is an empty command`},
		{"reload number", ok(`reload=1`), `"reload" must be an array of strings (a command run directly, e.g. ["nginx", "-s", "reload"]) or a string (run with /bin/sh -c)`},
		{"reload mixed array", ok(`reload=["nginx", 1]`), `"reload" must be an array of strings`},
		{"relative pid_file", ok(`pid_file="nginx.pid"`), `"pid_file" must be the absolute path of nginx's pid file (its "pid" directive, e.g. "/run/nginx.pid"), got "nginx.pid"`},
		{"pid_file not a string", ok(`pid_file=["/run/nginx.pid"]`), `"pid_file" must be the absolute path of nginx's pid file`},
		{"pid_file without reload", ok(`pid_file="/run/nginx.pid"`), `"pid_file" is only used to wait for nginx after "reload"; give "reload" too`},
		{"host not a string", ok(`host=1`), `"host" must be a string`},
		{"bad host", ok(`host="a b"`), `"host" must be an IP address or a host name, got "a b"`},
		{"host with port", ok(`host="127.0.0.1:80"`), `"host" must be an IP address or a host name, got "127.0.0.1:80"`},
		{"empty host", ok(`host=""`), `"host" must be an IP address or a host name, got ""`},
		{"server_params with semicolon", ok(`server_params="max_fails=0; down"`), `"server_params" "max_fails=0; down" must not contain ; { } # quotes`},
		{"server_params with brace", ok(`server_params="}"`), `must not contain`},
		{"server_params not a string", ok(`server_params=0`), `"server_params" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Hook{}
			err := h.Configure(context.Background(), json.RawMessage(tt.config))
			if err == nil {
				t.Fatalf("Configure(%s) accepted it", tt.config)
			}
			if !strings.HasPrefix(err.Error(), "nginx-upstream: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Configure(%s)\n error %q\nwant it to contain %q", tt.config, err, tt.want)
			}
			if _, err := os.Stat(e.output); !os.IsNotExist(err) {
				t.Errorf("a refused configuration wrote %s", e.output)
			}
			if b, _ := os.ReadFile(foreign); !strings.HasPrefix(string(b), "upstream x") {
				t.Errorf("the foreign file was changed: %q", b)
			}
		})
	}
}

func TestConfigureAccepts(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, extra string
		check       func(*config) string
	}{
		{"defaults", "", func(c *config) string {
			if c.host != "127.0.0.1" || c.serverParams != "max_fails=0" {
				return fmt.Sprintf("host %q, server_params %q", c.host, c.serverParams)
			}
			return ""
		}},
		{"argv reload", "", func(c *config) string {
			if !slices.Equal(c.reload, []string{e.script, "reloaded"}) {
				return fmt.Sprintf("reload %q", c.reload)
			}
			return ""
		}},
		{"shell reload", `"reload": "nginx -s reload && true"`, func(c *config) string {
			if !slices.Equal(c.reload, []string{"/bin/sh", "-c", "nginx -s reload && true"}) {
				return fmt.Sprintf("reload %q", c.reload)
			}
			return ""
		}},
		{"no reload", `"reload": null`, func(c *config) string {
			if c.reload != nil {
				return fmt.Sprintf("reload %q", c.reload)
			}
			return ""
		}},
		{"IPv6 host in brackets", `"host": "[::1]"`, func(c *config) string {
			if c.host != "::1" {
				return fmt.Sprintf("host %q", c.host)
			}
			return ""
		}},
		{"host name, no params", `"host": "backend.internal", "server_params": ""`, func(c *config) string {
			if c.host != "backend.internal" || c.serverParams != "" {
				return fmt.Sprintf("host %q, server_params %q", c.host, c.serverParams)
			}
			return ""
		}},
		{"params spaces squeezed", `"server_params": " max_fails=3   weight=2 "`, func(c *config) string {
			if c.serverParams != "max_fails=3 weight=2" {
				return fmt.Sprintf("server_params %q", c.serverParams)
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := configured(t, e, tt.extra)
			if msg := tt.check(h.cfg); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// step is one event given to a configured Hook and what should follow.
type step struct {
	ev      sdk.Event
	file    string // the whole file afterwards; "" means unchanged (not rewritten)
	reloads int    // reload invocations so far
}

func TestHandle(t *testing.T) {
	web := func(kind sdk.EventKind, ports, appPorts []int) sdk.Event {
		return sdk.Event{Kind: kind, App: "web", Ports: ports, AppPorts: appPorts, Time: time.Now()}
	}
	webUp := func(servers ...string) string {
		s := header + `
upstream api.v1 {
    # no instance of api is running
    server 127.0.0.1:9 down;
}

upstream web_backend {
`
		for _, sv := range servers {
			s += "    server " + sv + ";\n"
		}
		return s + "}\n"
	}
	tests := []struct {
		name  string
		extra string
		steps []step
	}{
		{"lifecycle", "", []step{
			{web(sdk.Starting, []int{8000}, nil), "", 0},
			{web(sdk.Started, []int{8000}, []int{8000}), webUp("127.0.0.1:8000 max_fails=0"), 1},
			{web(sdk.Started, []int{8001}, []int{8001, 8000, 8001}), webUp("127.0.0.1:8000 max_fails=0", "127.0.0.1:8001 max_fails=0"), 2},
			{web(sdk.Started, []int{8001}, []int{8000, 8001}), "", 2}, // unchanged
			{web(sdk.Stopping, []int{8000}, []int{8000, 8001}), webUp("127.0.0.1:8001 max_fails=0"), 3},
			{web(sdk.Stopped, []int{8000}, []int{8001}), "", 3},
			{web(sdk.Crashed, []int{8001}, []int{}), allDown, 4},
			{web(sdk.Errored, []int{8001}, nil), "", 4},
			{web(sdk.PortsChanged, []int{9000, 9001}, []int{9001, 9000}), webUp("127.0.0.1:9000 max_fails=0", "127.0.0.1:9001 max_fails=0"), 5},
			{web(sdk.Exited, []int{9000}, []int{9001}), webUp("127.0.0.1:9001 max_fails=0"), 6},
		}},
		{"ignored", "", []step{
			{sdk.Event{Kind: sdk.Started, App: "other", Ports: []int{1}, AppPorts: []int{1}}, "", 0},
			{sdk.Event{Kind: "restarted", App: "web", Ports: []int{1}, AppPorts: []int{1}}, "", 0},
			{web(sdk.Starting, []int{1}, []int{1}), "", 0},
			{web(sdk.Stopped, []int{1}, nil), "", 0},             // already down
			{web(sdk.Started, []int{0}, []int{0, 70000}), "", 0}, // no real port
		}},
		{"host and params", `"host": "::1", "server_params": ""`, []step{
			{web(sdk.Started, []int{8000}, []int{8000}), header + `
upstream api.v1 {
    # no instance of api is running
    server [::1]:9 down;
}

upstream web_backend {
    server [::1]:8000;
}
`, 1},
		}},
		{"no reload command", `"reload": null`, []step{
			{web(sdk.Started, []int{8000}, []int{8000}), webUp("127.0.0.1:8000 max_fails=0"), 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			h := configured(t, e, tt.extra)
			want := e.read(t)
			for i, s := range tt.steps {
				before, err := os.Stat(e.output)
				if err != nil {
					t.Fatal(err)
				}
				veto, err := h.Handle(context.Background(), s.ev)
				if veto != "" || err != nil {
					t.Fatalf("step %d (%s %v): veto %q, error %v", i, s.ev.Kind, s.ev.AppPorts, veto, err)
				}
				after, err := os.Stat(e.output)
				if err != nil {
					t.Fatal(err)
				}
				if s.file == "" {
					if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
						t.Errorf("step %d (%s %v): the file was rewritten", i, s.ev.Kind, s.ev.AppPorts)
					}
				} else {
					want = s.file
					if os.SameFile(before, after) {
						t.Errorf("step %d (%s %v): the file was changed in place, not replaced", i, s.ev.Kind, s.ev.AppPorts)
					}
				}
				if got := e.read(t); got != want {
					t.Errorf("step %d (%s %v): file\n%s\nwant\n%s", i, s.ev.Kind, s.ev.AppPorts, got, want)
				}
				if got := e.reloads(t); len(got) != s.reloads {
					t.Errorf("step %d (%s %v): %d reloads, want %d", i, s.ev.Kind, s.ev.AppPorts, len(got), s.reloads)
				}
			}
			for _, r := range e.reloads(t) {
				if r != "reloaded" {
					t.Errorf("reload command got arguments %q, want %q", r, "reloaded")
				}
			}
			assertOnlyFiles(t, e.dir, "reload.sh", "reloads.log", "upstreams.conf")
		})
	}
}

// assertOnlyFiles fails if dir holds anything but names (ignoring names that do not exist),
// such as a temporary file left behind.
func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if !slices.Contains(names, en.Name()) {
			t.Errorf("unexpected file %s left in %s", en.Name(), dir)
		}
	}
}

func TestConfigureWritesAndRecovers(t *testing.T) {
	e := newEnv(t)
	h := configured(t, e, "")
	if got := e.read(t); got != allDown {
		t.Fatalf("Configure wrote\n%s\nwant\n%s", got, allDown)
	}
	if len(e.reloads(t)) != 0 {
		t.Error("Configure ran the reload command")
	}
	for _, ev := range []sdk.Event{
		{Kind: sdk.Started, App: "web", AppPorts: []int{8000, 8001}},
		{Kind: sdk.Started, App: "api", AppPorts: []int{7000}},
	} {
		if _, err := h.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	written := e.read(t)
	before, _ := os.Stat(e.output)

	// A restarted plugin with the same config recovers every app's ports and does not rewrite.
	h2 := configured(t, e, "")
	if after, _ := os.Stat(e.output); !os.SameFile(before, after) {
		t.Error("Configure rewrote an up-to-date file")
	}
	want := map[string][]int{"web": {8000, 8001}, "api": {7000}}
	if fmt.Sprint(h2.live) != fmt.Sprint(want) {
		t.Errorf("recovered %v, want %v", h2.live, want)
	}
	// An event for one app keeps the other's recovered ports.
	if _, err := h2.Handle(context.Background(), sdk.Event{Kind: sdk.Stopping, App: "web", Ports: []int{8001}, AppPorts: []int{8000, 8001}}); err != nil {
		t.Fatal(err)
	}
	wantFile := strings.Replace(written, "    server 127.0.0.1:8001 max_fails=0;\n", "", 1)
	if got := e.read(t); got != wantFile || got == written {
		t.Errorf("after recovery and a stopping event:\n%s\nwant\n%s", got, wantFile)
	}

	// A new config (other params, one more app) recovers by upstream name and rewrites at once.
	doc := fmt.Sprintf(`{"output": %q, "upstreams": {"web": "web_backend", "api": "api.v1", "zed": "z"}, "server_params": "weight=2"}`, e.output)
	h3 := &Hook{}
	if err := h3.Configure(context.Background(), json.RawMessage(doc)); err != nil {
		t.Fatal(err)
	}
	want3 := header + `
upstream api.v1 {
    server 127.0.0.1:7000 weight=2;
}

upstream web_backend {
    server 127.0.0.1:8000 weight=2;
}

upstream z {
    # no instance of zed is running
    server 127.0.0.1:9 down;
}
`
	if got := e.read(t); got != want3 {
		t.Errorf("after reconfiguring:\n%s\nwant\n%s", got, want3)
	}
	assertOnlyFiles(t, e.dir, "reload.sh", "reloads.log", "upstreams.conf")
}

func TestRefusedConfigKeepsPrevious(t *testing.T) {
	e := newEnv(t)
	h := configured(t, e, "")
	if err := h.Configure(context.Background(), json.RawMessage(`{"output": "relative"}`)); err == nil {
		t.Fatal("accepted a relative output")
	}
	if _, err := h.Handle(context.Background(), sdk.Event{Kind: sdk.Started, App: "web", AppPorts: []int{8000}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.read(t), "server 127.0.0.1:8000 max_fails=0;") {
		t.Errorf("the previous configuration is not in force:\n%s", e.read(t))
	}
}

func TestEmptyExistingFileIsTakenOver(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(e.output, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	configured(t, e, "")
	if got := e.read(t); got != allDown {
		t.Errorf("got\n%s\nwant\n%s", got, allDown)
	}
	if st, _ := os.Stat(e.output); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want the replaced file's 0600", st.Mode().Perm())
	}
}

func TestNotConfigured(t *testing.T) {
	_, err := (&Hook{}).Handle(context.Background(), sdk.Event{Kind: sdk.Started, App: "web"})
	if err == nil || err.Error() != "nginx-upstream: not configured" {
		t.Errorf("error %v", err)
	}
}

func TestReloadFailure(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes
	tests := []struct {
		name    string
		script  string // body of the reload script; "" for a shell string reload
		reload  string // the "reload" value, when script is ""
		timeout time.Duration
		want    []string // substrings of the error
		cut     bool     // the output is longer than maxOutput
	}{
		{name: "exit status and output",
			script: "echo 'nginx: [emerg] unknown directive \"servr\"' >&2\necho '  and more  '\nexit 3\n",
			want: []string{
				"nginx-upstream: wrote ", "upstreams.conf but the reload command", "failed: exit status 3; output: ",
				"nginx: [emerg] unknown directive \"servr\"\n  and more",
			}},
		{name: "no output", script: "exit 1\n", want: []string{"failed: exit status 1"}},
		{name: "long output is cut", script: "printf '%s' '" + long + "'\nexit 1\n", cut: true,
			want: []string{"failed: exit status 1; output: ééé", "é..."}},
		{name: "shell string", reload: `"echo oops; exit 4"`,
			want: []string{`the reload command "echo oops; exit 4" failed: exit status 4; output: oops`}},
		{name: "missing program", reload: `["/nonexistent/nginx", "-s", "reload"]`,
			want: []string{`the reload command "/nonexistent/nginx -s reload" failed: `, "no such file or directory"}},
		{name: "deadline", script: "sleep 5\n", timeout: 200 * time.Millisecond,
			want: []string{"reload command", "did not finish within ", "ms; it was killed with every process of its group"}},
		{name: "deadline, child keeps the pipe", reload: `"sleep 5; echo never"`, timeout: 200 * time.Millisecond,
			want: []string{`the reload command "sleep 5; echo never" did not finish within `}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			reload := tt.reload
			if tt.script != "" {
				e.writeScript(t, e.script, "echo \"$*\" >> '"+e.record+"'\n"+tt.script)
				reload = fmt.Sprintf("[%q]", e.script)
			}
			h := &Hook{}
			doc := fmt.Sprintf(`{"output": %q, "upstreams": {"web": "w"}, "reload": %s}`, e.output, reload)
			if err := h.Configure(context.Background(), json.RawMessage(doc)); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			start := time.Now()
			_, err := h.Handle(ctx, sdk.Event{Kind: sdk.Started, App: "web", AppPorts: []int{8000}})
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Handle took %v", took)
			}
			if err == nil {
				t.Fatal("no error from a failing reload")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if _, out, _ := strings.Cut(err.Error(), "; output: "); len(out) > maxOutput || tt.cut && len(out) < maxOutput-3 {
				t.Errorf("the output in the error is %d bytes, want at most %d (and close to it when cut)", len(out), maxOutput)
			}
			if !strings.Contains(e.read(t), "server 127.0.0.1:8000") {
				t.Error("the file was not written before the reload")
			}
		})
	}
}

// marked lists the live processes (zombies aside) whose environment holds marker.
func marked(marker string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(append(env, 0), []byte(marker+"\x00")) {
			continue
		}
		if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// A reload command that runs out of time is killed with everything it started: a shell's
// background job included, which before outlived it by a minute (only the command itself was
// killed). The error says the command timed out, and comes back within the call's time.
func TestReloadTimeoutKillsItsProcesses(t *testing.T) {
	marker := fmt.Sprintf("NGINX_UPSTREAM_RELOAD_TEST=%d-%d", os.Getpid(), time.Now().UnixNano())
	name, value, _ := strings.Cut(marker, "=")
	t.Setenv(name, value) // the reload command inherits it, and so does all it starts
	e := newEnv(t)
	h := &Hook{}
	doc := fmt.Sprintf(`{"output": %q, "upstreams": {"web": "w"}, "reload": %q}`, e.output, `sh -c 'sleep 60 & sleep 60'`)
	if err := h.Configure(context.Background(), json.RawMessage(doc)); err != nil {
		t.Fatal(err)
	}
	// Long enough that the reserve the hook keeps for killing and answering (a quarter of the
	// call, at most 500ms) is not eaten by a loaded machine's scheduling.
	const timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	_, err := h.Handle(ctx, sdk.Event{Kind: sdk.Started, App: "web", AppPorts: []int{8000}})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), `the reload command "sh -c 'sleep 60 & sleep 60'" did not finish within `) {
		t.Errorf("Handle = %v, want the reload's timeout", err)
	}
	if took > timeout {
		t.Errorf("Handle took %s, more than the call's %s", took, timeout)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := marked(marker)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				syscall.Kill(p, syscall.SIGKILL)
			}
			t.Fatalf("processes of the reload command left running: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloadRetried: after a failed reload, the next event retries it even with no change.
func TestReloadRetried(t *testing.T) {
	e := newEnv(t)
	flag := filepath.Join(e.dir, "fail")
	e.writeScript(t, e.script, "echo \"$*\" >> '"+e.record+"'\n[ -e '"+flag+"' ] && exit 1\nexit 0\n")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := configured(t, e, "")
	ev := sdk.Event{Kind: sdk.Started, App: "web", AppPorts: []int{8000}}
	steps := []struct {
		fail    bool
		wantErr bool
		reloads int
	}{
		{true, true, 1},   // changed, reload fails
		{true, true, 2},   // unchanged, retried, fails again
		{false, false, 3}, // unchanged, retried, succeeds
		{false, false, 3}, // unchanged, nothing to do
	}
	for i, s := range steps {
		if !s.fail {
			_ = os.Remove(flag)
		}
		_, err := h.Handle(context.Background(), ev)
		if (err != nil) != s.wantErr {
			t.Errorf("step %d: error %v, want error: %v", i, err, s.wantErr)
		}
		if got := len(e.reloads(t)); got != s.reloads {
			t.Errorf("step %d: %d reloads, want %d", i, got, s.reloads)
		}
	}
}

func TestConcurrentHandle(t *testing.T) {
	e := newEnv(t)
	doc := fmt.Sprintf(`{"output": %q, "upstreams": {"a": "a", "b": "b", "c": "c", "d": "d"}}`, e.output)
	h := &Hook{}
	if err := h.Configure(context.Background(), json.RawMessage(doc)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, app := range []string{"a", "b", "c", "d"} {
		wg.Go(func() {
			for n := 1; n <= 20; n++ {
				ports := []int{}
				for p := range n {
					ports = append(ports, 1000*(i+1)+p)
				}
				if _, err := h.Handle(context.Background(), sdk.Event{Kind: sdk.Started, App: app, AppPorts: ports}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got := e.read(t)
	for i := range 4 {
		for p := range 20 {
			if line := fmt.Sprintf("server 127.0.0.1:%d max_fails=0;", 1000*(i+1)+p); !strings.Contains(got, line) {
				t.Errorf("missing %q", line)
			}
		}
	}
	assertOnlyFiles(t, e.dir, "reload.sh", "upstreams.conf")
}

func TestOverGRPC(t *testing.T) {
	e := newEnv(t)
	client, server := plugin.TestPluginGRPCConn(t, false, sdk.TestPluginSet(sdk.ServeOpts{Hook: &Hook{}}))
	t.Cleanup(func() {
		server.Stop()
		_ = client.Close()
	})
	raw, err := client.Dispense(sdk.KindHook)
	if err != nil {
		t.Fatal(err)
	}
	h := raw.(sdk.Hook)
	ctx := context.Background()

	err = h.Configure(ctx, json.RawMessage(`{"output": "x.conf", "upstreams": {"web": "w"}}`))
	if !sdk.IsConfigError(err) || err.Error() != `nginx-upstream: "output" must be an absolute path, got "x.conf"` {
		t.Errorf("bad config: %v (config error: %v)", err, sdk.IsConfigError(err))
	}
	if err := h.Configure(ctx, e.config("")); err != nil {
		t.Fatal(err)
	}
	veto, err := h.Handle(ctx, sdk.Event{Kind: sdk.Started, App: "web", Ports: []int{8000}, AppPorts: []int{8000}, Time: time.Now()})
	if veto != "" || err != nil {
		t.Fatalf("veto %q, err %v", veto, err)
	}
	if !strings.Contains(e.read(t), "    server 127.0.0.1:8000 max_fails=0;\n") {
		t.Errorf("file:\n%s", e.read(t))
	}
	if len(e.reloads(t)) != 1 {
		t.Errorf("%d reloads, want 1", len(e.reloads(t)))
	}
}
