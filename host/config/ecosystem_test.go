package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// ecoFile is the file name ParseJSON is given in these tests; every error must start with it.
const ecoFile = "eco.json"

// ecoParse parses doc as the file eco.json in baseDir.
func ecoParse(t *testing.T, doc, baseDir string) ([]App, error) {
	t.Helper()
	return ParseJSON([]byte(doc), ecoFile, baseDir)
}

// ecoWant is an App with every default applied, named name, running script, in cwd.
func ecoWant(name, script, cwd string) App {
	a := NewApp()
	a.Name, a.Script, a.Cwd = name, script, cwd
	return a
}

func TestEcosystemParseJSONValid(t *testing.T) {
	const base = "/srv/eco"
	tests := []struct {
		name string
		doc  string
		want []App
	}{
		{
			name: "single app object with defaults",
			doc:  `{"name": "web", "script": "node"}`,
			want: []App{ecoWant("web", "node", base)},
		},
		{
			name: "apps array",
			doc:  `{"apps": [{"name": "a", "script": "./a"}, {"name": "b", "script": "./b"}]}`,
			want: []App{ecoWant("a", "./a", base), ecoWant("b", "./b", base)},
		},
		{
			name: "name defaults to the script's base name without extension",
			doc:  `{"apps": [{"script": "server.js"}, {"script": "/usr/local/bin/worker"}, {"script": "./bin/api.py"}]}`,
			want: []App{
				ecoWant("server", "server.js", base),
				ecoWant("worker", "/usr/local/bin/worker", base),
				ecoWant("api", "./bin/api.py", base),
			},
		},
		{
			name: "every key set",
			doc: `{"apps": [{
				"name": "full", "script": "node", "args": ["server.js", "--flag", "a b"],
				"cwd": "/opt/app", "env": {"S": "text", "N": 42, "F": 1.5, "B": true, "Z": false},
				"instances": 3, "port": "3000-3002", "autorestart": false, "max_restarts": 7,
				"min_uptime": 1500, "restart_delay": "2s", "exp_backoff_restart_delay": 100,
				"kill_timeout": "250ms", "max_memory_restart": "200M",
				"out_file": "logs/out.log", "error_file": "/var/log/err.log"
			}]}`,
			want: []App{{
				Name: "full", Script: "node", Args: []string{"server.js", "--flag", "a b"},
				Cwd: "/opt/app", Env: map[string]string{"S": "text", "N": "42", "F": "1.5", "B": "true", "Z": "false"},
				Instances: 3, Port: "3000-3002", Autorestart: false, MaxRestarts: 7,
				MinUptime: 1500 * time.Millisecond, RestartDelay: 2 * time.Second,
				ExpBackoffRestartDelay: 100 * time.Millisecond, KillTimeout: 250 * time.Millisecond,
				MaxMemoryRestart: 200 << 20,
				OutFile:          "/opt/app/logs/out.log", ErrorFile: "/var/log/err.log",
			}},
		},
		{
			name: "args as a string is split like a shell",
			doc:  `{"script": "python3", "args": "-m uvicorn 'main:app' --port \"80 80\""}`,
			want: []App{func() App {
				a := ecoWant("python3", "python3", base)
				a.Args = []string{"-m", "uvicorn", "main:app", "--port", "80 80"}
				return a
			}()},
		},
		{
			name: "args array with numbers and booleans",
			doc:  `{"script": "srv", "args": ["--workers", 4, "--debug", true]}`,
			want: []App{func() App {
				a := ecoWant("srv", "srv", base)
				a.Args = []string{"--workers", "4", "--debug", "true"}
				return a
			}()},
		},
		{
			name: "instances max is one per CPU",
			doc:  `{"script": "w", "instances": "max"}`,
			want: []App{func() App {
				a := ecoWant("w", "w", base)
				a.Instances = runtime.NumCPU()
				return a
			}()},
		},
		{
			name: "instances as a numeric string",
			doc:  `{"script": "w", "instances": "2"}`,
			want: []App{func() App {
				a := ecoWant("w", "w", base)
				a.Instances = 2
				return a
			}()},
		},
		{
			name: "port as a number",
			doc:  `{"script": "w", "port": 3000}`,
			want: []App{func() App {
				a := ecoWant("w", "w", base)
				a.Port = "3000"
				return a
			}()},
		},
		{
			name: "port as a string, single, range and auto",
			doc: `{"apps": [{"name": "s", "script": "w", "port": "3000"},
				{"name": "r", "script": "w", "instances": 4, "port": "3000-3003"},
				{"name": "a", "script": "w", "instances": 3, "port": "auto:5000-5100"}]}`,
			want: []App{
				func() App { a := ecoWant("s", "w", base); a.Port = "3000"; return a }(),
				func() App { a := ecoWant("r", "w", base); a.Instances, a.Port = 4, "3000-3003"; return a }(),
				func() App { a := ecoWant("a", "w", base); a.Instances, a.Port = 3, "auto:5000-5100"; return a }(),
			},
		},
		{
			name: "durations as strings and ms numbers",
			doc: `{"script": "w", "min_uptime": "2s", "restart_delay": 250,
				"exp_backoff_restart_delay": "100ms", "kill_timeout": 3000}`,
			want: []App{func() App {
				a := ecoWant("w", "w", base)
				a.MinUptime, a.RestartDelay = 2*time.Second, 250*time.Millisecond
				a.ExpBackoffRestartDelay, a.KillTimeout = 100*time.Millisecond, 3*time.Second
				return a
			}()},
		},
		{
			name: "zero durations",
			doc:  `{"script": "w", "min_uptime": 0, "kill_timeout": "0s"}`,
			want: []App{func() App {
				a := ecoWant("w", "w", base)
				a.MinUptime, a.KillTimeout = 0, 0
				return a
			}()},
		},
		{
			name: "max_memory_restart as a number of bytes",
			doc:  `{"script": "w", "max_memory_restart": 104857600}`,
			want: []App{func() App {
				a := ecoWant("w", "w", base)
				a.MaxMemoryRestart = 100 << 20
				return a
			}()},
		},
		{
			name: "max_memory_restart with other units",
			doc:  `{"apps": [{"name": "k", "script": "w", "max_memory_restart": "512K"}, {"name": "g", "script": "w", "max_memory_restart": "1G"}]}`,
			want: []App{
				func() App { a := ecoWant("k", "w", base); a.MaxMemoryRestart = 512 << 10; return a }(),
				func() App { a := ecoWant("g", "w", base); a.MaxMemoryRestart = 1 << 30; return a }(),
			},
		},
		{
			name: "autorestart true and max_restarts 0",
			doc:  `{"script": "w", "autorestart": true, "max_restarts": 0}`,
			want: []App{func() App {
				a := ecoWant("w", "w", base)
				a.MaxRestarts = 0
				return a
			}()},
		},
		{
			name: "relative cwd and logs",
			doc:  `{"script": "w", "cwd": "sub/dir", "out_file": "out.log", "error_file": "../err.log"}`,
			want: []App{func() App {
				a := ecoWant("w", "w", base+"/sub/dir")
				a.OutFile, a.ErrorFile = base+"/sub/dir/out.log", base+"/sub/err.log"
				return a
			}()},
		},
		{
			name: "logs relative to the default cwd",
			doc:  `{"script": "w", "out_file": "logs/o.log"}`,
			want: []App{func() App {
				a := ecoWant("w", "w", base)
				a.OutFile = base + "/logs/o.log"
				return a
			}()},
		},
		{
			name: "empty env object",
			doc:  `{"script": "w", "env": {}}`,
			want: []App{func() App {
				a := ecoWant("w", "w", base)
				a.Env = map[string]string{}
				return a
			}()},
		},
		{
			name: "surrounding whitespace and a trailing newline",
			doc:  "\n\t {\"script\": \"w\"}\n\n",
			want: []App{ecoWant("w", "w", base)},
		},
		{
			name: "unicode names",
			doc:  `{"name": "café-api", "script": "w"}`,
			want: []App{ecoWant("café-api", "w", base)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ecoParse(t, tt.doc, base)
			if err != nil {
				t.Fatalf("ParseJSON: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseJSON:\n got  %+v\n want %+v", got, tt.want)
			}
			for i := range got {
				if err := got[i].Validate(); err != nil {
					t.Errorf("apps[%d] does not validate: %v", i, err)
				}
			}
		})
	}
}

// Absent keys give exactly NewApp's defaults, which follow PM2.
func TestEcosystemDefaults(t *testing.T) {
	got, err := ecoParse(t, `{"script": "./srv"}`, "/d")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d apps, want 1", len(got))
	}
	a := got[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", a.Name, "srv"},
		{"cwd", a.Cwd, "/d"},
		{"instances", a.Instances, 1},
		{"autorestart", a.Autorestart, true},
		{"max_restarts", a.MaxRestarts, DefaultMaxRestarts},
		{"min_uptime", a.MinUptime, DefaultMinUptime},
		{"kill_timeout", a.KillTimeout, DefaultKillTimeout},
		{"restart_delay", a.RestartDelay, time.Duration(0)},
		{"exp_backoff_restart_delay", a.ExpBackoffRestartDelay, time.Duration(0)},
		{"max_memory_restart", a.MaxMemoryRestart, int64(0)},
		{"port", a.Port, ""},
		{"out_file", a.OutFile, ""},
		{"error_file", a.ErrorFile, ""},
		{"args", len(a.Args), 0},
		{"env", len(a.Env), 0},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.what, c.got, c.want)
		}
	}
}

// LoadFile resolves cwd against the file's directory and logs against the cwd, and names
// errors with the file's base name.
func TestEcosystemLoadFilePaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ecosystem.json")
	doc := `{"apps": [
		{"name": "rel", "script": "w", "cwd": "app", "out_file": "o.log", "error_file": "logs/e.log"},
		{"name": "def", "script": "w", "out_file": "o.log"},
		{"name": "abs", "script": "w", "cwd": "/opt/x", "out_file": "/tmp/o.log"}
	]}`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	// Load through a relative path too: the result must not depend on the working directory.
	for _, p := range []string{path, ecoRel(t, path)} {
		apps, err := LoadFile(p)
		if err != nil {
			t.Fatalf("LoadFile(%s): %v", p, err)
		}
		want := [][3]string{
			{filepath.Join(dir, "app"), filepath.Join(dir, "app", "o.log"), filepath.Join(dir, "app", "logs", "e.log")},
			{dir, filepath.Join(dir, "o.log"), ""},
			{"/opt/x", "/tmp/o.log", ""},
		}
		if len(apps) != len(want) {
			t.Fatalf("LoadFile(%s): %d apps, want %d", p, len(apps), len(want))
		}
		for i, w := range want {
			if got := [3]string{apps[i].Cwd, apps[i].OutFile, apps[i].ErrorFile}; got != w {
				t.Errorf("LoadFile(%s) apps[%d] (%s): cwd/out/err = %q, want %q", p, i, apps[i].Name, got, w)
			}
		}
	}
	// An error names the file.
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"script": "w", "instnaces": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(bad)
	if err == nil || !strings.HasPrefix(err.Error(), "bad.json: apps[0]: ") || !strings.Contains(err.Error(), `"instnaces"`) {
		t.Errorf("LoadFile(bad.json) error = %v, want it to start with \"bad.json: apps[0]: \" and name \"instnaces\"", err)
	}
	// A missing file names the path.
	missing := filepath.Join(dir, "missing.json")
	if _, err := LoadFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadFile(missing) error = %v, want it to name %s", err, missing)
	}
}

// ecoRel returns path relative to the working directory (or path itself when it cannot be).
func ecoRel(t *testing.T, path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil {
		return path
	}
	return rel
}

// The unknown-key error has exactly DESIGN §5's shape, prefixed with the file.
func TestEcosystemUnknownKeyShape(t *testing.T) {
	tests := []struct {
		doc, want string
	}{
		{
			`{"apps": [{"script": "a"}, {"script": "b", "instnaces": 2}]}`,
			`eco.json: apps[1]: unknown key "instnaces" (did you mean "instances"?)`,
		},
		{
			`{"apps": [{"script": "a"}, {"name": "web", "script": "b", "instnaces": 2}]}`,
			`eco.json: apps[1] (web): unknown key "instnaces" (did you mean "instances"?)`,
		},
		{
			`{"name": "web", "scirpt": "b"}`,
			`eco.json: apps[0] (web): unknown key "scirpt" (did you mean "script"?)`,
		},
		{
			`{"script": "b", "max_restart": 3}`,
			`eco.json: apps[0]: unknown key "max_restart" (did you mean "max_restarts"?)`,
		},
		{
			`{"script": "b", "enviroment": {}}`,
			`eco.json: apps[0]: unknown key "enviroment"`,
		},
		{
			`{"apps": [{"script": "a"}, {"script": "b", "totally_unrelated": 1}]}`,
			`eco.json: apps[1]: unknown key "totally_unrelated"`,
		},
		{
			`{"script": "b", "x": 1}`,
			`eco.json: apps[0]: unknown key "x"`,
		},
	}
	for _, tt := range tests {
		_, err := ecoParse(t, tt.doc, "/d")
		if err == nil {
			t.Errorf("%s: no error, want %q", tt.doc, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("%s:\n got  %q\n want %q", tt.doc, err.Error(), tt.want)
		}
	}
}

func TestEcosystemParseJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the error, which also always starts with "eco.json: "
	}{
		// Document shape.
		{"empty file", ``, []string{"empty"}},
		{"whitespace only", " \n\t\r\n ", []string{"empty"}},
		{"truncated", `{"apps": [{"name": "a", "script": "w"`, []string{"truncated"}},
		{"truncated after apps", `{"apps": [`, []string{"truncated"}},
		{"syntax error names the line", "{\n\"script\": \"w\",\n\"name\": oops\n}", []string{"line 3", "invalid JSON"}},
		{"empty array at top level", `[]`, []string{`"apps" is empty`}},
		{"number at top level", `42`, []string{"top level must be an object", "a number"}},
		{"string at top level", `"w"`, []string{"top level must be an object", "a string"}},
		{"null at top level", `null`, []string{"top level must be an object", "null"}},
		{"trailing object", `{"script": "w"} {"script": "x"}`, []string{"trailing data"}},
		{"trailing word", `{"script": "w"} x`, []string{"trailing data"}},
		{"trailing brace", `{"script": "w"}}`, []string{"trailing data"}},
		{"trailing bracket", `{"apps": [{"script": "w"}]}]`, []string{"trailing data"}},
		{"apps a string", `{"apps": "w"}`, []string{`"apps" must be an array`, "a string"}},
		{"apps a bare array of non-objects", `[1, 2]`, []string{"apps[0]", "a number"}},
		{"apps null", `{"apps": null}`, []string{`"apps" must be an array`, "null"}},
		{"apps empty", `{"apps": []}`, []string{`"apps" is empty`}},
		{"apps beside a misspelt key", `{"apps": [{"script": "w"}], "app": {}}`, []string{`"app"`, `did you mean "apps"`}},
		{"app not an object", `{"apps": [{"script": "w"}, 5]}`, []string{"apps[1]", "app object", "a number"}},
		{"non-UTF-8 names the line", "{\n\"script\": \"w\",\n\"name\": \"caf\xe9\"\n}", []string{"line 3", "UTF-8"}},
		{"non-UTF-8 on line 1", "{\"script\": \"\xff\"}", []string{"line 1", "UTF-8"}},

		// Unknown and unbuilt keys.
		{"unknown key with suggestion", `{"apps": [{"script": "a"}, {"script": "b", "instnaces": 2}]}`, []string{"apps[1]", `unknown key "instnaces"`, `did you mean "instances"`}},
		{"health_check off loopback", `{"name": "web", "script": "w", "health_check": {"url": "http://10.1.2.3/health"}}`, []string{"apps[0] (web)", "health_check", "10.1.2.3", "not this machine's loopback"}},
		{"health_check not a URL", `{"name": "web", "script": "w", "port": 3000, "health_check": {"url": "http://127.0.0.1:{port}/%zz"}}`, []string{"apps[0] (web)", "health_check", "is not a URL"}},
		{"health_check scheme", `{"name": "web", "script": "w", "health_check": {"url": "ftp://127.0.0.1/"}}`, []string{"health_check", "must start with http://"}},
		{"health_check port without port", `{"name": "web", "script": "w", "health_check": {"url": "http://127.0.0.1:{port}/"}}`, []string{"health_check", "uses {port} but the app has no port"}},
		{"health_check zero interval", `{"name": "web", "script": "w", "health_check": {"script": "true", "interval": 0}}`, []string{`"health_check"`, "interval must be positive"}},
		{"health_check negative timeout", `{"name": "web", "script": "w", "health_check": {"script": "true", "timeout": "-1s"}}`, []string{`"health_check"`, "timeout"}},
		{"health_check zero retries", `{"name": "web", "script": "w", "health_check": {"script": "true", "retries": 0}}`, []string{`"health_check"`, "retries must be a whole number from 1"}},
		{"health_check both", `{"name": "web", "script": "w", "health_check": {"script": "true", "url": "http://localhost/"}}`, []string{"health_check", "not both"}},
		{"health_check neither", `{"name": "web", "script": "w", "health_check": {"retries": 2}}`, []string{"health_check", "set url"}},
		{"health_check typo", `{"name": "web", "script": "w", "health_check": {"urll": "http://localhost/"}}`, []string{`"health_check"`, `unknown key "urll"`, `did you mean "url"`}},
		{"health_check not object", `{"name": "web", "script": "w", "health_check": "http://localhost/"}`, []string{`"health_check"`, "must be an object"}},
		{"wait_ready not bool", `{"apps": [{"script": "a"}, {"name": "web", "script": "w", "wait_ready": "yes"}]}`, []string{"apps[1] (web)", `"wait_ready"`, "true or false"}},
		{"wait_timeout bad", `{"name": "web", "script": "w", "wait_timeout": "soon"}`, []string{`"wait_timeout"`}},
		{"log_max_size Q", `{"name": "web", "script": "w", "log_max_size": "12Q"}`, []string{`"log_max_size"`, "12Q"}},
		{"log_max_size tiny", `{"name": "web", "script": "w", "log_max_size": "1K"}`, []string{"log_max_size must be at least 64K"}},
		{"log_keep zero", `{"name": "web", "script": "w", "log_keep": 0}`, []string{`"log_keep"`, "1 to 1000"}},

		// Wrong types, for every key.
		{"name number", `{"name": 5, "script": "w"}`, []string{"apps[0]", `"name"`, "string", "a number"}},
		{"name null", `{"name": null, "script": "w"}`, []string{"apps[0]", `"name"`, "null"}},
		{"script number", `{"name": "a", "script": 5}`, []string{"apps[0] (a)", `"script"`, "string"}},
		{"script array", `{"name": "a", "script": ["node"]}`, []string{"apps[0] (a)", `"script"`, "an array"}},
		{"args number", `{"name": "a", "script": "w", "args": 5}`, []string{"apps[0] (a)", `"args"`}},
		{"args object", `{"name": "a", "script": "w", "args": {}}`, []string{"apps[0] (a)", `"args"`, "an object"}},
		{"args element object", `{"name": "a", "script": "w", "args": ["x", {}]}`, []string{"apps[0] (a)", `"args"`, "[1]"}},
		{"args element null", `{"name": "a", "script": "w", "args": [null]}`, []string{"apps[0] (a)", `"args"`, "[0]", "null"}},
		{"args unterminated quote", `{"name": "a", "script": "w", "args": "'x"}`, []string{"apps[0] (a)", `"args"`, "quote"}},
		{"cwd number", `{"name": "a", "script": "w", "cwd": 1}`, []string{"apps[0] (a)", `"cwd"`, "string"}},
		{"env array", `{"name": "a", "script": "w", "env": ["A=1"]}`, []string{"apps[0] (a)", `"env"`, "an array"}},
		{"env string", `{"name": "a", "script": "w", "env": "A=1"}`, []string{"apps[0] (a)", `"env"`, "a string"}},
		{"env name with =", `{"name": "a", "script": "w", "env": {"A=B": "1"}}`, []string{"apps[0] (a)", "env", "A=B"}},
		{"instances bool", `{"name": "a", "script": "w", "instances": true}`, []string{"apps[0] (a)", `"instances"`, "a boolean"}},
		// instances 0 and -1 count CPUs, as in PM2: TestPM2Corpus.
		{"instances fraction", `{"name": "a", "script": "w", "instances": "1/2"}`, []string{"apps[0] (a)", `"instances"`, "not valid"}},
		{"instances abc", `{"name": "a", "script": "w", "instances": "abc"}`, []string{"apps[0] (a)", `"instances"`, `"abc"`}},
		{"instances 1.5", `{"name": "a", "script": "w", "instances": 1.5}`, []string{`apps[0] (a): "instances": 1.5 is not a whole number`}},
		{"instances too many", `{"name": "a", "script": "w", "instances": 100000}`, []string{"apps[0] (a)", `"instances"`, "too many"}},
		{"port bool", `{"name": "a", "script": "w", "port": true}`, []string{"apps[0] (a)", `"port"`, "a boolean"}},
		{"port array", `{"name": "a", "script": "w", "port": [3000]}`, []string{"apps[0] (a)", `"port"`, "an array"}},
		{"port fraction", `{"name": "a", "script": "w", "port": 3000.5}`, []string{`apps[0] (a): "port": 3000.5 is not a whole number`}},
		{"autorestart string", `{"name": "a", "script": "w", "autorestart": "yes"}`, []string{"apps[0] (a)", `"autorestart"`, "true or false"}},
		{"autorestart number", `{"name": "a", "script": "w", "autorestart": 1}`, []string{"apps[0] (a)", `"autorestart"`, "a number"}},
		{"max_restarts string", `{"name": "a", "script": "w", "max_restarts": "3"}`, []string{"apps[0] (a)", `"max_restarts"`, "a string"}},
		{"max_restarts negative", `{"name": "a", "script": "w", "max_restarts": -1}`, []string{"apps[0] (a)", `"max_restarts"`, "-1"}},
		{"max_restarts fraction", `{"name": "a", "script": "w", "max_restarts": 2.5}`, []string{"apps[0] (a)", `"max_restarts"`, "2.5"}},
		{"min_uptime bool", `{"name": "a", "script": "w", "min_uptime": true}`, []string{"apps[0] (a)", `"min_uptime"`, "a boolean"}},
		{"restart_delay object", `{"name": "a", "script": "w", "restart_delay": {}}`, []string{"apps[0] (a)", `"restart_delay"`, "an object"}},
		{"exp_backoff_restart_delay array", `{"name": "a", "script": "w", "exp_backoff_restart_delay": []}`, []string{"apps[0] (a)", `"exp_backoff_restart_delay"`, "an array"}},
		{"kill_timeout null", `{"name": "a", "script": "w", "kill_timeout": null}`, []string{"apps[0] (a)", `"kill_timeout"`, "null"}},
		{"max_memory_restart bool", `{"name": "a", "script": "w", "max_memory_restart": true}`, []string{"apps[0] (a)", `"max_memory_restart"`, "a boolean"}},
		{"out_file number", `{"name": "a", "script": "w", "out_file": 1}`, []string{"apps[0] (a)", `"out_file"`, "string"}},
		{"error_file bool", `{"name": "a", "script": "w", "error_file": false}`, []string{"apps[0] (a)", `"error_file"`, "string"}},

		// Numbers that are not whole, for every key that takes a whole number.
		{"max_restarts 2.5", `{"name": "a", "script": "w", "max_restarts": 2.5}`, []string{`apps[0] (a): "max_restarts": 2.5 is not a whole number`}},
		{"log_keep 1.5", `{"name": "a", "script": "w", "log_keep": 1.5}`, []string{`apps[0] (a): "log_keep": 1.5 is not a whole number`}},
		{"min_uptime 0.5 ms", `{"name": "a", "script": "w", "min_uptime": 0.5}`, []string{`apps[0] (a): "min_uptime": 0.5 is not a whole number`}},
		{"restart_delay 1e-3", `{"name": "a", "script": "w", "restart_delay": 1e-3}`, []string{`apps[0] (a): "restart_delay": 1e-3 is not a whole number`}},
		{"kill_timeout 99.9", `{"name": "a", "script": "w", "kill_timeout": 99.9}`, []string{`apps[0] (a): "kill_timeout": 99.9 is not a whole number`}},
		{"wait_timeout 2.5", `{"name": "a", "script": "w", "wait_timeout": 2.5}`, []string{`apps[0] (a): "wait_timeout": 2.5 is not a whole number`}},
		{"max_memory_restart 1.5", `{"name": "a", "script": "w", "max_memory_restart": 1048576.5}`, []string{`apps[0] (a): "max_memory_restart": 1048576.5 is not a whole number`}},
		{"log_max_size 1e400", `{"name": "a", "script": "w", "log_max_size": 1e400}`, []string{`apps[0] (a): "log_max_size": 1e400 is too large`}},
		{"port 1e20", `{"name": "a", "script": "w", "port": 1e20}`, []string{`apps[0] (a): "port": 1e20 is too large`}},
		{"health retries 2.5", `{"name": "a", "script": "w", "health_check": {"script": "true", "retries": 2.5}}`, []string{`apps[0] (a): "health_check" retries: 2.5 is not a whole number`}},
		{"health interval 0.5", `{"name": "a", "script": "w", "health_check": {"script": "true", "interval": 0.5}}`, []string{`apps[0] (a): "health_check" interval: 0.5 is not a whole number`}},
		{"plugin timeout 2.5", `{"plugins": [{"name": "p", "path": "/p", "timeout": 2.5}], "apps": [{"script": "w"}]}`, []string{`plugins[0] (p): "timeout": 2.5 is not a whole number`}},

		// A key twice in one object: encoding/json would keep the last without a word.
		{"app key twice", `{"apps": [{"name": "a", "script": "w", "port": 3000, "port": 3001}]}`, []string{`apps[0]: key "port" appears twice (line 1)`}},
		{"top key twice", "{\"apps\": [{\"script\": \"w\"}],\n \"apps\": [{\"script\": \"x\"}]}", []string{`key "apps" appears twice (line 2)`}},
		{"single app key twice", `{"script": "w", "script": "x"}`, []string{`key "script" appears twice`}},
		{"second app", `{"apps": [{"script": "w"}, {"script": "x", "instances": 2, "instances": 3}]}`, []string{`apps[1]: key "instances" appears twice`}},
		{"env key twice", `{"apps": [{"script": "w", "env": {"A": "1", "B": "2", "A": "3"}}]}`, []string{`apps[0].env: key "A" appears twice`}},
		{"escaped key twice", `{"script": "w", "n\u0061me": "a", "name": "b"}`, []string{`key "name" appears twice`}},
		{"health key twice", `{"apps": [{"script": "w", "health_check": {"script": "true", "script": "false"}}]}`, []string{`apps[0].health_check: key "script" appears twice`}},
		{"plugin config key twice", `{"plugins": [{"name": "p", "path": "/p", "config": {"mode": "a", "mode": "b"}}], "apps": [{"script": "w"}]}`, []string{`plugins[0].config: key "mode" appears twice`}},

		// Bad values.
		{"missing script", `{"apps": [{"script": "a"}, {"name": "b"}]}`, []string{"apps[1] (b)", `"script" is missing`}},
		{"missing script, no name", `{"apps": [{"script": "a"}, {"args": ["x"]}]}`, []string{"apps[1]", `"script" is missing`}},
		{"empty script", `{"name": "b", "script": ""}`, []string{"apps[0] (b)", "script", "missing"}},
		{"duplicate names", `{"apps": [{"name": "web", "script": "a"}, {"name": "api", "script": "b"}, {"name": "web", "script": "c"}]}`, []string{"apps[2] (web)", `duplicate name "web"`, "apps[0]"}},
		{"duplicate default names", `{"apps": [{"script": "./srv.js"}, {"script": "/opt/srv.js"}]}`, []string{"apps[1] (srv)", `duplicate name "srv"`, "apps[0]"}},
		{"name all", `{"name": "all", "script": "w"}`, []string{"apps[0] (all)", "name", `"all"`}},
		{"name with slash", `{"name": "a/b", "script": "w"}`, []string{"apps[0] (a/b)", "name"}},
		{"numeric name", `{"name": "12", "script": "w"}`, []string{"apps[0] (12)", "name"}},
		{"port auto without range", `{"name": "a", "script": "w", "port": "auto:5000"}`, []string{"apps[0] (a)", "port", `"auto:5000"`}},
		{"port reversed range", `{"name": "a", "script": "w", "port": "3003-3000"}`, []string{"apps[0] (a)", "port", `"3003-3000"`, "reversed"}},
		{"port not a number", `{"name": "a", "script": "w", "port": "abc"}`, []string{"apps[0] (a)", "port", `"abc"`}},
		{"port 0", `{"name": "a", "script": "w", "port": 0}`, []string{"apps[0] (a)", "port", "out of range"}},
		{"port too large", `{"name": "a", "script": "w", "port": 70000}`, []string{"apps[0] (a)", "port", "out of range"}},
		{"range too small", `{"name": "a", "script": "w", "instances": 4, "port": "3000-3001"}`, []string{"apps[0] (a): Port range 3000-3001 has only 2 ports but 4 instances requested"}},
		{"auto range too small", `{"name": "a", "script": "w", "instances": 3, "port": "auto:5000-5001"}`, []string{"apps[0] (a): Port range auto:5000-5001 has only 2 ports but 3 instances requested"}},
		{"single port, many instances", `{"name": "a", "script": "w", "instances": 2, "port": "3000"}`, []string{"apps[0] (a)", "port 3000", "2 instances"}},
		{"duration garbage", `{"name": "a", "script": "w", "min_uptime": "soon"}`, []string{"apps[0] (a)", `"min_uptime"`, `"soon"`}},
		{"duration negative ms", `{"name": "a", "script": "w", "restart_delay": -5}`, []string{"apps[0] (a)", `"restart_delay"`, "negative"}},
		{"duration negative string", `{"name": "a", "script": "w", "kill_timeout": "-2s"}`, []string{"apps[0] (a)", `"kill_timeout"`, "negative"}},
		{"duration fractional ms", `{"name": "a", "script": "w", "exp_backoff_restart_delay": 1.5}`, []string{"apps[0] (a)", `"exp_backoff_restart_delay"`, "1.5"}},
		{"duration empty", `{"name": "a", "script": "w", "min_uptime": ""}`, []string{"apps[0] (a)", `"min_uptime"`, "empty"}},
		{"memory 12Q", `{"name": "a", "script": "w", "max_memory_restart": "12Q"}`, []string{"apps[0] (a)", `"max_memory_restart"`, `"12Q"`}},
		{"memory zero", `{"name": "a", "script": "w", "max_memory_restart": 0}`, []string{"apps[0] (a)", `"max_memory_restart"`}},
		{"memory negative", `{"name": "a", "script": "w", "max_memory_restart": -100}`, []string{"apps[0] (a)", `"max_memory_restart"`}},
		{"memory negative string", `{"name": "a", "script": "w", "max_memory_restart": "-1M"}`, []string{"apps[0] (a)", `"max_memory_restart"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps, err := ecoParse(t, tt.doc, "/d")
			if err == nil {
				t.Fatalf("no error, got %+v", apps)
			}
			if apps != nil {
				t.Errorf("apps returned together with an error: %+v", apps)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, ecoFile+": ") {
				t.Errorf("error %q does not start with %q", msg, ecoFile+": ")
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Count(msg, ecoFile) != 1 {
				t.Errorf("error %q names the file more than once", msg)
			}
		})
	}
}

// A file over the limit is refused with a clear size error.
func TestEcosystemLoadFileTooLarge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.json")
	// A valid document padded with whitespace to one byte over the limit: only the size is wrong.
	doc := []byte(`{"script": "w"}`)
	pad := bytes.Repeat([]byte(" "), MaxEcosystemSize+1-len(doc))
	if err := os.WriteFile(path, append(doc, pad...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	if err == nil {
		t.Fatal("a file over 10 MB was accepted")
	}
	for _, w := range []string{"big.json", "larger than", "10 MB"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	// Exactly at the limit is fine.
	if err := os.Truncate(path, MaxEcosystemSize); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path); err != nil {
		t.Errorf("a file of exactly %d bytes: %v", MaxEcosystemSize, err)
	}
}

// A sparse 100 MB file is refused without reading it all.
func TestEcosystemLoadFileHugeSparse(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "huge.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(path, 100<<20); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err = LoadFile(path)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "larger than") || !strings.Contains(err.Error(), "huge.json") {
		t.Errorf("LoadFile(100 MB) error = %v, want a size error naming huge.json", err)
	}
	// Reading at most the limit plus a byte allocates a few tens of MB at most (ReadAll grows
	// its buffer); reading all 100 MB would allocate far more.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 60<<20 {
		t.Errorf("LoadFile of a 100 MB file allocated %d MB: it reads more than the limit", alloc>>20)
	}
	if elapsed > 10*time.Second {
		t.Errorf("LoadFile of a 100 MB file took %s", elapsed)
	}
}

// FuzzEcosystemParseJSON: no input panics, and whatever is accepted is a valid, uniquely named
// app list with absolute paths.
func FuzzEcosystemParseJSON(f *testing.F) {
	for _, s := range []string{
		`{"script": "w"}`,
		`{"apps": [{"name": "a", "script": "w", "instances": 4, "port": "3000-3003"}]}`,
		`{"apps": [{"name": "a", "script": "w", "instances": "max", "port": "auto:5000-5100", "env": {"A": 1, "B": true}}]}`,
		`{"name": "x", "script": "node", "args": "a 'b c'", "cwd": "sub", "out_file": "o.log", "error_file": "/e.log"}`,
		`{"script": "w", "min_uptime": "2s", "restart_delay": 100, "kill_timeout": "1m", "exp_backoff_restart_delay": 5, "max_memory_restart": "1.5G"}`,
		`{"script": "w", "max_restarts": 0, "autorestart": false, "port": 8080}`,
		`{"apps": [{"script": "a"}, {"script": "b", "instnaces": 2}]}`,
		`{"apps": []}`, `[]`, `1`, ``, "{\"script\": \"\xff\"}", `{"apps": [`, `{"script": "w"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		apps, err := ParseJSON(data, "fuzz.json", "/base")
		if err != nil {
			if apps != nil {
				t.Errorf("apps returned together with an error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.json: ") {
				t.Errorf("error %q does not start with the file name", err)
			}
			return
		}
		if len(apps) == 0 {
			t.Fatal("success with no apps")
		}
		seen := map[string]bool{}
		for i := range apps {
			a := &apps[i]
			if err := a.Validate(); err != nil {
				t.Errorf("apps[%d] accepted but invalid: %v (%+v)", i, err, *a)
			}
			if seen[a.Name] {
				t.Errorf("apps[%d]: duplicate name %q accepted", i, a.Name)
			}
			seen[a.Name] = true
			if !filepath.IsAbs(a.Cwd) {
				t.Errorf("apps[%d]: cwd %q is not absolute", i, a.Cwd)
			}
			for _, p := range []string{a.OutFile, a.ErrorFile} {
				if p != "" && !filepath.IsAbs(p) {
					t.Errorf("apps[%d]: log path %q is not absolute", i, p)
				}
			}
		}
	})
}

func TestEcosystemReliabilityKeys(t *testing.T) {
	apps, err := ParseJSON([]byte(`{"name": "web", "script": "w", "port": 3000,
		"health_check": {"url": "http://localhost:{port}/h", "interval": "1s", "timeout": 500, "retries": 2, "restart": false},
		"wait_ready": true, "wait_timeout": "10s", "log_max_size": "1M", "log_keep": 3}`), "eco.json", "/d")
	if err != nil {
		t.Fatal(err)
	}
	a := apps[0]
	want := HealthCheck{URL: "http://localhost:{port}/h", Interval: time.Second, Timeout: 500 * time.Millisecond, Retries: 2, Restart: false}
	if a.HealthCheck == nil || *a.HealthCheck != want {
		t.Errorf("health_check %+v, want %+v", a.HealthCheck, want)
	}
	if !a.WaitReady || a.WaitTimeout != 10*time.Second || a.LogMaxSize != 1<<20 || a.LogKeep != 3 {
		t.Errorf("wait/log keys: %+v", a)
	}
	// Defaults: a bare script check restarts after 3 failures, every 5s, 2s timeout.
	apps, err = ParseJSON([]byte(`{"name": "w", "script": "w", "health_check": {"script": "./check.sh"}}`), "eco.json", "/d")
	if err != nil {
		t.Fatal(err)
	}
	if got := *apps[0].HealthCheck; got != (HealthCheck{Script: "./check.sh", Interval: 5 * time.Second, Timeout: 2 * time.Second, Retries: 3, Restart: true}) {
		t.Errorf("defaults %+v", got)
	}
	size, keep := apps[0].LogLimits()
	if size != 10<<20 || keep != 5 || apps[0].Waiting() != 30*time.Second {
		t.Errorf("LogLimits %d %d, Waiting %s", size, keep, apps[0].Waiting())
	}
}
