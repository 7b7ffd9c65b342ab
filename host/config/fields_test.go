package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kindTypes is the Go type each kind stores.
var kindTypes = map[Kind]reflect.Type{
	KindString: reflect.TypeFor[string](), KindWords: reflect.TypeFor[[]string](),
	KindEnv: reflect.TypeFor[map[string]string](), KindInstances: reflect.TypeFor[int](),
	KindPort: reflect.TypeFor[string](), KindBool: reflect.TypeFor[bool](), KindCount: reflect.TypeFor[int](),
	KindDuration: reflect.TypeFor[time.Duration](), KindSize: reflect.TypeFor[int64](),
	KindHealth: reflect.TypeFor[*HealthCheck](), KindSocket: reflect.TypeFor[SocketMode](),
	KindChoice: reflect.TypeFor[string](), KindPaths: reflect.TypeFor[[]string](),
	KindWatch: reflect.TypeFor[[]string](), KindCodes: reflect.TypeFor[[]int](),
	KindOptions: reflect.TypeFor[map[string]any](), KindDepends: reflect.TypeFor[[]Dependency](),
}

// companions are the keys an example needs beside it to make a valid app.
var companions = map[string]map[string]string{
	"socket": {"port": `"3000-3002"`, "instances": "3"},
	"bind":   {"port": `"3000"`, "socket": "true"},
}

// checkTable checks what every table must hold: unique keys and flags, an accessor of the
// kind's type, a flag default the flag's type can take, and the docs' columns.
func checkTable[T any](t *testing.T, fields []Field[T], flags map[string]string) {
	t.Helper()
	names := map[string]bool{}
	var zero T
	for _, f := range fields {
		for _, n := range f.Names() {
			if names[n] {
				t.Errorf("key %q is in the table twice", n)
			}
			names[n] = true
		}
		if got := reflect.TypeOf(f.Ptr(&zero)).Elem(); got != kindTypes[f.Kind] {
			t.Errorf("%s: Ptr points to %v, but kind %d stores %v", f.Key, got, f.Kind, kindTypes[f.Kind])
		}
		if f.Type == "" {
			t.Errorf("%s: no type for the key reference", f.Key)
		}
		if f.Kind != KindHealth && f.Example == "" {
			t.Errorf("%s: no example", f.Key)
		}
		if f.Kind == KindCount && (f.Min > f.Max) {
			t.Errorf("%s: bounds %d-%d", f.Key, f.Min, f.Max)
		}
		if f.Flag == "" {
			if f.Short != "" || f.Usage != "" || f.Negated {
				t.Errorf("%s: flag settings without a flag", f.Key)
			}
			continue
		}
		for _, fl := range []string{"--" + f.Flag, "-" + f.Short} {
			if fl == "-" {
				continue
			}
			if other, dup := flags[fl]; dup {
				t.Errorf("flag %s is declared by %s and %s", fl, other, f.Key)
			}
			flags[fl] = f.Key
		}
		if f.Usage == "" {
			t.Errorf("%s: flag --%s has no help", f.Key, f.Flag)
		}
		switch f.Kind {
		case KindCount:
			if _, err := strconv.Atoi(f.FlagDefault); err != nil {
				t.Errorf("%s: flag default %q is not a count", f.Key, f.FlagDefault)
			}
		case KindBool:
			if f.FlagDefault != "false" {
				t.Errorf("%s: a bool flag defaults to false, got %q", f.Key, f.FlagDefault)
			}
		case KindDuration:
			if _, err := ParseDuration(f.FlagDefault); err != nil {
				t.Errorf("%s: flag default %q: %v", f.Key, f.FlagDefault, err)
			}
		}
	}
}

func TestFieldTables(t *testing.T) {
	flags := map[string]string{}
	checkTable(t, AppFields, flags)
	checkTable(t, HealthFields, flags)
	if got, want := len(FlagNames()), len(flags)-3; got != want { // -e, -i, -p
		t.Errorf("FlagNames has %d flags, the tables %d", got, want)
	}
}

// jsonLiteral writes a field's example as the JSON value a file would hold.
func jsonLiteral(k Kind, example string) string {
	switch k {
	case KindCount, KindBool, KindCodes, KindOptions, KindDepends:
		return example
	case KindEnv:
		name, val, _ := strings.Cut(example, "=")
		return fmt.Sprintf(`{%q: %q}`, name, val)
	}
	return strconv.Quote(example)
}

// Every app key read from JSON gives the value the same text gives as a flag, and not the
// default (so that reading it changed something).
func TestAppFieldsJSONMatchesFlags(t *testing.T) {
	for i := range AppFields {
		f := &AppFields[i]
		if f.Example == "" {
			continue
		}
		t.Run(f.Key, func(t *testing.T) {
			base := map[string]string{"name": `"web"`, "script": `"sleep 5"`}
			for k, v := range companions[f.Key] {
				base[k] = v
			}
			base[f.Key] = jsonLiteral(f.Kind, f.Example)
			var parts []string
			for k, v := range base {
				parts = append(parts, fmt.Sprintf("%q: %s", k, v))
			}
			apps, err := ParseJSON([]byte("{"+strings.Join(parts, ", ")+"}"), "eco.json", "/base")
			if err != nil {
				t.Fatal(err)
			}
			got := f.Get(&apps[0])
			flagApp := NewApp()
			if f.Kind == KindWords {
				flagApp.Args, _ = SplitCommand(f.Example) // the words after --
			} else if err := f.FlagValue(&flagApp, []string{flagText(f.Example, f.Negated)}); err != nil && f.Flag != "" {
				t.Fatal(err)
			} else if f.Flag == "" {
				flagApp = apps[0] // no flag: JSON and Lua only
			}
			if want := f.Get(&flagApp); !reflect.DeepEqual(got, want) {
				t.Errorf("JSON gives %#v, the flag text %#v", got, want)
			}
			def := NewApp()
			if reflect.DeepEqual(got, f.Get(&def)) {
				t.Errorf("the example %q reads as the default %#v", f.Example, got)
			}
		})
	}
}

// flagText is the text a flag is given for the value example: a negated flag says the
// opposite (--no-autorestart=true for autorestart false).
func flagText(example string, negated bool) string {
	if negated {
		b, _ := strconv.ParseBool(example)
		return strconv.FormatBool(!b)
	}
	return example
}

// typo swaps two letters in the middle of a key: one edit away.
func typo(k string) string {
	b := []byte(k)
	i := len(b)/2 - 1
	b[i], b[i+1] = b[i+1], b[i]
	return string(b)
}

// An unknown key is suggested the nearest key of the same table, and the error says which
// key is unknown and where.
func TestUnknownKeysSuggestFromTheTable(t *testing.T) {
	for _, k := range keyNames(AppFields) {
		t.Run("app/"+k, func(t *testing.T) {
			bad := typo(k)
			_, err := AppFromMap(map[string]any{"script": "w", bad: 1}, "eco.json: apps[0]", "/base")
			checkUnknown(t, err, "eco.json: apps[0]", bad, k, fmt.Sprintf(`eco.json: apps[0]: unknown key %q (did you mean %q?)`, bad, k))
		})
	}
	for _, k := range keyNames(HealthFields) {
		t.Run("health_check/"+k, func(t *testing.T) {
			bad := typo(k)
			_, err := healthFromMap(map[string]any{"script": "true", bad: 1})
			checkUnknown(t, err, "", bad, k, fmt.Sprintf(`unknown key %q (did you mean %q?)`, bad, k))
		})
	}
}

func checkUnknown(t *testing.T, err error, where, bad, want, msg string) {
	t.Helper()
	var fe *FieldError
	var uk *UnknownKeyError
	if !errors.As(err, &fe) || !errors.As(err, &uk) {
		t.Fatalf("error %v (%T) is not an unknown key *FieldError", err, err)
	}
	if fe.Where != where || fe.Key != bad || uk.Suggestion != want {
		t.Errorf("FieldError{Where: %q, Key: %q}, suggestion %q; want %q, %q, %q", fe.Where, fe.Key, uk.Suggestion, where, bad, want)
	}
	if err.Error() != msg {
		t.Errorf("message %q, want %q", err, msg)
	}
}

// Errors are *FieldError naming the key and the place, with the message texts of before the
// table; Validate's place (app "NAME") is replaced by the reader's label, not cut out of the
// text.
func TestFieldErrors(t *testing.T) {
	tests := []struct {
		name  string
		app   map[string]any
		key   string
		where string
		msg   string
	}{
		{"wrong type", map[string]any{"max_restarts": "x"}, "max_restarts", "f (web)", `f (web): "max_restarts" must be a whole number of at least 0, got a string ("x")`},
		{"not whole", map[string]any{"port": 3000.5}, "port", "f (web)", `f (web): "port": 3000.5 is not a whole number`},
		{"instances", map[string]any{"instances": "0"}, "instances", "f (web)", `f (web): "instances" must be at least 1, got 0`},
		{"duration", map[string]any{"kill_timeout": "xx"}, "kill_timeout", "f (web)", `f (web): "kill_timeout" duration "xx" is not valid: use Go syntax like 500ms or 2s, or whole milliseconds`},
		{"health key", map[string]any{"health_check": map[string]any{"script": "true", "retries": 0.0}}, "health_check", "f (web)", `f (web): "health_check" retries must be a whole number from 1 to 1000, got a number ("0")`},
		{"health unknown", map[string]any{"health_check": map[string]any{"script": "true", "zzzzz": 1.0}}, "health_check", "f (web)", `f (web): "health_check" unknown key "zzzzz" (a health check has url, script, interval, timeout, retries, restart)`},
		{"validate", map[string]any{"log_max_size": "1K"}, "log_max_size", "f (web)", `f (web): log_max_size must be at least 64K, got 1024 bytes`},
		{"validate health", map[string]any{"health_check": map[string]any{"url": "http://127.0.0.1:{port}/"}}, "health_check", "f (web)", `f (web): health_check: url "http://127.0.0.1:{port}/" uses {port} but the app has no port`},
		{"single port", map[string]any{"port": "3000", "instances": 2.0}, "port", "f (web)", `f (web): port 3000 is a single port but 2 instances were requested; use a range like 3000-3001 or auto:3000-3100`},
		{"range port", map[string]any{"port": "3000-3001", "instances": 3.0}, "port", "f (web)", `f (web): Port range 3000-3001 has only 2 ports but 3 instances requested`},
		{"name", map[string]any{"name": "all"}, "name", "f (all)", `f (all): app name "all" is not allowed: "all" is the target of every app`},
		{"no script", map[string]any{"script": nil}, "script", "f (web)", `f (web): "script" must be a string, got null`},
		{"env size", map[string]any{"env": map[string]any{"": "x"}}, "env", "f (web)", `f (web): env name "" is not valid`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]any{"name": "web", "script": "w"}
			for k, v := range tc.app {
				m[k] = v
			}
			_, err := AppFromMap(m, "f", "/base")
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FieldError", err, err)
			}
			if fe.Key != tc.key || fe.Where != tc.where {
				t.Errorf("FieldError{Where: %q, Key: %q}, want %q, %q", fe.Where, fe.Key, tc.where, tc.key)
			}
			if !strings.HasPrefix(err.Error(), tc.msg) {
				t.Errorf("message %q, want %q", err, tc.msg)
			}
		})
	}
}

// Validate places its errors at `app "NAME"`, and a flag's error at --FLAG.
func TestFieldErrorPlaces(t *testing.T) {
	a := NewApp()
	a.Name, a.Script, a.LogKeep = "web", "w", 2000
	err := a.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Where != `app "web"` || fe.Key != "log_keep" || err.Error() != `app "web": log_keep must be 1-1000, got 2000` {
		t.Errorf("Validate: %v (%+v)", err, fe)
	}
	tests := []struct {
		field, text, msg string
	}{
		{"max_restarts", "-1", `invalid value "-1" for --max-restarts: must not be negative`},
		{"log_keep", "0", `invalid value "0" for --log-keep: must be 1-1000`},
		{"instances", "x", `invalid value "x" for --instances: instances "x" is not valid: use a whole number or "max"`},
		{"wait_timeout", "0", `invalid value "0" for --wait-timeout: must be a positive duration such as 2s`},
		{"max_memory_restart", "12Q", `invalid value "12Q" for --max-memory: memory size "12Q" is not valid: use a positive number with K, M or G, like 200M (at most 1P)`},
		{"env", "NOEQ", `invalid value "NOEQ" for --env: use NAME=VALUE`},
		{"port", "x", `invalid port spec "x": "x" is not a port number`},
	}
	for _, tc := range tests {
		f := fieldByKey(AppFields, tc.field)
		app := NewApp()
		err := f.FlagValue(&app, []string{tc.text})
		if !errors.As(err, &fe) || fe.Key != tc.field || err.Error() != tc.msg {
			t.Errorf("--%s %s: %v (%+v), want %q", f.Flag, tc.text, err, fe, tc.msg)
		}
	}
	hf := fieldByKey(HealthFields, "retries")
	if err := hf.FlagValue(NewHealthCheck(), []string{"0"}); err == nil || err.Error() != `invalid value "0" for --health-retries: must be at least 1` {
		t.Errorf("--health-retries 0: %v", err)
	}
}

// Aliases read as their key, suggest like keys, and a key given together with its alias is
// an error rather than one of the two silently winning.
func TestAliases(t *testing.T) {
	type conf struct{ Limit int }
	fields := []Field[conf]{{
		Key: "max_limit", Aliases: []string{"maxLimit"}, Kind: KindCount, Min: 0, Max: 10,
		Ptr: func(c *conf) any { return &c.Limit },
	}}
	unknown := func(k string) error { return &UnknownKeyError{Key: k, Suggestion: suggest(k, keyNames(fields))} }
	tests := []struct {
		name string
		m    map[string]any
		want int
		msg  string
	}{
		{"key", map[string]any{"max_limit": 3.0}, 3, ""},
		{"alias", map[string]any{"maxLimit": 4.0}, 4, ""},
		{"alias bounds", map[string]any{"maxLimit": 40.0}, 0, `"maxLimit" must be a whole number from 0 to 10, got a number ("40")`},
		{"both", map[string]any{"maxLimit": 4.0, "max_limit": 3.0}, 0, `"maxLimit" and "max_limit" are the same key; give one`},
		{"alias typo", map[string]any{"maxLimti": 4.0}, 0, `unknown key "maxLimti" (did you mean "maxLimit"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c conf
			err := fromMap(fields, &c, tc.m, strconv.Quote, unknown)
			if tc.msg != "" {
				if err == nil || err.Error() != tc.msg {
					t.Fatalf("err %v, want %q", err, tc.msg)
				}
				return
			}
			if err != nil || c.Limit != tc.want {
				t.Errorf("got %d, %v; want %d", c.Limit, err, tc.want)
			}
		})
	}
}

// FuzzAppFromMap: for any key and value, an error is a *FieldError at the given place about
// that key (or an unknown one), and an accepted app is valid.
func FuzzAppFromMap(f *testing.F) {
	for _, fd := range AppFields {
		f.Add(fd.Key, jsonLiteral(fd.Kind, fd.Example))
		f.Add(fd.Key, `-1`)
		f.Add(fd.Key, `"x"`)
	}
	f.Add("health_check", `{"url": "http://127.0.0.1:{port}/", "retries": 1.5}`)
	f.Add("instnaces", `2`)
	f.Fuzz(func(t *testing.T, key, value string) {
		dec := json.NewDecoder(strings.NewReader(value))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil || key == "name" || key == "script" {
			return
		}
		app, err := AppFromMap(map[string]any{"name": "web", "script": "w", key: v}, "f", "/base")
		if err == nil {
			if verr := app.Validate(); verr != nil {
				t.Errorf("%s: %s accepted, but the app is invalid: %v", key, value, verr)
			}
			return
		}
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("%s: %s: error %v (%T) is not a *FieldError", key, value, err, err)
		}
		if fe.Where != "f (web)" || fe.Key != key || !strings.HasPrefix(err.Error(), "f (web): ") {
			t.Errorf("%s: %s: FieldError{Where: %q, Key: %q}: %v", key, value, fe.Where, fe.Key, err)
		}
		var uk *UnknownKeyError
		if (fieldByKey(AppFields, key) == nil) != errors.As(err, &uk) {
			t.Errorf("%s: %v: unknown key error for a known key, or the reverse", key, err)
		}
	})
}
