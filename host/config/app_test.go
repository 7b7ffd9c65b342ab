package config

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "2s", want: 2 * time.Second},
		{in: "1500", want: 1500 * time.Millisecond},
		{in: " 1500 ", want: 1500 * time.Millisecond},
		{in: "0", want: 0},
		{in: "1h", want: time.Hour},
		{in: "1m30s", want: 90 * time.Second},
		{in: "31536000000", want: 365 * 24 * time.Hour},
		{in: "-1", wantErr: "negative"},
		{in: "-1s", wantErr: "negative"},
		{in: "abc", wantErr: "not valid"},
		{in: "", wantErr: "empty"},
		{in: "   ", wantErr: "empty"},
		{in: "31536000001", wantErr: "too long"},
		{in: "99999999999999999999", wantErr: "not valid"},
		{in: "2 s", wantErr: "not valid"},
		{in: "1.5", wantErr: "not valid"},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not say %q", err, tt.wantErr)
				}
				if strings.TrimSpace(tt.in) != "" && !strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
					t.Errorf("error %q does not quote the input", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDuration(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "200M", want: 200 << 20},
		{in: "200m", want: 200 << 20},
		{in: "200MB", want: 200 << 20},
		{in: "1G", want: 1 << 30},
		{in: "512K", want: 512 << 10},
		{in: "1.5G", want: 3 << 29},
		{in: "100", want: 100},
		{in: "100B", want: 100},
		{in: " 64M ", want: 64 << 20},
		{in: "12Q", wantErr: true},
		{in: "", wantErr: true},
		{in: "  ", wantErr: true},
		{in: "-5M", wantErr: true},
		{in: "M", wantErr: true},
		{in: "B", wantErr: true},
		{in: "0", wantErr: true},
		{in: "0M", wantErr: true},
		{in: "inf", wantErr: true},
		{in: "abc", wantErr: true},
		// NaN passes every comparison in the range check and becomes a garbage int64.
		{in: "nan", wantErr: true},
		{in: "NaNM", wantErr: true},
		// The range check is made before the unit is applied: these overflow int64.
		{in: "1e15G", wantErr: true},
		{in: "10000000000G", wantErr: true},
		// Rounds to zero bytes, which means "no limit": must not be accepted as a size.
		{in: "0.5", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := ParseMemory(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseMemory(%q) = %d, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), "memory size") {
					t.Errorf("error %q does not say what is wrong", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMemory(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseMemory(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseInstances(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr string
	}{
		{in: "4", want: 4},
		{in: " 4 ", want: 4},
		{in: "1", want: 1},
		{in: "1024", want: MaxInstances},
		{in: "max", want: runtime.NumCPU()},
		{in: "MAX", want: runtime.NumCPU()},
		{in: "0", wantErr: "at least 1"},
		{in: "-1", wantErr: "at least 1"},
		{in: "abc", wantErr: `"abc" is not valid`},
		{in: "", wantErr: "not valid"},
		{in: "1.5", wantErr: "not valid"},
		{in: "1025", wantErr: "too many (at most 1024)"},
		{in: "20000", wantErr: "too many (at most 1024)"},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := ParseInstances(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseInstances(%q) = %d, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseInstances(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: nil},
		{in: "   \t\n ", want: nil},
		{in: "node server.js", want: []string{"node", "server.js"}},
		{in: "  node   server.js  ", want: []string{"node", "server.js"}},
		{in: "a\tb\nc", want: []string{"a", "b", "c"}},
		{in: `echo 'hello world'`, want: []string{"echo", "hello world"}},
		{in: `echo "hello world"`, want: []string{"echo", "hello world"}},
		{in: `echo ''`, want: []string{"echo", ""}},
		{in: `echo ""`, want: []string{"echo", ""}},
		{in: `a'b c'd`, want: []string{"ab cd"}},
		{in: `'a "b"'`, want: []string{`a "b"`}},
		{in: `"a 'b'"`, want: []string{`a 'b'`}},
		{in: `'a\b'`, want: []string{`a\b`}},
		{in: `"a\"b"`, want: []string{`a"b`}},
		{in: `"a\\b"`, want: []string{`a\b`}},
		{in: `"\$HOME \x"`, want: []string{`$HOME \x`}},
		{in: `a\ b`, want: []string{"a b"}},
		{in: `a\'b`, want: []string{"a'b"}},
		{in: `\"`, want: []string{`"`}},
		{in: `bash -c 'exit 3'`, want: []string{"bash", "-c", "exit 3"}},
		{in: `'unterminated`, wantErr: "unterminated single quote"},
		{in: `a "unterminated`, wantErr: "unterminated double quote"},
		{in: `"ends in escaped quote\"`, wantErr: "unterminated double quote"},
		{in: `"\`, wantErr: "unterminated double quote"},
		{in: `trailing\`, wantErr: "trailing backslash"},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := SplitCommand(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("SplitCommand(%q) = %q, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), strconv.Quote(tt.in)) {
					t.Fatalf("error %q should say %q and quote the input", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SplitCommand(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("SplitCommand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestDefaultName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"app.js", "app"},
		{"./dir/server.js", "server"},
		{"/abs/path/worker.py --flag", "worker"},
		{"node server.js", "node"},
		{"sleep 1000", "sleep"},
		{"'my app.sh' arg", "my app"},
		{"noext", "noext"},
		{"", ""},
		{"'unterminated", ""},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			if got := DefaultName(tt.in); got != tt.want {
				t.Fatalf("DefaultName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewAppDefaults(t *testing.T) {
	a := NewApp()
	if a.Instances != 1 || !a.Autorestart || a.MaxRestarts != DefaultMaxRestarts ||
		a.MinUptime != DefaultMinUptime || a.KillTimeout != DefaultKillTimeout {
		t.Fatalf("NewApp() = %+v", a)
	}
}

// manyEnv is n env entries K0..K(n-1) with values of size bytes.
func manyEnv(n, size int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m["K"+strconv.Itoa(i)] = big(size)
	}
	return m
}

func big(n int) string { return strings.Repeat("x", n) }

func TestValidate(t *testing.T) {
	valid := func() App {
		a := NewApp()
		a.Name, a.Script = "web", "node server.js"
		return a
	}
	tests := []struct {
		name   string
		modify func(*App)
		// every substring must appear; the app's name is checked separately
		wantSub []string
		noName  bool // the error cannot name the app (it has none)
	}{
		{name: "valid", modify: func(*App) {}},
		{name: "valid with port range", modify: func(a *App) { a.Port, a.Instances = "3000-3003", 4 }},
		{name: "valid with auto", modify: func(a *App) { a.Port, a.Instances = "auto:5000-5100", 3 }},
		{name: "valid with env", modify: func(a *App) { a.Env = map[string]string{"NODE_ENV": "production"} }},
		{name: "no name", modify: func(a *App) { a.Name = "" }, wantSub: []string{"name"}, noName: true},
		{name: "slash in name", modify: func(a *App) { a.Name = "a/b" }, wantSub: []string{"name"}},
		{name: "name all", modify: func(a *App) { a.Name = "all" }, wantSub: []string{"name"}},
		{name: "name dotdot", modify: func(a *App) { a.Name = ".." }, wantSub: []string{"name"}},
		{name: "numeric name", modify: func(a *App) { a.Name = "42" }, wantSub: []string{"name", "instance id"}},
		{name: "missing script", modify: func(a *App) { a.Script = "  " }, wantSub: []string{"script"}},
		{name: "zero instances", modify: func(a *App) { a.Instances = 0 }, wantSub: []string{"instances"}},
		{name: "negative max_restarts", modify: func(a *App) { a.MaxRestarts = -1 }, wantSub: []string{"max_restarts"}},
		{name: "negative min_uptime", modify: func(a *App) { a.MinUptime = -time.Second }, wantSub: []string{"min_uptime"}},
		{name: "negative restart_delay", modify: func(a *App) { a.RestartDelay = -1 }, wantSub: []string{"restart_delay"}},
		{name: "negative exp_backoff_restart_delay", modify: func(a *App) { a.ExpBackoffRestartDelay = -1 },
			wantSub: []string{"exp_backoff_restart_delay"}},
		{name: "negative kill_timeout", modify: func(a *App) { a.KillTimeout = -1 }, wantSub: []string{"kill_timeout"}},
		{name: "negative max_memory_restart", modify: func(a *App) { a.MaxMemoryRestart = -1 },
			wantSub: []string{"max_memory_restart"}},
		{name: "empty env name", modify: func(a *App) { a.Env = map[string]string{"": "x"} }, wantSub: []string{"env"}},
		{name: "env name with =", modify: func(a *App) { a.Env = map[string]string{"A=B": "x"} }, wantSub: []string{"env", "A=B"}},
		{name: "instances over the cap", modify: func(a *App) { a.Instances = 20000 }, wantSub: []string{"instances 20000 is too many (at most 1024)"}},
		{name: "instances at the cap", modify: func(a *App) { a.Instances = MaxInstances }},
		{name: "too many env entries", modify: func(a *App) { a.Env = manyEnv(MaxEnv+1, 1) }, wantSub: []string{"env has 1025 entries; the limit is 1024"}},
		{name: "env at the entry cap", modify: func(a *App) { a.Env = manyEnv(MaxEnv, 1) }},
		{name: "env too big in all", modify: func(a *App) { a.Env = manyEnv(4, 70<<10) }, wantSub: []string{"env is", "bytes in all; the limit is 262144 (256 KiB)"}},
		{name: "one env entry over 128 KiB", modify: func(a *App) { a.Env = manyEnv(1, 128<<10) },
			wantSub: []string{`env "K0"`, "Linux refuses an environment entry of 128 KiB or more"}},
		{name: "NUL in an env value", modify: func(a *App) { a.Env = map[string]string{"A": "x\x00y"} }, wantSub: []string{`env "A"`, "NUL"}},
		{name: "too many args", modify: func(a *App) { a.Args = make([]string, MaxArgs) }, wantSub: []string{"script and args have 1026 words; the limit is 1024"}},
		{name: "args at the cap", modify: func(a *App) { a.Args = make([]string, MaxArgs-2) }},
		{name: "args too big in all", modify: func(a *App) { a.Args = []string{big(100 << 10), big(100 << 10), big(100 << 10)} },
			wantSub: []string{"script and args are", "bytes in all; the limit is 262144"}},
		{name: "one arg over 128 KiB", modify: func(a *App) { a.Args = []string{"x", big(128 << 10)} },
			wantSub: []string{"word 4 of script and args is 131072 bytes; Linux refuses an argument of 128 KiB or more"}},
		{name: "NUL in an arg", modify: func(a *App) { a.Args = []string{"a\x00b"} }, wantSub: []string{"word 3 of script and args contains a NUL byte"}},
		{name: "bad port spec", modify: func(a *App) { a.Port = "abc" }, wantSub: []string{"port", `"abc"`}},
		{name: "single port many instances", modify: func(a *App) { a.Port, a.Instances = "3000", 4 },
			wantSub: []string{"port", "3000"}},
		// The spec's message is normative word for word on the CLI (`Error: Port range ...`), so
		// Validate returns it bare; ecosystem loaders add the app and file around it.
		{name: "port range too small", modify: func(a *App) { a.Port, a.Instances = "3000-3001", 4 }, noName: true,
			wantSub: []string{"Port range 3000-3001 has only 2 ports but 4 instances requested"}},
		{name: "auto range too small", modify: func(a *App) { a.Port, a.Instances = "auto:5000-5001", 3 }, noName: true,
			wantSub: []string{"Port range auto:5000-5001 has only 2 ports but 3 instances requested"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := valid()
			tt.modify(&a)
			err := a.Validate()
			if tt.wantSub == nil {
				if err != nil {
					t.Fatalf("Validate: unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate of %+v: want an error", a)
			}
			msg := err.Error()
			for _, sub := range tt.wantSub {
				if !strings.Contains(msg, sub) {
					t.Errorf("error %q does not contain %q", msg, sub)
				}
			}
			if !tt.noName && !strings.Contains(msg, strconv.Quote(a.Name)) {
				t.Errorf("error %q does not name the app %q", msg, a.Name)
			}
		})
	}
}

// writeFile creates name in dir with the given mode.
func writeFile(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask aside
		t.Fatal(err)
	}
	return p
}

func TestArgv(t *testing.T) {
	cwd := t.TempDir()
	bin := t.TempDir() // our own PATH: a fake bash and a command
	fakeBash := writeFile(t, bin, "bash", 0o755)
	mycmd := writeFile(t, bin, "mycmd", 0o755)
	writeFile(t, bin, "notexec", 0o644)
	if err := os.Mkdir(filepath.Join(bin, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := writeFile(t, cwd, "run.sh", 0o644) // interpreters need no x bit
	writeFile(t, cwd, "data", 0o644)
	exe := writeFile(t, cwd, "tool", 0o755)
	if err := os.Mkdir(filepath.Join(cwd, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	emptyPath := t.TempDir()

	tests := []struct {
		name    string
		script  string
		args    []string
		path    string
		want    []string
		wantSub []string
	}{
		{name: "interpreter by extension", script: "run.sh", path: bin, want: []string{fakeBash, script}},
		{name: "interpreter with script args and args", script: "run.sh --a 'b c'", args: []string{"d"}, path: bin,
			want: []string{fakeBash, script, "--a", "b c", "d"}},
		{name: "absolute script", script: script, path: bin, want: []string{fakeBash, script}},
		{name: "interpreter missing from PATH", script: "run.sh", path: emptyPath,
			wantSub: []string{`"web"`, `interpreter "bash"`, "not on PATH"}},
		{name: "missing script with extension", script: "missing.sh", path: bin,
			wantSub: []string{`"web"`, `"missing.sh"`, "not found", cwd}},
		{name: "missing script with slash", script: "./missing", path: bin,
			wantSub: []string{`"web"`, `"./missing"`, "not found"}},
		{name: "non-executable file", script: "./data", path: bin,
			wantSub: []string{`"web"`, `"./data"`, "not an executable file"}},
		{name: "directory", script: "./sub", path: bin,
			wantSub: []string{`"web"`, `"./sub"`, "not an executable file"}},
		{name: "executable file by relative path", script: "./tool x", path: bin, want: []string{exe, "x"}},
		{name: "command on PATH", script: "mycmd 1000", args: []string{"more"}, path: bin,
			want: []string{mycmd, "1000", "more"}},
		{name: "command on second PATH entry", script: "mycmd", path: emptyPath + string(os.PathListSeparator) + bin,
			want: []string{mycmd}},
		{name: "not executable on PATH", script: "notexec", path: bin,
			wantSub: []string{`"web"`, `"notexec"`, "not a command on PATH"}},
		{name: "directory on PATH", script: "adir", path: bin,
			wantSub: []string{`"web"`, `"adir"`, "not a command on PATH"}},
		{name: "unknown command", script: "nosuchcmd", path: bin,
			wantSub: []string{`"web"`, `"nosuchcmd"`, "not a command on PATH"}},
		{name: "unterminated quote", script: "run.sh 'x", path: bin,
			wantSub: []string{`"web"`, "script", "unterminated single quote"}},
		{name: "empty script", script: "   ", path: bin, wantSub: []string{`"web"`, "script is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := App{Name: "web", Script: tt.script, Args: tt.args, Cwd: cwd}
			got, err := a.Argv(tt.path)
			if tt.wantSub != nil {
				if err == nil {
					t.Fatalf("Argv = %q, want an error", got)
				}
				for _, sub := range tt.wantSub {
					if !strings.Contains(err.Error(), sub) {
						t.Errorf("error %q does not contain %q", err, sub)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Argv: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Argv = %q, want %q", got, tt.want)
			}
		})
	}
}

// A bare name that is an existing file in cwd must not be reported as "not a file in cwd".
func TestArgvBareNameErrorIsTruthful(t *testing.T) {
	cwd := t.TempDir()
	writeFile(t, cwd, "data", 0o644)
	a := App{Name: "web", Script: "data", Cwd: cwd}
	got, err := a.Argv(t.TempDir())
	if err == nil {
		t.Fatalf("Argv = %q for a non-executable file, want an error", got)
	}
	if strings.Contains(err.Error(), "not a file in") {
		t.Fatalf("error %q claims %s/data is not a file, but it is", err, cwd)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"500ms", "2s", "1500", "-1", "abc", "", "1h", "31536000001", "1e3", "+5", "-0", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v: negative without error", s, d)
		}
	})
}

func FuzzParseMemory(f *testing.F) {
	for _, s := range []string{"200M", "1G", "512K", "1.5G", "100", "12Q", "", "-5M", "M", "nan", "1e15G", "0.5", "inf", "0x1p10K"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseMemory(s)
		if err == nil && n <= 0 {
			t.Fatalf("ParseMemory(%q) = %d without error; a size must be positive", s, n)
		}
	})
}

func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{"node server.js", `echo 'a b'`, `"a\"b"`, `a\ b`, `'x`, `"x`, `x\`, "", "\t\n", `"\$\x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitCommand(s)
		if err != nil {
			return
		}
		// Joining simple words and splitting again gives the same words.
		var simple []string
		for _, w := range words {
			if w != "" && !strings.ContainsAny(w, " \t\n'\"\\") {
				simple = append(simple, w)
			}
		}
		again, err := SplitCommand(strings.Join(simple, " "))
		if err != nil {
			t.Fatalf("SplitCommand(%q): %v", strings.Join(simple, " "), err)
		}
		if len(simple) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, simple) {
			t.Fatalf("round trip of %q: got %q", simple, again)
		}
	})
}
