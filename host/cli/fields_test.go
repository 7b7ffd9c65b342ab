package cli

import (
	"bytes"
	"context"
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
		var parts []string
		for _, kv := range keys {
			parts = append(parts, fmt.Sprintf("%q: %s", kv[0], literal(appField(kv[0]).Kind, kv[1], jsonSyntax)))
		}
		if len(health) > 0 {
			var hs []string
			for _, kv := range health {
				hs = append(hs, fmt.Sprintf("%q: %s", kv[0], literal(healthField(kv[0]).Kind, kv[1], jsonSyntax)))
			}
			parts = append(parts, `"health_check": {`+strings.Join(hs, ", ")+`}`)
		}
		apps, err := config.ParseJSON([]byte("{"+strings.Join(parts, ", ")+"}"), "eco.json", "/base")
		if err != nil {
			return config.App{}, err
		}
		return apps[0], nil
	}},
	{"lua", func(t *testing.T, keys, health [][2]string) (config.App, error) {
		var parts []string
		for _, kv := range keys {
			parts = append(parts, fmt.Sprintf("%s = %s", kv[0], literal(appField(kv[0]).Kind, kv[1], luaSyntax)))
		}
		if len(health) > 0 {
			var hs []string
			for _, kv := range health {
				hs = append(hs, fmt.Sprintf("%s = %s", kv[0], literal(healthField(kv[0]).Kind, kv[1], luaSyntax)))
			}
			parts = append(parts, "health_check = { "+strings.Join(hs, ", ")+" }")
		}
		return runLua(t, "cluster.start { "+strings.Join(parts, ", ")+" }")
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

// literal writes an example as a JSON or Lua value of the field's kind.
func literal(k config.Kind, example string, syntax int) string {
	switch k {
	case config.KindCount, config.KindBool:
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

// flagArgs gives a flag the example: a negated bool flag is given when the value is false.
func flagArgs(flag string, k config.Kind, negated bool, example string) []string {
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
		tests = append(tests, tcase{f.Key, set(base, f.Key, f.Example), nil, f.Get})
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
