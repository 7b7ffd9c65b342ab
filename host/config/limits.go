package config

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The bounds on what one app, one ecosystem file and one API request may ask for. The CLI, the
// JSON and Lua loaders and the daemon's API all check these same numbers (docs/ecosystem-json.md
// lists them), so that no input can make the daemon spawn, hold or buffer without limit.
const (
	// MaxNameLen bounds an app name in bytes. A name becomes part of log file names
	// (<name>-<index>-out.log, their rotated copies and temp files), which must fit the 255-byte
	// NAME_MAX of a file name with room for those suffixes; 100 also keeps `list` readable.
	MaxNameLen = 100
	// MaxInstances bounds one app's instances. Each running instance holds file descriptors and
	// a process; 20000 of them ran a daemon out of descriptors. The daemon also refuses what its
	// own RLIMIT_NOFILE cannot hold (see the daemon's request checks).
	MaxInstances = 1024
	// MaxApps bounds the apps of one ecosystem file (JSON or Lua) and of one start-many request.
	MaxApps = 1024
	// MaxEnv and MaxEnvBytes bound an app's env entries: their count, and their size as the
	// kernel counts it (len("NAME=value") + 1 each).
	MaxEnv      = 1024
	MaxEnvBytes = 256 << 10
	// MaxArgs and MaxArgvBytes bound the script's words plus args: their count, and their size
	// (len + 1 each). With MaxEnvBytes this stays well below the ~2 MiB Linux allows argv and
	// environment together at exec.
	MaxArgs      = 1024
	MaxArgvBytes = 256 << 10
	// MaxStringBytes is the longest single argument or env entry: Linux refuses one of 128 KiB
	// or more (MAX_ARG_STRLEN, counting its NUL) with E2BIG at exec.
	MaxStringBytes = 128<<10 - 1
	// MaxRequestBody bounds one API request body. A start-many request carries every app of an
	// ecosystem file (MaxApps of a few hundred bytes each is well under it).
	MaxRequestBody = 4 << 20
)

// CheckName says why name cannot be an app name, or returns nil. A name must be usable as
// typed as a TARGET (exactly, with no trimming) and as part of a file name, so it may not be
// empty, longer than MaxNameLen bytes, invalid UTF-8, start or end with white space, contain
// a control or invisible format character (tab, newline, NUL, zero-width space...) or '/',
// be "." or "..", be "all" (the target of every app) or be a number (an instance id).
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("app has no name")
	}
	return checkTargetName("app name", name)
}

// checkTargetName is CheckName's rules for any name typed as a TARGET (an app's, a
// namespace's); what says which in the error.
func checkTargetName(what, name string) error {
	bad := func(why string, a ...any) error {
		return fmt.Errorf("%s %s is not allowed: %s", what, quoteShort(name), fmt.Sprintf(why, a...))
	}
	if len(name) > MaxNameLen {
		return bad("it is %d bytes long; the limit is %d", len(name), MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return bad("it is not valid UTF-8")
	}
	if r, _ := utf8.DecodeRuneInString(name); unicode.IsSpace(r) {
		return bad("it has leading whitespace")
	}
	if r, _ := utf8.DecodeLastRuneInString(name); unicode.IsSpace(r) {
		return bad("it has trailing whitespace")
	}
	for _, r := range name {
		if invisible(r) {
			return bad("it contains the control character %s", runeName(r))
		}
	}
	switch {
	case strings.Contains(name, "/"):
		return bad("it contains '/' (names are part of log file names)")
	case name == "." || name == "..":
		return bad("it names a directory (names are part of log file names)")
	case name == "all":
		return bad("\"all\" is the target of every app")
	case number(name):
		return bad("it is a number, which would be taken for an instance id")
	}
	return nil
}

// invisible reports control characters (C0, DEL, C1), format characters (zero-width space,
// bidi overrides, BOM) and the line and paragraph separators: what a terminal does not show
// as itself.
func invisible(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// runeName shows r in an error: U+0009 (tab).
func runeName(r rune) string {
	names := map[rune]string{'\t': "tab", '\n': "newline", '\r': "carriage return", 0: "NUL", 0x1b: "escape", 0x7f: "DEL"}
	if n, ok := names[r]; ok {
		return fmt.Sprintf("U+%04X (%s)", r, n)
	}
	return fmt.Sprintf("U+%04X", r)
}

// number reports a decimal integer, optionally signed: what strconv.Atoi takes, whatever its
// size.
func number(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// quoteShort quotes s for an error, cut to 60 bytes so a huge value does not flood it.
func quoteShort(s string) string {
	if len(s) <= 60 {
		return fmt.Sprintf("%q", s)
	}
	cut := 60
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:cut], len(s))
}

// checkSizes checks the bounds on instances, env and argv of a.
func (a *App) checkSizes() error {
	at := func(key string) func(format string, x ...any) error {
		return func(format string, x ...any) error {
			return &FieldError{Where: fmt.Sprintf("app %q", a.Name), Key: key, Err: fmt.Errorf(format, x...)}
		}
	}
	bad := at("env")
	if a.Instances > MaxInstances {
		return at("instances")("instances %d is too many (at most %d)", a.Instances, MaxInstances)
	}
	if len(a.Env) > MaxEnv {
		return bad("env has %d entries; the limit is %d", len(a.Env), MaxEnv)
	}
	size := 0
	for k, v := range a.Env {
		n := len(k) + 1 + len(v)
		if n > MaxStringBytes {
			return bad("env %s is %d bytes; Linux refuses an environment entry of 128 KiB or more", quoteShort(k), n)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return bad("env %s contains a NUL byte, which no environment entry can hold", quoteShort(k))
		}
		size += n + 1
	}
	if size > MaxEnvBytes {
		return bad("env is %d bytes in all; the limit is %d (%d KiB)", size, MaxEnvBytes, MaxEnvBytes>>10)
	}
	words, err := SplitCommand(a.Script)
	if err != nil {
		return nil // Validate and Argv report the script itself
	}
	words = append(words, a.Args...)
	bad = at("args")
	if len(words) > MaxArgs {
		return bad("script and args have %d words; the limit is %d", len(words), MaxArgs)
	}
	size = 0
	for i, w := range words {
		if len(w) > MaxStringBytes {
			return bad("word %d of script and args is %d bytes; Linux refuses an argument of 128 KiB or more", i+1, len(w))
		}
		if strings.IndexByte(w, 0) >= 0 {
			return bad("word %d of script and args contains a NUL byte, which no argument can hold", i+1)
		}
		size += len(w) + 1
	}
	if size > MaxArgvBytes {
		return bad("script and args are %d bytes in all; the limit is %d (%d KiB)", size, MaxArgvBytes, MaxArgvBytes>>10)
	}
	return nil
}
