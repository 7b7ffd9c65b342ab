package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestShellSyntax(t *testing.T) {
	for _, tc := range []struct {
		cmd             string
		shell, compound bool
	}{
		{"node server.js", false, false},
		{"python3 -m http.server 8000", false, false},
		{`node -e 'console.log(1); process.exit(0)'`, false, false}, // quoted: no shell syntax
		{`echo "a b"`, false, false},
		{`echo 'costs $5'`, false, false},
		{`echo \$HOME`, false, false},
		{"python3 -m http.server $PORT", true, false},
		{"python3 -m http.server ${PORT}", true, false},
		{`echo "port $PORT"`, true, false},
		{"node `which app`", true, false},
		{"node app.js > out.log", true, false},
		{"node app.js 2>&1", true, false},
		{"node app.js >&2", true, false},
		{"node a.js & node b.js", true, true},
		{"cat < in", true, false},
		{"ls *.js", true, false},
		{"ls file?.js", true, false},
		{"ls ~/x", true, false},
		{"a~b", false, false},
		{"NODE_ENV=production node app.js", true, false},
		{"npm install && npm start", true, true},
		{"a || b", true, true},
		{"a | b", true, true},
		{"a; b", true, true},
		{"a &", true, true},
		{"(cd x && y)", true, true},
		{"if true; then a; fi", true, true},
		{"a\nb", true, true},
		{"", false, false},
	} {
		shell, compound := ShellSyntax(tc.cmd)
		if shell != tc.shell || compound != tc.compound {
			t.Errorf("ShellSyntax(%q) = %v, %v, want %v, %v", tc.cmd, shell, compound, tc.shell, tc.compound)
		}
	}
}

func TestArgvShell(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		script string
		args   []string
		want   []string
	}{
		{"python3 -m http.server $PORT", nil, []string{"/bin/sh", "-c", "exec python3 -m http.server $PORT"}},
		{"npm install && npm start", nil, []string{"/bin/sh", "-c", "npm install && npm start"}},
		{"echo $A", []string{"it's", "b c", "plain"}, []string{"/bin/sh", "-c", `exec echo $A 'it'\''s' 'b c' plain`}},
		{"  FOO=1 env  ", nil, []string{"/bin/sh", "-c", "exec FOO=1 env"}},
	} {
		a := App{Name: "web", Script: tc.script, Args: tc.args, Cwd: dir}
		got, err := a.Argv(os.Getenv("PATH"))
		if err != nil {
			t.Errorf("%q: %v", tc.script, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Argv(%q) = %q, want %q", tc.script, got, tc.want)
		}
	}
	// A plain command is still executed directly, and still checked.
	a := App{Name: "web", Script: "sleep 5", Cwd: dir}
	if got, err := a.Argv(os.Getenv("PATH")); err != nil || filepath.Base(got[0]) != "sleep" {
		t.Errorf("plain command: %q, %v", got, err)
	}
	a.Script = "no-such-program-xyz 1"
	if _, err := a.Argv(os.Getenv("PATH")); err == nil {
		t.Error("a missing plain command is not reported")
	}
}

func TestReadEnvFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text string
		want       map[string]string
		err        string // the error's text after the path
	}{
		{"plain", "A=1\n# comment\nexport B='two words'\nC=\"x\\ny\"\n", map[string]string{"A": "1", "B": "two words", "C": "x\ny"}, ""},
		{"crlf", "A=1\r\nB=2\r\n", map[string]string{"A": "1", "B": "2"}, ""},
		{"empty", "", map[string]string{}, ""},
		{"bad name", "A=1\nB=2\nBAD-NAME=3\nC=4\n", nil, ":3: unexpected character \"-\" in variable name"},
		{"space in name", "A=1\na b=1\n", nil, `:2: "a b" is not a variable name`},
		{"unterminated", "A=1\nB=\"open\nC=2\n", nil, ":2: unterminated quoted value"},
		{"multiline then bad", "A=\"one\ntwo\"\nB$=1\n", nil, ":3: unexpected character \"$\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".env")
			if err := os.WriteFile(p, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadEnvFile(p)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), p+tc.err) {
					t.Fatalf("error %v, want it to start %q", err, p+tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := ReadEnvFile(filepath.Join(dir, "missing.env")); err == nil || !strings.Contains(err.Error(), "missing.env: no such file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestFileEnvOrder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.env"), []byte("A=a\nB=a\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.env"), []byte("B=b\n"), 0o644)
	a := App{Name: "web", Cwd: dir, EnvFile: []string{"a.env", filepath.Join(dir, "b.env")}}
	got, err := a.FileEnv()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"A": "a", "B": "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q (a later file wins)", got, want)
	}
	a.EnvFile = []string{"nope.env"}
	if _, err := a.FileEnv(); err == nil || !strings.Contains(err.Error(), `app "web": env_file: `+filepath.Join(dir, "nope.env")) {
		t.Errorf("missing file: %v", err)
	}
}

func TestCheckRunFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok.env"), []byte("A=1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.env"), []byte("A=\"open\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "src"), 0o755)
	for _, tc := range []struct {
		name           string
		envFile, watch []string
		err            string
	}{
		{"all there", []string{"ok.env"}, []string{".", "src", "ok.env"}, ""},
		{"bad env file", []string{"bad.env"}, nil, `app "web": env_file: ` + filepath.Join(dir, "bad.env") + `:1: unterminated quoted value`},
		{"missing watch path", nil, []string{"src", "lib"}, `app "web": watch path ` + filepath.Join(dir, "lib") + `: no such file or directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := App{Name: "web", Cwd: dir, EnvFile: tc.envFile, Watch: tc.watch}
			err := a.CheckRunFiles()
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// The run keys read from JSON, and their bad values are errors naming the key and the value.
func TestRunKeysJSON(t *testing.T) {
	for _, tc := range []struct {
		name, keys string
		check      func(a App) bool
		err        string
	}{
		{"cron 5 fields", `"cron_restart": "0 3 * * *"`, func(a App) bool { return a.CronRestart == "0 3 * * *" }, ""},
		{"cron 6 fields", `"cron_restart": "*/30 * * * * *"`, func(a App) bool { return a.CronRestart != "" }, ""},
		{"cron every", `"cron_restart": "@every 2s"`, func(a App) bool { return a.CronRestart != "" }, ""},
		{"cron bad", `"cron_restart": "0 25 * * *"`, nil, `cron_restart "0 25 * * *" is not a cron expression`},
		{"cron words", `"cron_restart": "every day"`, nil, `cron_restart "every day" is not a cron expression`},
		{"cron empty", `"cron_restart": ""`, nil, `"cron_restart" must be a non-empty string`},
		{"codes list", `"stop_exit_codes": [0, 143]`, func(a App) bool { return reflect.DeepEqual(a.StopExitCodes, []int{0, 143}) }, ""},
		{"codes one", `"stop_exit_codes": 2`, func(a App) bool { return reflect.DeepEqual(a.StopExitCodes, []int{2}) }, ""},
		{"codes bad", `"stop_exit_codes": [0, 256]`, nil, `"stop_exit_codes" [1] must be an exit code 0-255, got a number ("256")`},
		{"codes string", `"stop_exit_codes": ["0"]`, nil, `"stop_exit_codes" [0] must be an exit code 0-255`},
		{"watch true", `"watch": true`, func(a App) bool { return reflect.DeepEqual(a.Watch, []string{"."}) }, ""},
		{"watch false", `"watch": false`, func(a App) bool { return a.Watch == nil }, ""},
		{"watch list", `"watch": ["src", "lib"]`, func(a App) bool { return reflect.DeepEqual(a.Watch, []string{"src", "lib"}) }, ""},
		{"watch number", `"watch": 1`, nil, `"watch" must be true, false, a path or an array of paths, got a number`},
		{"ignore one", `"ignore_watch": "*.log"`, func(a App) bool { return reflect.DeepEqual(a.IgnoreWatch, []string{"*.log"}) }, ""},
		{"ignore bad glob", `"ignore_watch": ["[x"]`, nil, `ignore_watch "[x" is not a valid glob`},
		{"watch delay", `"watch_delay": 1500`, func(a App) bool { return a.Debounce() == 1500e6 }, ""},
		{"watch options", `"watch_options": {"usePolling": true, "interval": 100}`, func(a App) bool { return a.WatchOptions["usePolling"] == true }, ""},
		{"watch options bad", `"watch_options": true`, nil, `"watch_options" must be an object, got a boolean`},
		{"env file list", `"env_file": ["a.env", "b.env"]`, func(a App) bool { return reflect.DeepEqual(a.EnvFile, []string{"a.env", "b.env"}) }, ""},
		{"env file empty", `"env_file": [""]`, nil, `"env_file" [0] must be a non-empty string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apps, err := ParseJSON([]byte(`{"name": "web", "script": "sleep 5", `+tc.keys+`}`), "eco.json", "/base")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "eco.json: apps[0] (web): ") {
					t.Fatalf("error %v, want one at eco.json: apps[0] (web) with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(apps[0]) {
				t.Errorf("read as %+v", apps[0])
			}
		})
	}
}
