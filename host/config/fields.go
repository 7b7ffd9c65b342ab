package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/pmdaemon/pmdaemon/host/ports"
)

// Kind is the type of value a config field takes. It decides how JSON and Lua values and CLI
// flag text are read, whether numbers must be whole, and which flag type the CLI declares.
type Kind int

const (
	KindString    Kind = iota // a string
	KindWords                 // an array of strings, or one string split like a shell would
	KindEnv                   // an object of NAME: string, number or boolean; --env NAME=VALUE
	KindInstances             // a count 1-MaxInstances or "max"
	KindPort                  // a port spec string or a port number
	KindBool                  // true or false
	KindCount                 // a whole number within the field's Min and Max
	KindDuration              // milliseconds, or a duration string like "2s"
	KindSize                  // a size like "200M", or bytes
	KindHealth                // a health_check object
	KindSocket                // true, false or "shared"; --socket, --socket shared
	KindChoice                // one of the field's Choices
	KindPaths                 // a path, or an array of paths
	KindWatch                 // true, false, a path or an array of paths; --watch, --watch=a,b
	KindCodes                 // an exit code 0-255, or an array of them
	KindOptions               // an object, kept as given
	KindDepends               // an array of app names, or an object of NAME: {"condition": C}
)

// whole reports the kinds whose numbers must be whole: counts, ports, milliseconds and bytes.
func (k Kind) whole() bool {
	switch k {
	case KindInstances, KindPort, KindCount, KindDuration, KindSize:
		return true
	}
	return false
}

// Field is one key of a config object (an App, or its HealthCheck): the one entry from which
// the JSON and Lua readers, the "did you mean" lists, the CLI flags of `start` and the key
// reference of docs/ecosystem-json.md are all made. T is the struct the key sets.
type Field[T any] struct {
	// Key is the JSON and Lua key: PM2's name. Lua tables go through the same reader as JSON
	// objects, so the Lua key is always this one.
	Key string
	// Aliases are other keys read with the same meaning. A key and its alias in one object are
	// an error, as a key given twice is.
	Aliases []string
	// Flag is the long CLI flag of `start` (without "--"), "" when the CLI has none; Short its
	// one-letter form. Negated flags (--no-autorestart) set the opposite of what they say.
	Flag    string
	Short   string
	Negated bool
	// Usage is the flag's help; FlagDefault the default its help shows (and, for a count or a
	// bool, the flag's initial value). A flag not given leaves the App's own default.
	Usage       string
	FlagDefault string
	Kind        Kind
	// Min and Max bound a KindCount. FlagMin is the CLI's words for a count under Min, when
	// they are not "must be Min-Max".
	Min, Max int64
	FlagMin  string
	// Positive refuses zero as well as negative durations, in every front; FlagPositive only
	// on the command line (where the flag's own default is what leaving it out means).
	Positive, FlagPositive bool
	// NonEmpty refuses an empty or blank string.
	NonEmpty bool
	// Choices are the values a KindChoice takes.
	Choices []string
	// Type, Default and Meaning are the columns of the key reference.
	Type, Default, Meaning string
	// Example is a value other than the default, as text ("7", "2s", "A=1", "false"; a
	// negated flag is given the opposite): the tests give it to every front and want the
	// same value back.
	Example string
	// Ptr returns the address of the field in t: *string, []string, *int, *bool, ... by Kind.
	// It is both the setter and the getter.
	Ptr func(t *T) any
}

// Get returns the field's value in t.
func (f *Field[T]) Get(t *T) any {
	return reflect.ValueOf(f.Ptr(t)).Elem().Interface()
}

// set stores v, a value of the type Ptr points to, in t.
func (f *Field[T]) set(t *T, v any) {
	reflect.ValueOf(f.Ptr(t)).Elem().Set(reflect.ValueOf(v))
}

// Names are the field's key and its aliases.
func (f *Field[T]) Names() []string {
	return append([]string{f.Key}, f.Aliases...)
}

// AppFields are the keys of an app, in the order the key reference lists them. A key added
// here is read from JSON and Lua, suggested for typos, given a flag when Flag is set, and
// documented by `go generate ./host/config`.
var AppFields = []Field[App]{
	{
		Key: "name", Flag: "name", Usage: "app name (default: the script's base name)", Kind: KindString,
		Type: "string", Default: "the script's base name without extension",
		Meaning: "unique app name, at most 100 bytes; not a number, not `all`, no white space at either end, no control characters or `/` (see [behaviour.md](behaviour.md#targets))",
		Example: "web2",
		Ptr:     func(a *App) any { return &a.Name },
	},
	{
		Key: "script", Kind: KindString, Type: "string", Default: "required",
		Meaning: "a command line (`\"node server.js\"`), a script path (`.js` node, `.py` python3, `.sh` bash, else executed), or a program on PATH; with shell syntax (`$PORT`, `&&`, `|`, `>`) it runs through `/bin/sh -c` ([migrating-from-pm2.md](migrating-from-pm2.md#how-apps-run)); on the command line, `start`'s CMD",
		Example: "sleep 5",
		Ptr:     func(a *App) any { return &a.Script },
	},
	{
		Key: "args", Kind: KindWords, Type: "array of strings, or one string split like a shell would", Default: "none",
		Meaning: "appended to the script's own words; on the command line, the words after `--`",
		Example: "a b",
		Ptr:     func(a *App) any { return &a.Args },
	},
	{
		Key: "cwd", Flag: "cwd", Usage: "working directory (default: the current one)", Kind: KindString,
		Type: "string", Default: "the file's directory (CLI: the current one)",
		Meaning: "relative paths are relative to the file's directory",
		Example: "/srv/app",
		Ptr:     func(a *App) any { return &a.Cwd },
	},
	{
		Key: "env", Flag: "env", Short: "e", Usage: "environment variable NAME=VALUE (repeatable)", Kind: KindEnv,
		Type: "object of values: strings, numbers and booleans as written; null, objects and arrays as their JSON text, as PM2 passes them", Default: "none",
		Meaning: "added to the daemon's environment",
		Example: "A=1",
		Ptr:     func(a *App) any { return &a.Env },
	},
	{
		Key: "instances", Flag: "instances", Short: "i", Usage: "number of instances, or max (one per CPU)", FlagDefault: "1",
		Kind: KindInstances, Type: "whole number 1-1024, or `\"max\"` (one per CPU)", Default: "1",
		Example: "3",
		Ptr:     func(a *App) any { return &a.Instances },
	},
	{
		Key: "port", Flag: "port", Short: "p", Usage: "port spec: 3000, 3000-3003 or auto:5000-5100", Kind: KindPort,
		Type: "spec string (`\"3000\"`, `\"3000-3003\"`, `\"auto:5000-5100\"`) or a number", Default: "none",
		Meaning: "see [ports.md](ports.md)",
		Example: "4000",
		Ptr:     func(a *App) any { return &a.Port },
	},
	{
		Key: "autorestart", Flag: "no-autorestart", Negated: true, Usage: "do not restart the app when it exits",
		FlagDefault: "false", Kind: KindBool, Type: "boolean", Default: "true",
		Example: "false",
		Ptr:     func(a *App) any { return &a.Autorestart },
	},
	{
		Key: "max_restarts", Flag: "max-restarts", Usage: "unstable restarts before errored", FlagDefault: strconv.Itoa(DefaultMaxRestarts),
		Kind: KindCount, Min: 0, Max: math.MaxInt32, FlagMin: "must not be negative", Type: "whole number ≥ 0", Default: strconv.Itoa(DefaultMaxRestarts),
		Meaning: "unstable restarts before `errored`",
		Example: "7",
		Ptr:     func(a *App) any { return &a.MaxRestarts },
	},
	{
		Key: "min_uptime", Flag: "min-uptime", Usage: "a run shorter than this is unstable", FlagDefault: DefaultMinUptime.String(),
		Kind: KindDuration, Type: "milliseconds, or a duration string (`\"2s\"`)", Default: DefaultMinUptime.String(),
		Meaning: "a shorter run is unstable",
		Example: "1500ms",
		Ptr:     func(a *App) any { return &a.MinUptime },
	},
	{
		Key: "restart_delay", Flag: "restart-delay", Usage: "delay before an automatic restart", FlagDefault: "0",
		Kind: KindDuration, Type: "milliseconds or duration", Default: "0",
		Example: "2s",
		Ptr:     func(a *App) any { return &a.RestartDelay },
	},
	{
		Key: "exp_backoff_restart_delay", Flag: "exp-backoff-restart-delay", Usage: "initial exponential backoff between unstable restarts",
		FlagDefault: "0", Kind: KindDuration, Type: "milliseconds or duration", Default: "0 (off)",
		Meaning: "×1.5 per unstable restart, capped at " + MaxBackoffDelay.String(),
		Example: "100ms",
		Ptr:     func(a *App) any { return &a.ExpBackoffRestartDelay },
	},
	{
		Key: "kill_timeout", Flag: "kill-timeout", Usage: "time between SIGTERM and SIGKILL on stop", FlagDefault: DefaultKillTimeout.String(),
		Kind: KindDuration, Type: "milliseconds or duration", Default: DefaultKillTimeout.String(),
		Meaning: "SIGTERM to SIGKILL",
		Example: "250ms",
		Ptr:     func(a *App) any { return &a.KillTimeout },
	},
	{
		Key: "max_memory_restart", Flag: "max-memory", Usage: "restart an instance whose memory exceeds this (e.g. 200M)", Kind: KindSize,
		Type: "size string (`\"200M\"`, `\"1G\"`, `\"512K\"`) or bytes", Default: "none",
		Meaning: "restart above this RSS",
		Example: "200M",
		Ptr:     func(a *App) any { return &a.MaxMemoryRestart },
	},
	{
		Key: "out_file", Kind: KindString, Type: "string", Default: "`$PMDAEMON_HOME/logs/<name>-<index>-out.log`",
		Meaning: "relative to `cwd`; a regular file (or `/dev/null`) in a directory only pmdaemon's user can write ([behaviour.md](behaviour.md#logs))",
		Example: "/var/log/o.log",
		Ptr:     func(a *App) any { return &a.OutFile },
	},
	{
		Key: "error_file", Kind: KindString, Type: "string", Default: "`$PMDAEMON_HOME/logs/<name>-<index>-err.log`",
		Meaning: "as `out_file`",
		Example: "/var/log/e.log",
		Ptr:     func(a *App) any { return &a.ErrorFile },
	},
	{
		Key: "health_check", Kind: KindHealth, Type: "object, see below", Default: "none",
		Meaning: "how to tell the instance is healthy; on the command line, the `--health-*` flags below",
		Ptr:     func(a *App) any { return &a.HealthCheck },
	},
	{
		Key: "wait_ready", Flag: "wait-ready", Usage: "answer only once every instance is ready (healthy, or up for min-uptime)",
		FlagDefault: "false", Kind: KindBool, Type: "boolean", Default: "false",
		Meaning: "`start`, `restart` and `run` answer only once every new instance is ready",
		Example: "true",
		Ptr:     func(a *App) any { return &a.WaitReady },
	},
	{
		Key: "wait_timeout", Flag: "wait-timeout", Usage: "how long --wait-ready waits", FlagDefault: DefaultWaitTimeout.String(),
		FlagPositive: true, Kind: KindDuration, Type: "milliseconds or duration", Default: DefaultWaitTimeout.String(),
		Meaning: "how long `wait_ready` (and a reload) waits for readiness",
		Example: "45s",
		Ptr:     func(a *App) any { return &a.WaitTimeout },
	},
	{
		Key: "log_max_size", Flag: "log-max-size", Usage: "rotate each log file at this size", FlagDefault: "10M",
		Kind: KindSize, Type: "size string or bytes, at least `\"64K\"`", Default: "`\"10M\"`",
		Meaning: "rotate each log file at this size",
		Example: "128K",
		Ptr:     func(a *App) any { return &a.LogMaxSize },
	},
	{
		Key: "log_keep", Flag: "log-keep", Usage: "rotated log files to keep", FlagDefault: strconv.Itoa(DefaultLogKeep),
		Kind: KindCount, Min: 1, Max: 1000, Type: "whole number 1-1000", Default: strconv.Itoa(DefaultLogKeep),
		Meaning: "rotated files kept per log",
		Example: "9",
		Ptr:     func(a *App) any { return &a.LogKeep },
	},
	// PM2's log keys (docs/migrating-from-pm2.md#logs).
	{
		Key: "time", Kind: KindBool, Type: "boolean", Default: "false",
		Meaning: "prefix each line in the log files with the time it was written (`" + DefaultLogDateFormat + "`, then `: `)",
		Example: "true",
		Ptr:     func(a *App) any { return &a.Time },
	},
	{
		Key: "log_date_format", Kind: KindString, NonEmpty: true, Type: "moment.js format", Default: "none",
		Meaning: "stamp each line with this format (implies `time`): tokens `YYYY YY MMMM MMM MM M DDDD DD D dddd ddd HH hh h mm m ss s SSS SS S A a Z ZZ`, `T` and `[literal text]`; another token is an error",
		Example: "YYYY-MM-DD HH:mm:ss Z",
		Ptr:     func(a *App) any { return &a.LogDateFormat },
	},
	{
		Key: "log_type", Kind: KindChoice, Choices: []string{LogTypeRaw, LogTypeJSON},
		Type: "`\"raw\"` or `\"json\"`", Default: "`\"raw\"`",
		Meaning: "`json`: each line is written as `{\"message\", \"timestamp\", \"type\": \"out\"|\"err\", \"process_id\", \"app_name\"}`, as PM2 writes it",
		Example: "json",
		Ptr:     func(a *App) any { return &a.LogType },
	},
	{
		Key: "log_file", Kind: KindString, NonEmpty: true, Type: "string", Default: "none",
		Meaning: "a file that gets every line of both streams of every instance, besides `out_file` and `error_file`; relative to `cwd`, checked as `out_file`; PM2's `log` is read as it",
		Example: "/var/log/all.log",
		Ptr:     func(a *App) any { return &a.LogFile },
	},
	{
		Key: "merge_logs", Kind: KindBool, Type: "boolean", Default: "false",
		Meaning: "all instances write to `<name>-out.log` and `<name>-err.log` instead of one pair per instance; PM2's `combine_logs` is read as it",
		Example: "true",
		Ptr:     func(a *App) any { return &a.MergeLogs },
	},
	// How apps run, as PM2 users expect (docs/migrating-from-pm2.md).
	{
		Key: "env_file", Kind: KindPaths, Type: "path or array of paths", Default: "none",
		Meaning: "dotenv files relative to `cwd`, read at each start; a later file overrides an earlier one, `env` overrides them all; no `.env` is read unless named here",
		Example: "prod.env",
		Ptr:     func(a *App) any { return &a.EnvFile },
	},
	{
		Key: "cron_restart", Flag: "cron-restart", Usage: "restart the app at these times (cron: \"0 3 * * *\", 6 fields with seconds, @every 1h)",
		Kind: KindString, NonEmpty: true, Type: "cron expression: 5 fields, 6 with seconds first, `@daily`, `@every 1h`", Default: "none",
		Meaning: "restart every instance at these times (a restart, counted, reason `cron_restart EXPR`)",
		Example: "0 3 * * *",
		Ptr:     func(a *App) any { return &a.CronRestart },
	},
	{
		Key: "stop_exit_codes", Kind: KindCodes, Type: "exit code or array of exit codes (0-255)", Default: "none",
		Meaning: "an instance that exits with one of these is not restarted (it stays `stopped`)",
		Example: "143",
		Ptr:     func(a *App) any { return &a.StopExitCodes },
	},
	{
		Key: "watch", Flag: "watch", Usage: "restart the app when files under cwd change (--watch=a,b: those paths)",
		Kind: KindWatch, Type: "`true`, `false`, a path or an array of paths", Default: "false",
		Meaning: "restart when a file changes under `cwd` (true) or under these paths (relative to `cwd`), recursively; `node_modules` and `.git` are never watched",
		Example: "src",
		Ptr:     func(a *App) any { return &a.Watch },
	},
	{
		Key: "ignore_watch", Kind: KindPaths, Type: "glob or array of globs", Default: "none",
		Meaning: "changes to paths matching these are ignored (matched against each path relative to `cwd` and against its base name); a matching directory is not entered",
		Example: "*.log",
		Ptr:     func(a *App) any { return &a.IgnoreWatch },
	},
	{
		Key: "watch_delay", Kind: KindDuration, Type: "milliseconds or duration", Default: DefaultWatchDelay.String(),
		Meaning: "changes are gathered until none came for this long, then the app restarts once",
		Example: "300ms",
		Ptr:     func(a *App) any { return &a.WatchDelay },
	},
	{
		Key: "watch_options", Kind: KindOptions, Type: "object", Default: "none",
		Meaning: "accepted for PM2 files and unused: pmdaemon watches with inotify (`usePolling` is ignored)",
		Example: `{"usePolling": true}`,
		Ptr:     func(a *App) any { return &a.WatchOptions },
	},
	// PM2's grouping and pid files (docs/migrating-from-pm2.md).
	{
		Key: "namespace", Flag: "namespace", Usage: "the app's namespace: a TARGET that names every app in it (default: \"default\")",
		Kind: KindString, NonEmpty: true, Type: "string, named as an app is", Default: "`\"default\"`",
		Meaning: "`stop`, `restart`, `delete`... NAMESPACE act on every app in it; an app of that name is taken first, as in PM2",
		Example: "backend",
		Ptr:     func(a *App) any { return &a.Namespace },
	},
	{
		Key: "pid_file", Flag: "pid-file", Usage: "write each instance's pid to this file (NAME.pid becomes NAME-INDEX.pid)",
		Kind: KindString, NonEmpty: true, Type: "path", Default: "none (no pid files)",
		Meaning: "relative to `cwd`; each instance's pid is written at every start and the file removed when it stops; a name ending in `.pid` gets the instance's index before it (`run/web.pid` → `run/web-0.pid`, `run/web-1.pid`)",
		Example: "/run/web.pid",
		Ptr:     func(a *App) any { return &a.PidFile },
	},
	{
		Key: "socket", Flag: "socket", Usage: "the daemon binds the ports and hands the listening sockets to the app (fd 3, LISTEN_FDS); \"shared\": one port for every instance",
		FlagDefault: "false", Kind: KindSocket, Type: "`true`, `false` or `\"shared\"`", Default: "false",
		Meaning: "the daemon holds the listening sockets; `\"shared\"`: one port, every instance accepts on it ([sockets.md](sockets.md))",
		Example: "true",
		Ptr:     func(a *App) any { return &a.Socket },
	},
	{
		Key: "bind", Flag: "bind", Usage: "address the daemon binds the app's sockets on (default: every address)",
		Kind: KindString, Type: "IP address", Default: "every address (`[::]` with IPv4 too)",
		Meaning: "with `socket`: the address the sockets are bound on",
		Example: "127.0.0.1",
		Ptr:     func(a *App) any { return &a.Bind },
	},
	{
		Key: "ready", Flag: "ready", Usage: "readiness rule: port (the port accepts a connection), notify (READY=1), uptime (up for min-uptime)",
		Kind: KindChoice, Choices: []string{ReadyPort, ReadyNotify, ReadyUptime},
		Type: "`\"port\"`, `\"notify\"` or `\"uptime\"`", Default: "`\"port\"` with a port, else `\"uptime\"`",
		Meaning: "when a new instance counts as ready; a health check overrides it ([sockets.md](sockets.md#readiness))",
		Example: "notify",
		Ptr:     func(a *App) any { return &a.Ready },
	},
	{
		Key: "watchdog", Flag: "watchdog", Usage: "restart an instance that sends no WATCHDOG=1 to NOTIFY_SOCKET within this",
		FlagDefault: "0", Kind: KindDuration, Type: "milliseconds or duration, at least 100ms", Default: "0 (off)",
		Meaning: "restart an instance silent for this long (sd_notify `WATCHDOG=1`; `WATCHDOG_USEC` is set)",
		Example: "10s",
		Ptr:     func(a *App) any { return &a.Watchdog },
	},
	{
		Key: "shutdown_with_message", Kind: KindBool, Type: "boolean", Default: "false",
		Meaning: "stop the app by sending `'shutdown'` on its IPC channel (`process.on('message')` in node) instead of SIGTERM; SIGKILL after `kill_timeout` as for any stop",
		Example: "true",
		Ptr:     func(a *App) any { return &a.ShutdownWithMessage },
	},
	// Dependencies between the apps of a file (issue 14, process-compose's key).
	{
		Key: "depends_on", Kind: KindDepends,
		Type: "array of app names, or object of name: `{\"condition\": C}`", Default: "none",
		Meaning: "start after these apps meet their condition: `\"started\"` (a list's meaning), `\"ready\"`, or `\"completed_successfully\"` (exited 0; that app needs `autorestart: false`); stop before them ([behaviour.md](behaviour.md#dependencies))",
		Example: `["db"]`,
		Ptr:     func(a *App) any { return &a.DependsOn },
	},
}

// HealthFields are the keys of a health_check object; their flags are `start`'s --health-*.
var HealthFields = []Field[HealthCheck]{
	{
		Key: "url", Flag: "health-url", Usage: "HTTP health check; {port} is the instance's port (http://127.0.0.1:{port}/health)",
		Kind: KindString, NonEmpty: true, Type: "string", Default: "one of `url`, `script`",
		Meaning: "HTTP GET on this machine; `{port}` is the instance's port; 2xx is healthy, a redirect is not followed (it fails the check). Only loopback hosts (`127.0.0.1`, `[::1]`, `localhost`)",
		Example: "http://127.0.0.1:{port}/health",
		Ptr:     func(h *HealthCheck) any { return &h.URL },
	},
	{
		Key: "script", Flag: "health-script", Usage: "command health check: healthy when it exits 0 (runs in cwd with PORT set)",
		Kind: KindString, NonEmpty: true, Type: "string",
		Meaning: "a command line run in the app's `cwd` with the instance's environment (`PORT`); exit 0 is healthy",
		Example: "true",
		Ptr:     func(h *HealthCheck) any { return &h.Script },
	},
	{
		Key: "interval", Flag: "health-interval", Usage: "time between health checks", FlagDefault: DefaultHealthInterval.String(),
		Kind: KindDuration, Positive: true, Type: "milliseconds or duration", Default: DefaultHealthInterval.String(),
		Meaning: "between checks; under 100ms counts as 100ms",
		Example: "3s",
		Ptr:     func(h *HealthCheck) any { return &h.Interval },
	},
	{
		Key: "timeout", Flag: "health-timeout", Usage: "time a health check may take", FlagDefault: DefaultHealthTimeout.String(),
		Kind: KindDuration, Positive: true, Type: "milliseconds or duration", Default: DefaultHealthTimeout.String(),
		Meaning: "a check that takes longer failed",
		Example: "1s",
		Ptr:     func(h *HealthCheck) any { return &h.Timeout },
	},
	{
		Key: "retries", Flag: "health-retries", Usage: "consecutive failed checks that make an instance unhealthy",
		FlagDefault: strconv.Itoa(DefaultHealthRetries), Kind: KindCount, Min: 1, Max: 1000, FlagMin: "must be at least 1",
		Type: "whole number 1-1000", Default: strconv.Itoa(DefaultHealthRetries),
		Meaning: "consecutive failures that make the instance unhealthy",
		Example: "4",
		Ptr:     func(h *HealthCheck) any { return &h.Retries },
	},
	{
		Key: "restart", Flag: "no-health-restart", Negated: true, Usage: "report an unhealthy instance without restarting it",
		FlagDefault: "false", Kind: KindBool, Type: "boolean", Default: "true",
		Meaning: "restart an unhealthy instance (false: only report it)",
		Example: "false",
		Ptr:     func(h *HealthCheck) any { return &h.Restart },
	},
}

// AppField is the app field of key; it panics for a key no field has, which is a mistake in
// the caller's code, not in anyone's input.
func AppField(key string) *Field[App] {
	if f := fieldByKey(AppFields, key); f != nil {
		return f
	}
	panic(fmt.Sprintf("config: no app field %q", key))
}

// keyNames are the keys (and aliases) of fields, in table order: the "did you mean" list.
func keyNames[T any](fields []Field[T]) []string {
	var out []string
	for i := range fields {
		out = append(out, fields[i].Names()...)
	}
	return out
}

// fieldByKey finds the field a key (or alias) names.
func fieldByKey[T any](fields []Field[T], key string) *Field[T] {
	for i := range fields {
		for _, n := range fields[i].Names() {
			if n == key {
				return &fields[i]
			}
		}
	}
	return nil
}

// FieldError is a config value (or key) that cannot be used, at a place. Code that moves an
// error to another place (an app's label, a Lua line) sets Where through errors.As rather
// than editing the text.
type FieldError struct {
	// Where is the place: `eco.json: apps[0] (web)`, `ecosystem.lua:3: cluster.start (web)`,
	// `app "web"`, or "--max-restarts" for a CLI flag; "" when the message stands alone.
	Where string
	// Key is the field's key ("max_restarts", "health_check"), "" for the app as a whole.
	Key string
	// Value is, for a CLI flag, the text given.
	Value string
	// Err says what is wrong. Its text names the key the way the message always has
	// (`"max_restarts" must be ...`, `max_restarts must not be ...`).
	Err error
}

func (e *FieldError) Error() string {
	switch {
	case e.Where == "":
		return e.Err.Error()
	case strings.HasPrefix(e.Where, "--"):
		return fmt.Sprintf("invalid value %q for %s: %v", e.Value, e.Where, e.Err)
	}
	return e.Where + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

// UnknownKeyError is a key no field has. Suggestion is the nearest known key, when the key
// looks like a typo of it.
type UnknownKeyError struct {
	Key, Suggestion string
	// Known lists the keys of Object ("a health check") when there is no suggestion and the
	// list is short enough to show.
	Object string
	Known  []string
}

func (e *UnknownKeyError) Error() string {
	switch {
	case e.Suggestion != "":
		return fmt.Sprintf("unknown key %q (did you mean %q?)", e.Key, e.Suggestion)
	case len(e.Known) > 0:
		return fmt.Sprintf("unknown key %q (%s has %s)", e.Key, e.Object, strings.Join(e.Known, ", "))
	}
	return fmt.Sprintf("unknown key %q", e.Key)
}

// Suggest returns the option nearest to k when k is likely a misspelling of it, else "". The
// CLI uses it for unknown flags, as the readers do for unknown keys.
func Suggest(k string, options []string) string { return suggest(k, options) }

// FlagNames are the `start` flags the field tables declare (without "--").
func FlagNames() []string {
	var out []string
	for i := range AppFields {
		if AppFields[i].Flag != "" {
			out = append(out, AppFields[i].Flag)
		}
	}
	for i := range HealthFields {
		out = append(out, HealthFields[i].Flag)
	}
	return out
}

// decode reads v, a decoded JSON or Lua value, as the field's kind. The error says what is
// wrong without the key; the caller puts the key in front.
func (f *Field[T]) decode(v any) (any, error) {
	switch f.Kind {
	case KindString:
		s, ok := v.(string)
		if f.NonEmpty && (!ok || strings.TrimSpace(s) == "") {
			return nil, fmt.Errorf("must be a non-empty string, got %s", describe(v))
		}
		if !ok {
			return nil, fmt.Errorf("must be a string, got %s", typeName(v))
		}
		return s, nil
	case KindWords:
		switch a := v.(type) {
		case string:
			return SplitCommand(a)
		case []any:
			var words []string
			for i, x := range a {
				s, ok := scalarString(x)
				if !ok {
					return nil, fmt.Errorf("[%d] must be a string, got %s", i, typeName(x))
				}
				words = append(words, s)
			}
			return words, nil
		}
		return nil, fmt.Errorf("must be an array of strings or a string, got %s", typeName(v))
	case KindEnv:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("must be an object of NAME: value, got %s", typeName(v))
		}
		env := map[string]string{}
		for name, x := range obj {
			s, err := envValue(x)
			if err != nil {
				return nil, fmt.Errorf("value of %s: %v", name, err)
			}
			env[name] = s
		}
		return env, nil
	case KindInstances:
		if s, ok := v.(string); ok {
			return instancesCount(s)
		}
		n, ok := wholeNumber(v)
		if !ok {
			return nil, fmt.Errorf("must be a whole number or \"max\", got %s", describe(v))
		}
		return instancesCount(strconv.FormatInt(n, 10))
	case KindPort:
		s, ok := v.(string)
		if !ok {
			n, isNum := wholeNumber(v)
			if !isNum {
				return nil, fmt.Errorf("must be a port spec string or a port number, got %s", typeName(v))
			}
			s = strconv.FormatInt(n, 10)
		}
		if strings.TrimSpace(s) == "" {
			return nil, errors.New("is empty; leave the key out for an app without ports")
		}
		return s, nil
	case KindBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("must be true or false, got %s", typeName(v))
		}
		return b, nil
	case KindCount:
		n, ok := wholeNumber(v)
		if !ok || n < f.Min || n > f.Max {
			if f.Max == math.MaxInt32 {
				return nil, fmt.Errorf("must be a whole number of at least %d, got %s", f.Min, describe(v))
			}
			return nil, fmt.Errorf("must be a whole number from %d to %d, got %s", f.Min, f.Max, describe(v))
		}
		return int(n), nil
	case KindDuration:
		d, err := durationValue(v)
		if err != nil {
			return nil, err
		}
		if f.Positive && d <= 0 {
			return nil, fmt.Errorf("must be positive, got %s", describe(v))
		}
		return d, nil
	case KindSize:
		if s, ok := v.(string); ok {
			return ParseMemory(s)
		}
		if n, ok := wholeNumber(v); ok && n > 0 {
			return n, nil
		}
		return nil, fmt.Errorf("must be a size like \"200M\" or a number of bytes, got %s", describe(v))
	case KindSocket:
		return socketValue(v)
	case KindChoice:
		s, ok := v.(string)
		if !ok || !slices.Contains(f.Choices, s) {
			return nil, fmt.Errorf("must be one of %s, got %s", quoteAll(f.Choices), describe(v))
		}
		return s, nil
	case KindPaths:
		return pathList(v)
	case KindWatch:
		if b, ok := v.(bool); ok {
			if b {
				return []string{"."}, nil
			}
			return []string(nil), nil
		}
		paths, err := pathList(v)
		if err != nil {
			return nil, fmt.Errorf("must be true, false, a path or an array of paths, got %s", typeName(v))
		}
		return paths, nil
	case KindCodes:
		if _, ok := v.([]any); !ok {
			v = []any{v}
		}
		var codes []int
		for i, x := range v.([]any) {
			n, ok := wholeNumber(x)
			if !ok || n < 0 || n > 255 {
				return nil, fmt.Errorf("[%d] must be an exit code 0-255, got %s", i, describe(x))
			}
			codes = append(codes, int(n))
		}
		return codes, nil
	case KindOptions:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("must be an object, got %s", typeName(v))
		}
		return obj, nil
	case KindDepends:
		return dependsValue(v)
	case KindHealth:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("must be an object like {\"url\": \"http://127.0.0.1:{port}/health\"}, got %s", typeName(v))
		}
		return healthFromMap(obj)
	}
	return nil, fmt.Errorf("field %s has no reader for its kind %d", f.Key, f.Kind)
}

// fromMap sets t's fields from the keys of m, in key order. keyText shows a key in errors
// (apps quote theirs, a health check does not); unknown reports a key no field has. Errors
// are *FieldError without Where.
func fromMap[T any](fields []Field[T], t *T, m map[string]any, keyText func(string) string, unknown func(string) error) error {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sortStrings(names)
	byKey := make(map[string]*Field[T], len(names))
	for _, k := range names {
		f := fieldByKey(fields, k)
		if f == nil {
			return &FieldError{Key: k, Err: unknown(k)}
		}
		if _, dup := byKey[f.Key]; dup {
			return &FieldError{Key: f.Key, Err: fmt.Errorf("%s and %s are the same key; give one", keyText(firstSet(f, m)), keyText(k))}
		}
		byKey[f.Key] = f
	}
	for _, k := range names {
		f, v := byKey[fieldByKey(fields, k).Key], m[k]
		if f.Kind.whole() {
			if msg := notWhole(v); msg != "" {
				return &FieldError{Key: f.Key, Err: fmt.Errorf("%s: %s", keyText(k), msg)}
			}
		}
		x, err := f.decode(v)
		if err != nil {
			return &FieldError{Key: f.Key, Err: fmt.Errorf("%s %w", keyText(k), err)}
		}
		f.set(t, x)
	}
	return nil
}

// firstSet is the first of f's names, in key order, that m sets.
func firstSet[T any](f *Field[T], m map[string]any) string {
	var first string
	for _, n := range f.Names() {
		if _, ok := m[n]; ok && (first == "" || n < first) {
			first = n
		}
	}
	return first
}

// FlagValue reads a CLI flag's text (all the values of a repeatable flag) as field f of t;
// the caller checks first that the flag was given. An empty --port or --max-memory means
// none, as leaving the flag out does.
func (f *Field[T]) FlagValue(t *T, texts []string) error {
	if len(texts) == 0 {
		return nil
	}
	text := texts[len(texts)-1]
	bad := func(err error) error {
		return &FieldError{Where: "--" + f.Flag, Key: f.Key, Value: text, Err: err}
	}
	var v any
	switch f.Kind {
	case KindString:
		v = text
	case KindEnv:
		env := map[string]string{}
		for _, kv := range texts {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				text = kv
				return bad(errors.New("use NAME=VALUE"))
			}
			env[k] = val
		}
		v = env
	case KindInstances:
		n, err := ParseInstances(text)
		if err != nil {
			return bad(err)
		}
		v = n
	case KindPort:
		if text == "" {
			return nil
		}
		spec, err := ports.ParseSpec(text)
		if err != nil {
			return &FieldError{Key: f.Key, Value: text, Err: err} // the spec's message, word for word
		}
		v = spec.String()
	case KindBool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return bad(err)
		}
		v = b != f.Negated
	case KindCount:
		n, err := strconv.ParseInt(text, 10, 64)
		switch {
		case err != nil:
			return bad(err)
		case n < f.Min && f.FlagMin != "":
			return bad(errors.New(f.FlagMin))
		case f.Max == math.MaxInt32 && n > f.Max:
			return bad(fmt.Errorf("must be at most %d", f.Max))
		case n < f.Min || n > f.Max:
			return bad(fmt.Errorf("must be %d-%d", f.Min, f.Max))
		}
		v = int(n)
	case KindDuration:
		d, err := ParseDuration(text)
		if err == nil && d <= 0 && (f.Positive || f.FlagPositive) {
			err = errors.New("must be a positive duration such as 2s")
		}
		if err != nil {
			return bad(err)
		}
		v = d
	case KindSocket:
		m, err := ParseSocketMode(text)
		if err != nil {
			return bad(err)
		}
		v = m
	case KindChoice:
		if !slices.Contains(f.Choices, text) {
			return bad(fmt.Errorf("must be one of %s", quoteAll(f.Choices)))
		}
		v = text
	case KindWatch:
		switch b, err := strconv.ParseBool(text); {
		case err == nil && b:
			v = []string{"."}
		case err == nil:
			v = []string(nil)
		default:
			var paths []string
			for _, p := range strings.Split(text, ",") {
				if p = strings.TrimSpace(p); p == "" {
					return bad(errors.New("use --watch alone, or --watch=PATH,PATH"))
				}
				paths = append(paths, p)
			}
			v = paths
		}
	case KindSize:
		if text == "" {
			return nil
		}
		n, err := ParseMemory(text)
		if err != nil {
			return bad(err)
		}
		v = n
	default:
		return fmt.Errorf("--%s: the command line has no reader for %s", f.Flag, f.Key)
	}
	f.set(t, v)
	return nil
}

// pathList reads a path or an array of paths.
func pathList(v any) ([]string, error) {
	switch a := v.(type) {
	case string:
		if strings.TrimSpace(a) == "" {
			return nil, errors.New("must be a path, got an empty string")
		}
		return []string{a}, nil
	case []any:
		var paths []string
		for i, x := range a {
			s, ok := x.(string)
			if !ok || strings.TrimSpace(s) == "" {
				return nil, fmt.Errorf("[%d] must be a non-empty string, got %s", i, describe(x))
			}
			paths = append(paths, s)
		}
		return paths, nil
	}
	return nil, fmt.Errorf("must be a string or an array of strings, got %s", typeName(v))
}

// quoteAll is choices as a list of quoted words: "a", "b" or "c".
func quoteAll(choices []string) string {
	q := make([]string, len(choices))
	for i, c := range choices {
		q[i] = strconv.Quote(c)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// envValue is the text an environment variable gets for a value of "env". Strings, numbers and
// booleans are written as they read; null, objects and arrays become their JSON text
// ("null", {"x":1}), which is what PM2 hands its apps for them, so a PM2 file that nests
// settings in env runs as it did (object keys come out sorted, where PM2 keeps their order).
func envValue(v any) (string, error) {
	if s, ok := scalarString(v); ok {
		return s, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("cannot be written as text: %v", err)
	}
	return string(b), nil
}
