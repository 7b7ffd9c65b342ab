package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/lua"
)

// front is one way to write an app: a JSON file, a Lua file, start's flags. Each takes the
// same settings as key, example-text pairs and returns the App it reads.
type front struct {
	name string
	read func(t *testing.T, keys [][2]string, health [][2]string) (config.App, error)
}

var fronts = []front{
	{"json", func(t *testing.T, keys, health [][2]string) (config.App, error) {
		apps, err := config.ParseJSON([]byte(object(jsonSyntax, keys, health)), "eco.json", "/base")
		if err != nil {
			return config.App{}, err
		}
		return apps[0], nil
	}},
	{"lua", func(t *testing.T, keys, health [][2]string) (config.App, error) {
		return runLua(t, "cluster.start "+object(luaSyntax, keys, health))
	}},
	{"cli", func(t *testing.T, keys, health [][2]string) (config.App, error) {
		var script string
		var flags, rest []string
		for _, kv := range keys {
			f := appField(kv[0])
			switch {
			case f.Key == "script":
				script = kv[1]
			case f.Kind == config.KindWords:
				rest, _ = config.SplitCommand(kv[1])
			default:
				flags = append(flags, flagArgs(f.Flag, f.Kind, f.Negated, kv[1])...)
			}
		}
		for _, kv := range health {
			f := healthField(kv[0])
			flags = append(flags, flagArgs(f.Flag, f.Kind, f.Negated, kv[1])...)
		}
		args := append([]string{script}, flags...)
		if rest != nil {
			args = append(append(args, "--"), rest...)
		}
		cmd := (&Env{Stdout: io.Discard, Stderr: io.Discard}).startCmd()
		if err := cmd.ParseFlags(args); err != nil {
			return config.App{}, err
		}
		return appFromFlags(cmd.Flags(), cmd.Flags().Args(), cmd.Flags().ArgsLenAtDash())
	}},
}

func appField(key string) *config.Field[config.App] {
	for i := range config.AppFields {
		if config.AppFields[i].Key == key {
			return &config.AppFields[i]
		}
	}
	panic("no app field " + key)
}

func healthField(key string) *config.Field[config.HealthCheck] {
	for i := range config.HealthFields {
		if config.HealthFields[i].Key == key {
			return &config.HealthFields[i]
		}
	}
	panic("no health field " + key)
}

const (
	jsonSyntax = iota
	luaSyntax
)

// object writes an app object (JSON) or table (Lua) with keys, and a health_check of health.
func object(syntax int, keys, health [][2]string) string {
	pair, begin, end := "%q: %s", "{", "}"
	if syntax == luaSyntax {
		pair, begin, end = "%s = %s", "{ ", " }"
	}
	var parts []string
	for _, kv := range keys {
		parts = append(parts, fmt.Sprintf(pair, kv[0], literal(appField(kv[0]).Kind, kv[1], syntax)))
	}
	if len(health) > 0 {
		var hs []string
		for _, kv := range health {
			hs = append(hs, fmt.Sprintf(pair, kv[0], literal(healthField(kv[0]).Kind, kv[1], syntax)))
		}
		parts = append(parts, fmt.Sprintf(pair, "health_check", begin+strings.Join(hs, ", ")+end))
	}
	return begin + strings.Join(parts, ", ") + end
}

// literal writes an example as a JSON or Lua value of the field's kind.
func literal(k config.Kind, example string, syntax int) string {
	switch k {
	case config.KindCount, config.KindBool, config.KindCodes:
		return example
	case config.KindDepends: // a JSON array of names
		if syntax == luaSyntax {
			var names []string
			if err := json.Unmarshal([]byte(example), &names); err != nil {
				panic("depends_on example " + example + " is not an array of names")
			}
			return "{ " + strings.Join(quoteEach(names), ", ") + " }"
		}
		return example
	case config.KindOptions: // a JSON object of one boolean
		if syntax == luaSyntax {
			var obj map[string]bool
			if err := json.Unmarshal([]byte(example), &obj); err != nil || len(obj) != 1 {
				panic("options example " + example + " is not an object of one boolean")
			}
			for k, v := range obj {
				return fmt.Sprintf("{ %s = %t }", k, v)
			}
		}
		return example
	case config.KindEnv:
		name, val, _ := strings.Cut(example, "=")
		if syntax == luaSyntax {
			return fmt.Sprintf("{ %s = %q }", name, val)
		}
		return fmt.Sprintf("{%q: %q}", name, val)
	}
	return strconv.Quote(example)
}

func quoteEach(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.Quote(x)
	}
	return out
}

// flagArgs gives a flag the example: a negated bool flag is given when the value is false.
func flagArgs(flag string, k config.Kind, negated bool, example string) []string {
	if k == config.KindSocket || k == config.KindWatch {
		return []string{"--" + flag + "=" + example} // `--socket VALUE` is Main's rewrite, tested there
	}
	if k == config.KindBool {
		b, _ := strconv.ParseBool(example)
		return []string{fmt.Sprintf("--%s=%t", flag, b != negated)}
	}
	return []string{"--" + flag, example}
}

// runLua dry-runs a Lua ecosystem file holding src and returns the app it would start.
func runLua(t *testing.T, src string) (config.App, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ecosystem.lua")
	if err := os.WriteFile(path, []byte(src+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := lua.Run(context.Background(), path, lua.Options{DryRun: true, Log: io.Discard})
	if err != nil {
		return config.App{}, err
	}
	if len(res.Planned) != 1 {
		t.Fatalf("%d apps planned, want 1", len(res.Planned))
	}
	return res.Planned[0], nil
}

// set returns base with key set to value (replacing it when base has it).
func set(base [][2]string, key, value string) [][2]string {
	out := [][2]string{{key, value}}
	for _, kv := range base {
		if kv[0] != key {
			out = append(out, kv)
		}
	}
	return out
}

// Every key of the table, given its example in a JSON file, a Lua file and start's flags,
// makes the same App; and the example is not the default, so each front did read it.
func TestEveryFieldSameInEveryFront(t *testing.T) {
	base := [][2]string{{"name", "web"}, {"script", "sleep 9"}, {"cwd", "/srv/base"}, {"port", "4000-4002"}}
	type tcase struct {
		name         string
		keys, health [][2]string
		get          func(*config.App) any
	}
	var tests []tcase
	for i := range config.AppFields {
		f := &config.AppFields[i]
		if f.Kind == config.KindHealth {
			continue
		}
		keys := set(base, f.Key, f.Example)
		if f.Key == "bind" {
			keys = set(keys, "socket", "true") // bind applies to held sockets only
		}
		tests = append(tests, tcase{f.Key, keys, nil, f.Get})
	}
	for i := range config.HealthFields {
		f := &config.HealthFields[i]
		health := [][2]string{{"script", "check"}}
		if f.Kind == config.KindString { // url or script: what to check, one of the two
			health = nil
		}
		health = set(health, f.Key, f.Example)
		tests = append(tests, tcase{"health_check." + f.Key, base, health, func(a *config.App) any {
			return f.Get(a.HealthCheck)
		}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var first config.App
			for i, fr := range fronts {
				if fr.name == "cli" && !cliTakes(tc.keys) {
					continue // out_file, error_file: set in a file only, as the key reference says
				}
				var app config.App
				read := false
				t.Run(fr.name, func(t *testing.T) {
					var err error
					if app, err = fr.read(t, tc.keys, tc.health); err != nil {
						t.Fatal(err)
					}
					read = true
				})
				if !read {
					continue
				}
				if i == 0 {
					first = app
					def := config.NewApp()
					if tc.health == nil && reflect.DeepEqual(tc.get(&app), tc.get(&def)) {
						t.Errorf("the example reads as the default %#v", tc.get(&app))
					}
					continue
				}
				if !reflect.DeepEqual(app, first) {
					t.Errorf("%s makes %+v, json %+v", fr.name, app, first)
				}
			}
		})
	}
}

// cliTakes reports whether start can say all of keys: script is its CMD, args the words after
// --, and the rest need a flag.
func cliTakes(keys [][2]string) bool {
	for _, kv := range keys {
		if f := appField(kv[0]); f.Flag == "" && f.Key != "script" && f.Kind != config.KindWords {
			return false
		}
	}
	return true
}

// typo swaps two letters in the middle of a name: one edit away.
func typo(k string) string {
	b := []byte(k)
	i := len(b)/2 - 1
	b[i], b[i+1] = b[i+1], b[i]
	return string(b)
}

// A misspelt key in a Lua file and a misspelt flag of start get the nearest one of the same
// table suggested, as a JSON file does (host/config tests that).
func TestUnknownKeysAndFlagsSuggestFromTheTable(t *testing.T) {
	for i := range config.AppFields {
		f := &config.AppFields[i]
		t.Run("lua/"+f.Key, func(t *testing.T) {
			_, err := runLua(t, fmt.Sprintf("cluster.start { name = 'web', script = 'w', %s = 1 }", typo(f.Key)))
			want := fmt.Sprintf("ecosystem.lua:1: cluster.start (web): unknown key %q (did you mean %q?)", typo(f.Key), f.Key)
			if err == nil || !strings.HasSuffix(err.Error(), want) {
				t.Errorf("error %v, want one ending %q", err, want)
			}
		})
	}
	for _, flag := range config.FlagNames() {
		t.Run("cli/"+flag, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := (&Env{Stdout: io.Discard, Stderr: &stderr}).startCmd()
			cmd.SetArgs([]string{"w", "--" + typo(flag) + "=1"})
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			cmd.SilenceUsage = true
			err := cmd.Execute()
			want := fmt.Sprintf("unknown flag: --%s (did you mean --%s?)", typo(flag), flag)
			if err == nil || err.Error() != want {
				t.Errorf("error %v, want %q", err, want)
			}
		})
	}
}

// Flag errors of start, restart and reload, word for word: they are found before any daemon
// is asked (Home is empty, so a slip that reached the daemon would fail differently).
func TestFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"start", "w", "--instances", "0"}, `invalid value "0" for --instances: instances must be at least 1, got 0`},
		{[]string{"start", "w", "-i", "2000"}, `invalid value "2000" for --instances: instances 2000 is too many (at most 1024)`},
		{[]string{"start", "w", "--port", "x"}, `invalid port spec "x": "x" is not a port number`},
		{[]string{"start", "w", "--port", "3000", "-i", "2"}, `app "w": port 3000 is a single port but 2 instances were requested; use a range like 3000-3001 or auto:3000-3100`},
		{[]string{"start", "w", "--env", "NOEQ"}, `invalid value "NOEQ" for --env: use NAME=VALUE`},
		{[]string{"start", "w", "--max-restarts", "-1"}, `invalid value "-1" for --max-restarts: must not be negative`},
		{[]string{"start", "w", "--max-restarts", "x"}, `invalid argument "x" for "--max-restarts" flag: strconv.ParseInt: parsing "x": invalid syntax`},
		{[]string{"start", "w", "--min-uptime", "xx"}, `invalid value "xx" for --min-uptime: duration "xx" is not valid: use Go syntax like 500ms or 2s, or whole milliseconds`},
		{[]string{"start", "w", "--restart-delay", "-1"}, `invalid value "-1" for --restart-delay: duration "-1" is negative`},
		{[]string{"start", "w", "--max-memory", "0"}, `invalid value "0" for --max-memory: memory size "0" is not valid: use a positive number with K, M or G, like 200M (at most 1P)`},
		{[]string{"start", "w", "--health-retries", "2"}, `--health-retries needs --health-url or --health-script`},
		{[]string{"start", "w", "--health-url", "", "--health-interval", "0"}, `--health-interval needs --health-url or --health-script`},
		{[]string{"start", "w", "--health-script", "true", "--health-interval", "0"}, `invalid value "0" for --health-interval: must be a positive duration such as 2s`},
		{[]string{"start", "w", "--health-script", "true", "--health-timeout", "-2s"}, `invalid value "-2s" for --health-timeout: duration "-2s" is negative`},
		{[]string{"start", "w", "--health-script", "true", "--health-retries", "0"}, `invalid value "0" for --health-retries: must be at least 1`},
		{[]string{"start", "w", "--health-url", "http://example.com/"}, `app "w": health_check: url "http://example.com/" points at example.com, which is not this machine's loopback; a health check probes the instance itself: use 127.0.0.1, [::1] or localhost`},
		{[]string{"start", "w", "--wait-timeout", "0"}, `invalid value "0" for --wait-timeout: must be a positive duration such as 2s`},
		{[]string{"start", "w", "--log-max-size", "1K"}, `app "w": log_max_size must be at least 64K, got 1024 bytes`},
		{[]string{"start", "w", "--log-keep", "1001"}, `invalid value "1001" for --log-keep: must be 1-1000`},
		{[]string{"start", "w", "--name", "all"}, `app name "all" is not allowed: "all" is the target of every app`},
		{[]string{"start", "w", "--no-autorestart=maybe"}, `invalid argument "maybe" for "--no-autorestart" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{[]string{"start", "w", "--bogus"}, `unknown flag: --bogus`},
		{[]string{"restart", "web", "--port", "x"}, `invalid port spec "x": "x" is not a port number`},
		{[]string{"restart", "web", "-i", "0"}, `invalid value "0" for --instances: instances must be at least 1, got 0`},
		{[]string{"reload", "web", "--wait-timeout", "0"}, `invalid value "0" for --wait-timeout: must be a positive duration such as 2s`},
		{[]string{"restart", "web", "--wait-timeout", "x"}, `invalid value "x" for --wait-timeout: duration "x" is not valid: use Go syntax like 500ms or 2s, or whole milliseconds`},
		{[]string{"reload", "web", "--wait-ready"}, `unknown flag: --wait-ready`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			root := (&Env{Stdout: io.Discard, Stderr: io.Discard}).Root()
			root.SetArgs(tc.args)
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			if err := root.Execute(); err == nil || err.Error() != tc.msg {
				t.Errorf("error %v, want %q", err, tc.msg)
			}
		})
	}
}
