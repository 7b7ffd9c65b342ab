package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxEcosystemSize bounds an ecosystem file; a real one is a few KiB.
const MaxEcosystemSize = 10 << 20

// appKeys are the keys an app object may use (PM2's names), and healthKeys those of its
// health_check: the "did you mean" lists.
var (
	appKeys    = keyNames(AppFields)
	healthKeys = keyNames(HealthFields)
)

// LoadFile reads a JSON ecosystem file: {"apps": [...]} or one app object. Relative cwd and
// log paths are resolved against the file's directory; errors name the file, the app and the key.
func LoadFile(path string) ([]App, error) {
	eco, err := LoadEcosystem(path)
	if err != nil {
		return nil, err
	}
	return eco.Apps, nil
}

// Ecosystem is a JSON ecosystem file: its plugins (registered before any app starts, so that
// policies apply to the file's own apps) and its apps.
type Ecosystem struct {
	Plugins []PluginDecl
	Apps    []App
	// Notes say, one line per PM2 key, what pmdaemon does instead of what PM2 would.
	Notes []string
}

// PluginDecl is a plugin an ecosystem file declares.
type PluginDecl struct {
	Name    string
	Path    string // absolute
	Config  json.RawMessage
	Timeout string
}

// LoadEcosystem is LoadFile with the file's plugin declarations.
func LoadEcosystem(path string) (*Ecosystem, error) {
	return LoadEcosystemWith(path, LoadOptions{})
}

// LoadEcosystemWith reads a JSON, JSON5 or (with node) JavaScript ecosystem file, PM2's keys
// included.
func LoadEcosystemWith(path string, opts LoadOptions) (*Ecosystem, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if isJSEcosystem(path) {
		data, err := evalJS(path, JSTimeout)
		if err != nil {
			return nil, err
		}
		return parseEcosystem(data, filepath.Base(path), filepath.Dir(abs), opts)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read ecosystem file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxEcosystemSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read ecosystem file %s: %w", path, err)
	}
	if len(data) > MaxEcosystemSize {
		return nil, fmt.Errorf("%s is larger than %d MB, the limit for an ecosystem file", path, MaxEcosystemSize>>20)
	}
	if IsYAML(path) {
		if data, err = yamlToJSON(data); err != nil {
			return nil, fmt.Errorf("%s: %v", filepath.Base(path), err)
		}
	}
	return parseEcosystem(data, filepath.Base(path), filepath.Dir(abs), opts)
}

// ParseJSON parses an ecosystem document's apps; file names it in errors.
func ParseJSON(data []byte, file, baseDir string) ([]App, error) {
	eco, err := ParseEcosystem(data, file, baseDir)
	if err != nil {
		return nil, err
	}
	return eco.Apps, nil
}

// ParseEcosystem parses an ecosystem document; file names it in errors.
func ParseEcosystem(data []byte, file, baseDir string) (*Ecosystem, error) {
	return parseEcosystem(data, file, baseDir, LoadOptions{})
}

func parseEcosystem(data []byte, file, baseDir string, opts LoadOptions) (*Ecosystem, error) {
	fail := func(format string, a ...any) (*Ecosystem, error) {
		return nil, fmt.Errorf("%s: %s", file, fmt.Sprintf(format, a...))
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM some editors write
	if len(bytes.TrimSpace(data)) == 0 {
		return fail("the file is empty; write {\"apps\": [...]} or one app object")
	}
	if !utf8.Valid(data) {
		line := 1 + bytes.Count(data[:firstInvalidUTF8(data)], []byte{'\n'})
		return fail("line %d: not valid UTF-8", line)
	}
	data, err := json5ToJSON(data)
	if err != nil {
		return fail("%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fail("%s", jsonError(data, err))
	}
	if err := EnsureEOF(dec); err != nil {
		return fail("%v", err)
	}
	if err := CheckDuplicateKeys(data); err != nil {
		var dup *DuplicateKeyError
		if errors.As(err, &dup) {
			return fail("%v (line %d)", err, lineAt(data, dup.Offset))
		}
		return fail("%v", err)
	}
	var objs []any
	notes := newNotes(file)
	eco := &Ecosystem{}
	switch v := doc.(type) {
	case map[string]any:
		if apps, ok := v["apps"]; ok {
			for _, k := range sortedKeys(v) {
				switch {
				case k == "apps" || k == "plugins":
				case PM2Sections[k] != "":
					notes.add(k, PM2Sections[k])
				case suggest(k, []string{"apps", "plugins"}) != "":
					return fail("unknown top-level key %q (did you mean %q?)", k, suggest(k, []string{"apps", "plugins"}))
				default:
					notes.add(k, "ignored: a top-level section pmdaemon does not read (it reads \"apps\" and \"plugins\")")
				}
			}
			if ps, ok := v["plugins"]; ok {
				list, ok := ps.([]any)
				if !ok {
					return fail("\"plugins\" must be an array of plugin objects, got %s", typeName(ps))
				}
				var err error
				eco.Plugins, err = parseList(list, file, "plugins", "a plugin", func(m map[string]any, where string) (PluginDecl, string, error) {
					pd, err := PluginFromMap(m, where, baseDir)
					return pd, pd.Name, err
				})
				if err != nil {
					return nil, err
				}
			}
			switch list := apps.(type) {
			case []any:
				objs = list
			case map[string]any:
				objs = []any{list} // PM2 reads a single app object under "apps" as a list of one
			default:
				return fail("\"apps\" must be an array of app objects, got %s", typeName(apps))
			}
		} else if _, ok := v["plugins"]; ok {
			return fail("\"plugins\" needs \"apps\" beside it: write {\"plugins\": [...], \"apps\": [...]}")
		} else {
			objs = []any{v}
		}
	case []any:
		objs = v // a bare array of apps, as PM2 reads it
	default:
		return fail("the top level must be an object, got %s", typeName(doc))
	}
	if len(objs) == 0 {
		return fail("\"apps\" is empty")
	}
	if len(objs) > MaxApps {
		return fail("\"apps\" has %d apps; a file may have at most %d", len(objs), MaxApps)
	}
	apps, err := parseList(objs, file, "apps", "an app", func(m map[string]any, where string) (App, string, error) {
		translated, err := pm2App(m, opts, notes)
		if err != nil {
			return App{}, "", at(appLabel(m, where), err)
		}
		app, err := AppFromMap(translated, where, baseDir)
		return app, app.Name, err
	})
	if err != nil {
		return nil, err
	}
	eco.Apps = apps
	eco.Notes = notes.list
	return eco, nil
}

// parseList reads the objects of the array key of an ecosystem file with from, naming each
// key[i] in errors, and refuses a name used twice.
func parseList[T any](list []any, file, key, kind string, from func(m map[string]any, where string) (T, string, error)) ([]T, error) {
	out := make([]T, 0, len(list))
	seen := map[string]int{}
	for i, o := range list {
		where := fmt.Sprintf("%s: %s[%d]", file, key, i)
		m, ok := o.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: must be %s object, got %s", where, kind, typeName(o))
		}
		v, name, err := from(m, where)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[name]; dup {
			return nil, fmt.Errorf("%s (%s): duplicate name %q (also %s[%d])", where, name, name, key, j)
		}
		seen[name] = i
		out = append(out, v)
	}
	return out, nil
}

// durationValue reads milliseconds or a duration string.
func durationValue(v any) (time.Duration, error) {
	if str, ok := v.(string); ok {
		return ParseDuration(str)
	}
	if n, ok := wholeNumber(v); ok {
		return ParseDuration(strconv.FormatInt(n, 10))
	}
	return 0, fmt.Errorf("must be milliseconds or a duration string like \"2s\", got %s", describe(v))
}

// healthFromMap reads a health_check object; the check is validated with its app.
func healthFromMap(m map[string]any) (*HealthCheck, error) {
	h := NewHealthCheck()
	err := fromMap(HealthFields, h, m, func(k string) string { return k }, func(k string) error {
		if s := suggest(k, healthKeys); s != "" {
			return &UnknownKeyError{Key: k, Suggestion: s}
		}
		return &UnknownKeyError{Key: k, Object: "a health check", Known: healthKeys}
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// PluginFromMap builds a plugin declaration from a decoded object (JSON or Lua): name and path
// (relative to baseDir) are required; config is any JSON value; timeout a duration like "2s".
func PluginFromMap(m map[string]any, where, baseDir string) (PluginDecl, error) {
	var pd PluginDecl
	keys := []string{"name", "path", "config", "timeout"}
	for k := range m {
		if !contains(keys, k) {
			return pd, &FieldError{Where: where, Key: k, Err: &UnknownKeyError{Key: k, Suggestion: suggest(k, keys), Object: "a plugin", Known: keys}}
		}
	}
	str := func(k string, required bool) (string, error) {
		v, ok := m[k]
		if !ok {
			if required {
				return "", fmt.Errorf("%s: %q is required", where, k)
			}
			return "", nil
		}
		s, ok := v.(string)
		if !ok || (required && strings.TrimSpace(s) == "") {
			return "", fmt.Errorf("%s: %q must be a non-empty string, got %s", where, k, describe(v))
		}
		return s, nil
	}
	var err error
	if pd.Name, err = str("name", true); err != nil {
		return pd, err
	}
	where = fmt.Sprintf("%s (%s)", where, pd.Name)
	if pd.Path, err = str("path", true); err != nil {
		return pd, err
	}
	if !filepath.IsAbs(pd.Path) {
		pd.Path = filepath.Join(baseDir, pd.Path)
	}
	if v, ok := m["timeout"]; ok {
		if msg := notWhole(v); msg != "" {
			return pd, fmt.Errorf("%s: \"timeout\": %s", where, msg)
		}
		d, err := durationValue(v)
		if err != nil || d <= 0 {
			return pd, fmt.Errorf("%s: \"timeout\" must be a positive duration such as \"2s\" or milliseconds, got %s", where, describe(v))
		}
		pd.Timeout = d.String()
	}
	if c, ok := m["config"]; ok {
		b, err := json.Marshal(c)
		if err != nil {
			return pd, fmt.Errorf("%s: \"config\" cannot be written as JSON: %v", where, err)
		}
		pd.Config = b
	}
	return pd, nil
}

// AppFromMap builds an App from a decoded ecosystem object (JSON or Lua). Values are string,
// bool, float64 (or int/int64/json.Number), []any and map[string]any. where names the place in
// errors (`ecosystem.json: apps[1]`, `ecosystem.lua:12`); baseDir resolves relative cwd and log
// paths. Unknown keys are errors with a "did you mean" suggestion. The App is validated.
func AppFromMap(m map[string]any, where, baseDir string) (App, error) {
	app := NewApp()
	label := appLabel(m, where)
	err := fromMap(AppFields, &app, m, strconv.Quote, func(k string) error {
		return &UnknownKeyError{Key: k, Suggestion: suggest(k, appKeys)}
	})
	if err != nil {
		return App{}, at(label, err)
	}
	if app.Name == "" && app.Script != "" {
		app.Name = DefaultName(app.Script)
	}
	if app.Script == "" {
		return App{}, &FieldError{Where: label, Key: "script", Err: errors.New(`"script" is missing`)}
	}
	if app.Cwd == "" {
		app.Cwd = baseDir
	} else if !filepath.IsAbs(app.Cwd) {
		app.Cwd = filepath.Join(baseDir, app.Cwd)
	}
	for _, p := range []*string{&app.OutFile, &app.ErrorFile, &app.LogFile, &app.PidFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(app.Cwd, *p)
		}
	}
	if err := app.Validate(); err != nil {
		return App{}, at(label, err)
	}
	return app, nil
}

// appLabel is where with the app's name: `eco.json: apps[1] (web)`.
func appLabel(m map[string]any, where string) string {
	n, ok := m["name"].(string)
	if !ok || n == "" {
		return where
	}
	if q := strconv.Quote(n); n != strings.TrimSpace(n) || q[1:len(q)-1] != n || len(n) > MaxNameLen {
		// Quoted (and cut), so that spaces, tabs and newlines in a refused name show.
		return fmt.Sprintf("%s (%s)", where, quoteShort(n))
	}
	return fmt.Sprintf("%s (%s)", where, n)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// at places a *FieldError at where: the reader knows the file, the app and the line, which
// the error's own place (`app "web"`) does not say.
func at(where string, err error) error {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return fmt.Errorf("%s: %w", where, err)
	}
	moved := *fe
	moved.Where = where
	return &moved
}

func sortStrings(xs []string) { sort.Strings(xs) }

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// wholeNumber accepts the number types that JSON and Lua decoding produce, when they hold a
// whole number (3000, 3e3 and 3000.0 alike) no larger than 2^53.
func wholeNumber(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		f, err := n.Float64()
		if err != nil {
			return 0, false
		}
		return wholeNumber(f)
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, false
		}
		return int64(n), true
	case int:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}

// notWhole says what is wrong with a number that is not a whole number a key can take
// ("3000.5 is not a whole number"), and returns "" for anything else: a whole number, or a
// value of another type, which the key's own check reports.
func notWhole(v any) string {
	var text string
	var f float64
	switch n := v.(type) {
	case json.Number:
		if _, err := n.Int64(); err == nil {
			return ""
		}
		text = n.String()
		var err error
		if f, err = n.Float64(); err != nil {
			return text + " is too large"
		}
	case float64:
		text, f = strconv.FormatFloat(n, 'g', -1, 64), n
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return text + " is not a whole number"
		}
	default:
		return ""
	}
	if f != math.Trunc(f) {
		return text + " is not a whole number"
	}
	if math.Abs(f) > 1<<53 {
		return text + " is too large"
	}
	return ""
}

// lineAt is the line (from 1) of byte offset off in data.
func lineAt(data []byte, off int64) int {
	off = max(0, min(off, int64(len(data))))
	return 1 + bytes.Count(data[:off], []byte{'\n'})
}

// scalarString renders env values and args: strings as they are, numbers and booleans as text.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case json.Number:
		return x.String(), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	}
	return "", false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64, int, int64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// describe shows a bad value: its type, and the value itself when short.
func describe(v any) string {
	if s, ok := scalarString(v); ok && len(s) <= 40 {
		return fmt.Sprintf("%s (%s)", typeName(v), strconv.Quote(s))
	}
	return typeName(v)
}

// suggest returns the key closest to k when it is a likely misspelling.
func suggest(k string, options []string) string {
	best, bestD := "", 3
	for _, o := range options {
		if d := editDistance(k, o); d < bestD || (d == bestD && best == "") && d < 3 {
			best, bestD = o, d
		}
	}
	if best == "" || bestD > max(1, len(k)/3) {
		return ""
	}
	return best
}

// editDistance is the Damerau (adjacent transposition) variant of Levenshtein distance, so
// "instnaces" is one edit from "instances".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// EnsureEOF checks that a decoder has nothing left but white space. json.Decoder.More misses a
// stray '}' or ']', so this decodes once more and wants io.EOF.
func EnsureEOF(dec *json.Decoder) error {
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

// jsonError turns a decoding error into one with a line and column.
func jsonError(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := int64(-1)
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the JSON ends too early (truncated file?)"
	}
	if off < 0 {
		return "invalid JSON: " + err.Error()
	}
	off = min(off, int64(len(data)))
	line := 1 + bytes.Count(data[:off], []byte{'\n'})
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Sprintf("line %d, column %d: invalid JSON: %v", line, col, err)
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}
