// Package api holds the wire types of the daemon's HTTP/JSON API and its client. The CLI, the
// Lua runtime and any other client speak to the daemon only through this package.
package api

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// Version is this build's version: the daemon sends it in the VersionHeader of every answer and
// in ping; a CLI and a daemon of different versions still talk, and the CLI tells the user how
// to bring them together (pmdaemon update). It is a variable only so that a build can set it
// (go build -ldflags "-X github.com/pmdaemon/pmdaemon/host/api.Version=1.2.3"); nothing
// assigns it at run time.
var Version = "0.2.0"

// VersionHeader carries the daemon's Version on every answer, errors included.
const VersionHeader = "Pmdaemon-Version"

// ProblemHeader carries each of the daemon's Problems (see Ping) on every answer, one value
// each, so that a command which makes one request and no ping still shows them.
const ProblemHeader = "Pmdaemon-Problem"

// Instance is one row of `list`.
type Instance struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	// Namespace is the app's namespace ("default" when it names none), as PM2's jlist shows.
	Namespace string  `json:"namespace"`
	Index     int     `json:"instance"` // the instance's position in its app, 0-based
	Status    string  `json:"status"`
	Pid       int     `json:"pid"`
	Port      *int    `json:"port"`
	CPU       float64 `json:"cpu"`
	Memory    uint64  `json:"memory"`
	UptimeMS  int64   `json:"uptime_ms"`
	Restarts  int     `json:"restarts"`
	// Reason says why an instance is errored or was last restarted by the daemon.
	Reason string `json:"reason,omitempty"`
	// Cgroup is the instance's cgroup v2 directory; "" where the daemon runs in
	// process-group mode (Ping.ProcessMode).
	Cgroup string `json:"cgroup,omitempty"`
	// Health is "" without a health check, else checking, healthy or unhealthy.
	Health      string    `json:"health,omitempty"`
	HealthError string    `json:"health_error,omitempty"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	// Socket is "instance" or "shared" when the daemon holds the instance's listening socket.
	Socket string `json:"socket,omitempty"`
	// StatusText is the last STATUS= the instance sent to NOTIFY_SOCKET.
	StatusText string `json:"status_text,omitempty"`
	// AppStopping is true once the instance sent STOPPING=1 (it is shutting down by itself).
	AppStopping bool `json:"app_stopping,omitempty"`
	// Notice is what the daemon noticed about the instance that the user should fix (an app
	// that does not accept on the socket handed to it).
	Notice string `json:"notice,omitempty"`
	OutLog string `json:"out_log"`
	ErrLog string `json:"err_log"`
	// LogFile is the app's combined log (log_file), "" without one. LogTime is the Go layout
	// the log lines start with (then ": "), "" when they carry no time; LogType is "json" when
	// each line is a JSON object (its time in "timestamp", in LogTime's layout).
	LogFile string `json:"log_file,omitempty"`
	LogTime string `json:"log_time,omitempty"`
	LogType string `json:"log_type,omitempty"`
}

// App is what `info` shows.
type App struct {
	Name string `json:"name"`
	// Config is the saved configuration, as started; overrides never change it.
	Config  AppConfig `json:"config"`
	Command []string  `json:"command"`
	// PortSpec is the configured spec, LivePortSpec the one in force (they differ when an
	// override is active).
	PortSpec       string     `json:"port_spec"`
	LivePortSpec   string     `json:"live_port_spec"`
	PortOverride   bool       `json:"port_override"`
	Ports          []int      `json:"ports"`
	CreatedAt      time.Time  `json:"created_at"`
	Instances      []Instance `json:"instances"`
	InstancesCount int        `json:"instances_count"`
}

// StartRequest starts an app. On the wire its app is an AppConfig (see MarshalJSON); App is a
// config.App here because that is what the daemon runs.
type StartRequest struct {
	App config.App `json:"app"`
	// IfExists says what to do when an app of that name exists: "" refuses, "keep" leaves it
	// as it is, "update" replaces its saved config with this one and restarts it.
	IfExists string `json:"if_exists,omitempty"`
	// WaitTimeout overrides the app's wait_timeout for this start (with wait_ready).
	WaitTimeout Duration `json:"wait_timeout,omitzero"`
}

// StartManyRequest starts several apps in one request (an ecosystem file), in order.
type StartManyRequest struct {
	Apps []StartRequest `json:"apps"`
}

// StartManyResult says what a StartManyRequest started, in the order it started them (each
// app after those it depends on). An app that fails does not stop the others, except those
// that depend on it: Failures lists every app that failed or was not started, with why; Failed
// is the index of the first of them (or -1), with Error its error.
type StartManyResult struct {
	Started  []Started      `json:"started"`
	Failed   int            `json:"failed"`
	Error    string         `json:"error,omitempty"`
	Failures []StartFailure `json:"failures,omitempty"`
}

// StartFailure is an app of a StartManyRequest that failed: Index is its place in the request.
type StartFailure struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	Error string `json:"error"`
}

// Started reports what a start, restart or reload brought up.
type Started struct {
	Name      string `json:"name"`
	IDs       []int  `json:"ids"`
	Ports     []int  `json:"ports"`
	Instances int    `json:"instances"`
	// Existed is set when the app was already there (IfExists keep or update).
	Existed bool `json:"existed,omitempty"`
	Updated bool `json:"updated,omitempty"`
	// Warnings are problems that did not stop the operation (a hook plugin that failed).
	Warnings []string `json:"warnings,omitempty"`
}

// TargetRequest names an app, an instance id or "all", with optional runtime overrides.
type TargetRequest struct {
	Target    string `json:"target"`
	Port      string `json:"port,omitempty"`
	Instances int    `json:"instances,omitempty"`
	// WaitReady makes a restart answer once every new instance is ready (a reload always
	// waits); WaitTimeout bounds the wait (0: the app's wait_timeout).
	WaitReady   bool     `json:"wait_ready,omitempty"`
	WaitTimeout Duration `json:"wait_timeout,omitzero"`
}

// Result lists the apps an action touched.
type Result struct {
	Apps     []Started `json:"apps"`
	Warnings []string  `json:"warnings,omitempty"`
}

// Ping is the daemon's liveness answer.
type Ping struct {
	Pid     int    `json:"pid"`
	Version string `json:"version"`
	Home    string `json:"home"`
	// Warnings are problems the daemon met at start-up (a corrupt state file moved aside); the
	// CLI that started the daemon shows them.
	Warnings []string `json:"warnings,omitempty"`
	// Problems are conditions now, shown on every call until they end (the state file cannot
	// be written).
	Problems []string `json:"problems,omitempty"`
	// ProcessMode is how the daemon owns processes: "cgroup" (each instance in its own cgroup
	// v2, killed whole) or "process-group" (the fallback where no cgroup can be made).
	ProcessMode string `json:"process_mode"`
	// CgroupRoot is the daemon's cgroup directory in cgroup mode; in process-group mode,
	// ProcessModeReason says why no cgroup could be made.
	CgroupRoot        string `json:"cgroup_root,omitempty"`
	ProcessModeReason string `json:"process_mode_reason,omitempty"`
}

// PortsAssigned maps ports to the apps holding them.
type PortsAssigned struct {
	Ports map[int]string `json:"ports"`
}

// PortFree answers whether a port could be given to a new app now.
type PortFree struct {
	Port   int    `json:"port"`
	Free   bool   `json:"free"`
	Reason string `json:"reason,omitempty"`
}

// PluginAddRequest registers a plugin (POST /v1/plugins/add) or declares one from an ecosystem
// file (POST /v1/plugins/ensure).
type PluginAddRequest struct {
	Name string `json:"name"`
	// Path is the plugin binary's absolute path.
	Path   string          `json:"path"`
	Config json.RawMessage `json:"config,omitempty"`
	// Timeout bounds each call to the plugin; 0 is the default (2s).
	Timeout Duration `json:"timeout,omitzero"`
	// Update (ensure only) replaces a registration that differs from this one.
	Update bool `json:"update,omitempty"`
}

// PluginRow is one line of `plugin list`.
type PluginRow struct {
	Name    string          `json:"name"`
	Kinds   []string        `json:"kinds"`
	Path    string          `json:"path"`
	SHA256  string          `json:"sha256"`
	Status  string          `json:"status"`
	Config  json.RawMessage `json:"config,omitempty"`
	Timeout Duration        `json:"timeout"`
	Starts  int             `json:"starts"`
}

// PluginEnsured answers an ecosystem file's plugin declaration.
type PluginEnsured struct {
	Plugin  PluginRow `json:"plugin"`
	Existed bool      `json:"existed"`
	Updated bool      `json:"updated"`
	// Differs: it exists with another binary or config and was kept (no --update).
	Differs bool `json:"differs"`
}

// PluginNameRequest names a plugin (POST /v1/plugins/remove).
type PluginNameRequest struct {
	Name string `json:"name"`
}

// PluginRemoved answers POST /v1/plugins/remove.
type PluginRemoved struct {
	Removed string `json:"removed"`
}

// Saved answers POST /v1/save: where the dump was written.
type Saved struct {
	Path string `json:"path"`
}

// Killed answers POST /v1/kill, sent before the daemon stops its apps and exits.
type Killed struct {
	OK bool `json:"ok"`
}

// Handover answers POST /v1/update: the daemon has written its state, every app process
// recorded with its pid, and exits without stopping any; the next daemon started for the home
// takes them back (same pids, ids and ports).
type Handover struct {
	Pid     int    `json:"pid"`
	Version string `json:"version"`
	// Instances is how many instances were running and are left running.
	Instances int `json:"instances"`
}

// ParsePluginTimeout reads a plugin call timeout given as text (a flag, an ecosystem file):
// "" is the default, anything else a positive Go duration.
func ParsePluginTimeout(s string) (Duration, error) {
	if s == "" {
		return 0, nil
	}
	t, err := time.ParseDuration(s)
	if err != nil || t <= 0 {
		return 0, fmt.Errorf("plugin timeout %q is not a positive duration such as 2s or 500ms", s)
	}
	return Duration(t), nil
}
