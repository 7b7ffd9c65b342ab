package ecosystem

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Every class of bad file is refused by `run` and by `start` before anything starts: exit
// non-zero, stderr "Error: ..." naming the file (and the app and key where there is one).
// Each file's first app is valid and on a free port, so a partial start would show.
func TestEcosystemCLIErrors(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 4)
	dir := t.TempDir()
	good := fmt.Sprintf(`{"name": "good", "script": %s, "port": %d}`, js(harness.Echo), b)
	app := func(rest string) string {
		return fmt.Sprintf(`{"apps": [%s, {"name": "bad", "script": %s%s}]}`, good, js(harness.Echo), rest)
	}
	cases := []struct {
		file    string
		content string
		want    []string // besides the file name
	}{
		{"unknown-key.json", app(`, "instnaces": 2`), []string{`apps[1] (bad): unknown key "instnaces" (did you mean "instances"?)`}},
		{"unknown-key-far.json", app(`, "zzz_unrelated": 2`), []string{"apps[1] (bad)", `unknown key "zzz_unrelated"`}},
		{"wrong-type.json", app(`, "instances": true`), []string{"apps[1] (bad)", `"instances"`, "a boolean"}},
		{"wrong-type-env.json", app(`, "env": ["A=1"]`), []string{"apps[1] (bad)", `"env"`}},
		{"wrong-type-autorestart.json", app(`, "autorestart": "no"`), []string{"apps[1] (bad)", `"autorestart"`}},
		{"duplicate.json", fmt.Sprintf(`{"apps": [%s, %s]}`, good, good), []string{"apps[1] (good)", `duplicate name "good"`}},
		{"missing-script.json", fmt.Sprintf(`{"apps": [%s, {"name": "bad", "port": %d}]}`, good, b+1), []string{"apps[1] (bad)", `"script" is missing`}},
		{"bad-port-auto.json", app(`, "port": "auto:5000"`), []string{"apps[1] (bad)", "port", `"auto:5000"`}},
		{"bad-port-reversed.json", app(`, "port": "3003-3000"`), []string{"apps[1] (bad)", "port", `"3003-3000"`}},
		{"bad-port-abc.json", app(`, "port": "abc"`), []string{"apps[1] (bad)", "port", `"abc"`}},
		{"range-too-small.json", app(fmt.Sprintf(`, "instances": 4, "port": "%s"`, harness.PortRange(b+1, b+2))), []string{fmt.Sprintf("apps[1] (bad): Port range %s has only 2 ports but 4 instances requested", harness.PortRange(b+1, b+2))}},
		{"bad-duration.json", app(`, "min_uptime": "soon"`), []string{"apps[1] (bad)", `"min_uptime"`, `"soon"`}},
		{"bad-duration-negative.json", app(`, "kill_timeout": -1`), []string{"apps[1] (bad)", `"kill_timeout"`}},
		{"bad-memory.json", app(`, "max_memory_restart": "12Q"`), []string{"apps[1] (bad)", `"max_memory_restart"`, `"12Q"`}},
		// instances 0 and -1 count CPUs, as in PM2 (host/config TestPM2Corpus).
		{"instances-too-many.json", app(`, "instances": 5000`), []string{"apps[1] (bad)", `"instances"`}},
		{"instances-negative-fraction.json", app(`, "instances": -1.5`), []string{"apps[1] (bad)", `"instances"`}},
		{"instances-abc.json", app(`, "instances": "abc"`), []string{"apps[1] (bad)", `"instances"`}},
		{"instances-fraction.json", app(`, "instances": 1.5`), []string{"apps[1] (bad)", `"instances"`}},
		{"health-check.json", app(`, "health_check": {"url": "/health"}`), []string{"apps[1] (bad)", "health_check", `url "/health" must start with http://`}},
		{"health-remote.json", app(`, "health_check": {"url": "http://192.0.2.1/health"}`), []string{"apps[1] (bad)", "health_check", "not this machine's loopback"}},
		{"health-interval.json", app(`, "health_check": {"script": "true", "interval": -5}`), []string{"apps[1] (bad)", `"health_check"`, "interval"}},
		{"wait-ready.json", app(`, "wait_ready": "yes"`), []string{"apps[1] (bad)", `"wait_ready"`, "true or false"}},
		{"log-size.json", app(`, "log_max_size": "12Q"`), []string{"apps[1] (bad)", `"log_max_size"`, "12Q"}},
		{"empty.json", ``, []string{"empty"}},
		{"whitespace.json", " \n\t\n", []string{"empty"}},
		{"truncated.json", fmt.Sprintf(`{"apps": [%s, {"name": "x"`, good), []string{"truncated"}},
		{"top-number.json", `42`, []string{"top level must be an object", "a number"}},
		{"top-number.json", `42`, []string{"top level", "a number"}},
		{"trailing.json", good + ` {"name": "x"}`, []string{"trailing data"}},
		{"apps-string.json", `{"apps": "good"}`, []string{`"apps" must be an array`, "a string"}},
		{"apps-empty.json", `{"apps": []}`, []string{`"apps" is empty`}},
		{"not-utf8.json", fmt.Sprintf("{\"apps\": [\n%s,\n{\"name\": \"caf\xe9\", \"script\": \"w\"}]}", good), []string{"line 3", "UTF-8"}},
	}
	for _, c := range cases {
		path := writeFile(t, dir, c.file, c.content)
		for _, verb := range []string{"run", "start"} {
			r := h.Run(verb, path)
			if r.Code == 0 {
				t.Fatalf("%s %s: exit 0, want a refusal\nstdout: %s", verb, c.file, r.Stdout)
			}
			stderr := r.Stderr
			harness.ErrLike(t, stderr, append([]string{c.file}, c.want...)...)
			if strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
				t.Errorf("%s %s: stderr is more than one line: %q", verb, c.file, stderr)
			}
		}
	}

	// A file over 10 MB, named in the size error.
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, append([]byte(good), bytes.Repeat([]byte(" "), 10<<20)...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"run", "start"} {
		harness.ErrLike(t, h.Fail(verb, big), "big.json", "10 MB")
	}

	// A missing file, a file that is no ecosystem, an empty YAML file, and Lua errors with file:line.
	harness.ErrLike(t, h.Fail("run", filepath.Join(dir, "missing.json")), "missing.json")
	harness.ErrLike(t, h.Fail("start", filepath.Join(dir, "missing.json")), "missing.json")
	toml := writeFile(t, dir, "eco.toml", "[apps]\n")
	harness.ErrLike(t, h.Fail("run", toml), "eco.toml", "not an ecosystem file")
	yaml := writeFile(t, dir, "eco.yaml", "apps: []\n")
	harness.ErrLike(t, h.Fail("run", yaml), "eco.yaml", `"apps" is empty`)
	lua := writeFile(t, dir, "eco.lua", "local x = 1\nreturn {apps = {\n")
	harness.ErrLike(t, h.Fail("run", lua), "eco.lua:")
	lua = writeFile(t, dir, "eco2.lua", "local x = 1\nports.range(\"a\", 2)\n")
	harness.ErrLike(t, h.Fail("run", lua), "eco2.lua:2:", "ports.range")
	// start FILE.json takes no flags: they belong in the file.
	okFile := writeFile(t, dir, "ok.json", good)
	harness.ErrLike(t, h.Fail("start", okFile, "--name", "x"), "ok.json", "no flags")

	// Nothing was started by any of them.
	if ps := h.AppProcs(); len(ps) != 0 {
		t.Errorf("app processes after refused files: %v", ps)
	}
	if rows := h.List(); len(rows) != 0 {
		t.Errorf("list after refused files: %+v", rows)
	}
	if _, err := harness.GetWho(b); err == nil {
		t.Errorf("port %d answers after refused files", b)
	}
	// And the good app's port was not kept: the valid file runs.
	h.OK("run", okFile)
	checkRunning(t, h, []wantApp{{"good", []int{b}}})
}

// Trailing data is refused even when it is a stray closing brace or bracket (a common
// leftover of editing), and nothing starts.
func TestEcosystemCLITrailingBracket(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 1)
	dir := t.TempDir()
	good := fmt.Sprintf(`{"name": "good", "script": %s, "port": %d}`, js(harness.Echo), b)
	for _, c := range []struct{ file, content string }{
		{"trailing-brace.json", good + "\n}\n"},
		{"trailing-bracket.json", fmt.Sprintf(`{"apps": [%s]}]`, good)},
	} {
		path := writeFile(t, dir, c.file, c.content)
		r := h.Run("run", path)
		if r.Code == 0 {
			t.Errorf("run %s: exit 0, want a refusal for the trailing data\nstdout: %s", c.file, r.Stdout)
			h.OK("delete", "good")
			continue
		}
		harness.ErrLike(t, r.Stderr, c.file, "trailing data")
	}
	if rows := h.List(); len(rows) != 0 {
		t.Errorf("list after refused files: %+v", rows)
	}
}
