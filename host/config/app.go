// Package config is the App spec model shared by CLI flags, JSON and Lua ecosystem files,
// with the parsers for the value formats they share (durations, memory sizes, instance counts)
// and the one place where an App is validated.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pmdaemon/pmdaemon/host/ports"
)

// Defaults follow PM2 where PM2 has one.
const (
	DefaultMaxRestarts = 15
	DefaultMinUptime   = time.Second
	DefaultKillTimeout = 5 * time.Second
	// MaxBackoffDelay caps exp_backoff_restart_delay growth.
	MaxBackoffDelay = 15 * time.Second

	DefaultHealthInterval = 5 * time.Second
	DefaultHealthTimeout  = 2 * time.Second
	DefaultHealthRetries  = 3
	// DefaultWaitTimeout bounds wait_ready (PM2's listen_timeout is 3 s; apps that build
	// caches at start need more).
	DefaultWaitTimeout = 30 * time.Second
	DefaultLogMaxSize  = 10 << 20
	DefaultLogKeep     = 5
	// MinLogMaxSize keeps rotation meaningful: it moves whole filesystem blocks.
	MinLogMaxSize = 64 << 10
)

// HealthCheck probes an instance: an HTTP GET answered with 2xx, or a command that exits 0.
type HealthCheck struct {
	// URL may contain {port}, replaced by the instance's port. Only loopback hosts: a health
	// check probes the instance on this machine.
	URL string `json:"url,omitempty"`
	// Script is a command line run in the app's cwd with the instance's environment (PORT).
	Script   string        `json:"script,omitempty"`
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
	// Retries consecutive failed checks make the instance unhealthy.
	Retries int `json:"retries"`
	// Restart an unhealthy instance (the default); false only reports it.
	Restart bool `json:"restart"`
}

// NewHealthCheck returns a check with the defaults applied.
func NewHealthCheck() *HealthCheck {
	return &HealthCheck{Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout, Retries: DefaultHealthRetries, Restart: true}
}

// Check validates the health check of app (which has ports when hasPort).
func (h *HealthCheck) Check(app string, hasPort bool) error {
	bad := func(format string, a ...any) error {
		return &FieldError{Where: fmt.Sprintf("app %q", app), Key: "health_check", Err: fmt.Errorf("health_check: %s", fmt.Sprintf(format, a...))}
	}
	switch {
	case h.URL == "" && h.Script == "":
		return bad("set url (an HTTP check) or script (a command check)")
	case h.URL != "" && h.Script != "":
		return bad("set url or script, not both")
	case h.Interval <= 0:
		return bad("interval must be positive, got %s", h.Interval)
	case h.Timeout <= 0:
		return bad("timeout must be positive, got %s", h.Timeout)
	case h.Retries < 1:
		return bad("retries must be at least 1, got %d", h.Retries)
	}
	if h.Script != "" {
		words, err := SplitCommand(h.Script)
		if err != nil {
			return bad("script: %v", err)
		}
		if len(words) == 0 {
			return bad("script is empty")
		}
		return nil
	}
	if strings.Contains(h.URL, "{port}") && !hasPort {
		return bad("url %q uses {port} but the app has no port", h.URL)
	}
	u, err := url.Parse(strings.ReplaceAll(h.URL, "{port}", "1"))
	if err != nil {
		return bad("url %q is not a URL: %v", h.URL, errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad("url %q must start with http:// or https://", h.URL)
	}
	if u.Host == "" {
		return bad("url %q has no host; write http://127.0.0.1:{port}/health", h.URL)
	}
	if !loopback(u.Hostname()) {
		return bad("url %q points at %s, which is not this machine's loopback; a health check probes "+
			"the instance itself: use 127.0.0.1, [::1] or localhost", h.URL, u.Hostname())
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("url %q has port %q, not one of 1-65535", h.URL, p)
		}
	}
	return nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// App is one application as the user configured it. The daemon saves it unchanged; runtime
// overrides (restart --port) live beside it, never inside it.
type App struct {
	Name                   string            `json:"name"`
	Script                 string            `json:"script"`
	Args                   []string          `json:"args,omitempty"`
	Cwd                    string            `json:"cwd,omitempty"`
	Env                    map[string]string `json:"env,omitempty"`
	Instances              int               `json:"instances"`
	Port                   string            `json:"port,omitempty"`
	Autorestart            bool              `json:"autorestart"`
	MaxRestarts            int               `json:"max_restarts"`
	MinUptime              time.Duration     `json:"min_uptime"`
	RestartDelay           time.Duration     `json:"restart_delay"`
	ExpBackoffRestartDelay time.Duration     `json:"exp_backoff_restart_delay"`
	KillTimeout            time.Duration     `json:"kill_timeout"`
	MaxMemoryRestart       int64             `json:"max_memory_restart,omitempty"`
	OutFile                string            `json:"out_file,omitempty"`
	ErrorFile              string            `json:"error_file,omitempty"`
	HealthCheck            *HealthCheck      `json:"health_check,omitempty"`
	// WaitReady makes start, restart and reload answer only once every new instance is ready
	// (healthy, or up for min_uptime without a health check), failing after WaitTimeout.
	WaitReady   bool          `json:"wait_ready,omitempty"`
	WaitTimeout time.Duration `json:"wait_timeout,omitempty"`
	// LogMaxSize and LogKeep rotate each log file at that size, keeping that many old ones;
	// 0 means the default.
	LogMaxSize int64 `json:"log_max_size,omitempty"`
	LogKeep    int   `json:"log_keep,omitempty"`
	// Socket makes the daemon bind the app's ports and hand the listening sockets to its
	// instances (DESIGN §10); Bind is the address it binds them on ("" = every address).
	Socket SocketMode `json:"socket,omitempty"`
	Bind   string     `json:"bind,omitempty"`
	// Ready names the readiness rule ("port", "notify", "uptime"; "" = ReadyRule's default).
	Ready string `json:"ready,omitempty"`
	// Watchdog restarts an instance that sends no WATCHDOG=1 to NOTIFY_SOCKET for this long.
	Watchdog time.Duration `json:"watchdog,omitempty"`

	// EnvFile are dotenv files (relative to Cwd) read at each launch; Env overrides them.
	EnvFile []string `json:"env_file,omitempty"`
	// CronRestart restarts the app at the times of this cron expression.
	CronRestart string `json:"cron_restart,omitempty"`
	// StopExitCodes are exit codes after which the instance is not restarted.
	StopExitCodes []int `json:"stop_exit_codes,omitempty"`
	// Watch are the paths (relative to Cwd) whose changes restart the app; none: no watching.
	Watch       []string      `json:"watch,omitempty"`
	IgnoreWatch []string      `json:"ignore_watch,omitempty"`
	WatchDelay  time.Duration `json:"watch_delay,omitempty"`
	// WatchOptions are PM2's chokidar options, kept as given; pmdaemon uses none of them.
	WatchOptions map[string]any `json:"watch_options,omitempty"`

	// PM2's log keys (docs/migrating-from-pm2.md#logs): Time stamps each line with
	// DefaultLogDateFormat, LogDateFormat (moment.js) with its own format; LogType "json"
	// writes each line as a JSON object; LogFile is a file that gets both streams besides
	// out_file and error_file; MergeLogs gives all instances one out and one err log.
	Time          bool   `json:"time,omitempty"`
	LogDateFormat string `json:"log_date_format,omitempty"`
	LogType       string `json:"log_type,omitempty"`
	LogFile       string `json:"log_file,omitempty"`
	MergeLogs     bool   `json:"merge_logs,omitempty"`
	// Namespace groups apps under one more TARGET, as PM2's namespace does; "" is
	// DefaultNamespace.
	Namespace string `json:"namespace,omitempty"`
	// PidFile, when set, is where each instance's pid is written while it runs (PM2's
	// pid_file, with -<index> put before .pid); relative to Cwd.
	PidFile string `json:"pid_file,omitempty"`
	// ShutdownWithMessage stops the app by sending "shutdown" on its IPC channel instead of
	// SIGTERM (PM2's key of that name).
	ShutdownWithMessage bool `json:"shutdown_with_message,omitempty"`
	// DependsOn are the apps this one waits for when they start together, and stops before.
	DependsOn []Dependency `json:"depends_on,omitempty"`
}

// DefaultWatchDelay debounces a burst of file changes into one restart.
const DefaultWatchDelay = time.Second

// WatchIgnoredByDefault are never watched, as in PM2: dependency trees and version control
// change often and are large.
var WatchIgnoredByDefault = []string{"node_modules", ".git"}

// Debounce is the watch_delay in force.
func (a *App) Debounce() time.Duration {
	if a.WatchDelay > 0 {
		return a.WatchDelay
	}
	return DefaultWatchDelay
}

// Waiting is the wait_timeout in force.
func (a *App) Waiting() time.Duration {
	if a.WaitTimeout > 0 {
		return a.WaitTimeout
	}
	return DefaultWaitTimeout
}

// LogLimits are the rotation size and count in force.
func (a *App) LogLimits() (int64, int) {
	size, keep := a.LogMaxSize, a.LogKeep
	if size == 0 {
		size = DefaultLogMaxSize
	}
	if keep == 0 {
		keep = DefaultLogKeep
	}
	return size, keep
}

// NewApp returns an App with every default applied.
func NewApp() App {
	return App{
		Instances:   1,
		Autorestart: true,
		MaxRestarts: DefaultMaxRestarts,
		MinUptime:   DefaultMinUptime,
		KillTimeout: DefaultKillTimeout,
	}
}

// Validate checks everything that can be checked without touching the system. Its errors
// are *FieldError, placed at `app "NAME"` (or nowhere, for a message that names the app
// itself); a reader that knows a better place sets Where.
func (a *App) Validate() error {
	if err := CheckName(a.Name); err != nil {
		return &FieldError{Key: "name", Err: err}
	}
	bad := func(key, format string, x ...any) error {
		return &FieldError{Where: fmt.Sprintf("app %q", a.Name), Key: key, Err: fmt.Errorf(format, x...)}
	}
	if strings.TrimSpace(a.Script) == "" {
		return bad("script", "script is missing")
	}
	if a.Instances < 1 {
		return bad("instances", "instances must be at least 1, got %d", a.Instances)
	}
	if err := a.checkSizes(); err != nil {
		return err
	}
	if a.MaxRestarts < 0 {
		return bad("max_restarts", "max_restarts must not be negative, got %d", a.MaxRestarts)
	}
	for _, d := range []struct {
		key string
		d   time.Duration
	}{
		{"min_uptime", a.MinUptime}, {"restart_delay", a.RestartDelay},
		{"exp_backoff_restart_delay", a.ExpBackoffRestartDelay}, {"kill_timeout", a.KillTimeout},
	} {
		if d.d < 0 {
			return bad(d.key, "%s must not be negative, got %s", d.key, d.d)
		}
	}
	if a.MaxMemoryRestart < 0 {
		return bad("max_memory_restart", "max_memory_restart must not be negative")
	}
	if a.WaitTimeout < 0 {
		return bad("wait_timeout", "wait_timeout must not be negative, got %s", a.WaitTimeout)
	}
	if a.LogMaxSize != 0 && a.LogMaxSize < MinLogMaxSize {
		return bad("log_max_size", "log_max_size must be at least 64K, got %d bytes", a.LogMaxSize)
	}
	if a.LogKeep < 0 || a.LogKeep > 1000 {
		return bad("log_keep", "log_keep must be 1-1000, got %d", a.LogKeep)
	}
	if a.LogDateFormat != "" {
		if _, err := MomentLayout(a.LogDateFormat); err != nil {
			return bad("log_date_format", "log_date_format %v", err)
		}
	}
	if a.LogType != "" && a.LogType != LogTypeRaw && a.LogType != LogTypeJSON {
		return bad("log_type", "log_type must be %q or %q, got %q", LogTypeRaw, LogTypeJSON, a.LogType)
	}
	if a.HealthCheck != nil {
		if err := a.HealthCheck.Check(a.Name, a.Port != ""); err != nil {
			return err
		}
	}
	for k := range a.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return bad("env", "env name %q is not valid", k)
		}
	}
	if err := a.checkRunKeys(bad); err != nil {
		return err
	}
	if err := a.checkPM2Keys(bad); err != nil {
		return err
	}
	if err := a.checkSockets(bad); err != nil {
		return err
	}
	if err := a.checkDepends(bad); err != nil {
		return err
	}
	if a.Port != "" {
		spec, err := ports.ParseSpec(a.Port)
		if err != nil {
			return bad("port", "%w", err)
		}
		if err := spec.CheckInstances(a.SharedPorts(a.Instances)); err != nil {
			if spec.Kind != ports.Single {
				return &FieldError{Key: "port", Err: err} // the spec's message, word for word
			}
			return bad("port", "%w", err)
		}
	}
	return nil
}

// interpreters maps a script extension to the program that runs it.
var interpreters = map[string]string{".js": "node", ".mjs": "node", ".cjs": "node", ".py": "python3", ".sh": "bash"}

// Argv resolves the app's script and args into the argv to execute, in the app's cwd and
// with the given PATH. It reports a script that is neither a file nor a command on PATH. A
// script with shell syntax ($VAR, &&, |, redirections, globs) runs through /bin/sh -c, as
// PM2 and Procfile managers do; the shell reports a command it cannot find.
func (a *App) Argv(path string) ([]string, error) {
	words, err := SplitCommand(a.Script)
	if err != nil {
		return nil, fmt.Errorf("app %q: script: %w", a.Name, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("app %q: script is missing", a.Name)
	}
	if shell, compound := ShellSyntax(a.Script); shell {
		return shellArgv(a.Script, a.Args, compound), nil
	}
	first := words[0]
	rest := append(words[1:len(words):len(words)], a.Args...)
	local := first
	if !filepath.IsAbs(local) {
		local = filepath.Join(a.Cwd, local)
	}
	if interp, ok := interpreters[filepath.Ext(first)]; ok {
		if _, err := os.Stat(local); err != nil {
			return nil, fmt.Errorf("app %q: script %q not found in %s", a.Name, first, a.Cwd)
		}
		prog, err := lookPath(interp, path)
		if err != nil {
			return nil, fmt.Errorf("app %q: interpreter %q for %s is not installed (not on PATH)", a.Name, interp, first)
		}
		return append([]string{prog, local}, rest...), nil
	}
	if strings.Contains(first, "/") {
		st, err := os.Stat(local)
		if err != nil {
			return nil, fmt.Errorf("app %q: script %q not found in %s", a.Name, first, a.Cwd)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("app %q: script %q is not an executable file", a.Name, first)
		}
		return append([]string{local}, rest...), nil
	}
	// A bare name is a command on PATH, as in a shell; failing that, a program in cwd (PM2 runs
	// those too).
	if prog, err := lookPath(first, path); err == nil {
		return append([]string{prog}, rest...), nil
	}
	st, err := os.Stat(local)
	switch {
	case err != nil:
		return nil, fmt.Errorf("app %q: script %q not found: not a file in %s and not a command on PATH", a.Name, first, a.Cwd)
	case st.IsDir() || st.Mode()&0o111 == 0:
		return nil, fmt.Errorf("app %q: script %q in %s is not an executable file, and no command of that name is on PATH", a.Name, first, a.Cwd)
	}
	return append([]string{local}, rest...), nil
}

func lookPath(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on PATH", name)
}

// DefaultName is PM2's rule: the script's base name without its extension.
func DefaultName(script string) string {
	words, err := SplitCommand(script)
	if err != nil || len(words) == 0 {
		return ""
	}
	base := filepath.Base(words[0])
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// SplitCommand splits a command line into words the way a POSIX shell would for plain words,
// single and double quotes and backslash escapes; it runs no shell.
func SplitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote in %q", s)
			}
		case c == '\\':
			inWord = true
			if i+1 >= len(s) {
				return nil, fmt.Errorf("trailing backslash in %q", s)
			}
			i++
			cur.WriteByte(s[i])
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// ParseDuration accepts Go duration syntax ("500ms", "2s") or a plain integer of milliseconds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("duration %q is negative", s)
		}
		if n > int64(24*time.Hour/time.Millisecond)*365 {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q is not valid: use Go syntax like 500ms or 2s, or whole milliseconds", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

// ParseMemory parses sizes like "200M", "1G", "512K", "1.5G" or plain bytes.
func ParseMemory(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty memory size")
	}
	mult := float64(1)
	upper := strings.ToUpper(t)
	upper = strings.TrimSuffix(upper, "B")
	if upper == "" {
		return 0, fmt.Errorf("memory size %q is not valid: use a number with K, M or G, like 200M", s)
	}
	switch upper[len(upper)-1] {
	case 'K':
		mult, upper = 1<<10, upper[:len(upper)-1]
	case 'M':
		mult, upper = 1<<20, upper[:len(upper)-1]
	case 'G':
		mult, upper = 1<<30, upper[:len(upper)-1]
	}
	f, err := strconv.ParseFloat(upper, 64)
	// ParseFloat takes "nan", "inf" and hex floats; none is a size. The bound applies after the
	// unit, so "1e15G" cannot overflow, and under one byte would mean "no limit".
	bytes := f * mult
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || bytes < 1 || bytes > 1<<50 {
		return 0, fmt.Errorf("memory size %q is not valid: use a positive number with K, M or G, like 200M (at most 1P)", s)
	}
	return int64(bytes), nil
}

// ParseInstances accepts a positive count or "max" (one per CPU).
func ParseInstances(s string) (int, error) {
	n, err := instancesCount(s)
	if err != nil {
		return 0, fmt.Errorf("instances %w", err)
	}
	return n, nil
}

// instancesCount is ParseInstances with errors that leave the key to the caller, who names
// it in its own way (`"instances" must be at least 1`).
func instancesCount(s string) (int, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "max") {
		return runtime.NumCPU(), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not valid: use a whole number or \"max\"", s)
	}
	if n < 1 {
		return 0, fmt.Errorf("must be at least 1, got %d", n)
	}
	if n > MaxInstances {
		return 0, fmt.Errorf("%d is too many (at most %d)", n, MaxInstances)
	}
	return n, nil
}
