package api

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// AppConfig is an app's saved configuration as the API shows it (info). It is its own type,
// not config.App, because config.App is also the state file's schema: that file keeps
// durations as nanoseconds and may change with the daemon's needs, while the wire keeps one
// duration format (Duration) and changes only with the API.
type AppConfig struct {
	Name                   string            `json:"name"`
	Script                 string            `json:"script"`
	Args                   []string          `json:"args,omitempty"`
	Cwd                    string            `json:"cwd,omitempty"`
	Env                    map[string]string `json:"env,omitempty"`
	Instances              int               `json:"instances"`
	Port                   string            `json:"port,omitempty"`
	Autorestart            bool              `json:"autorestart"`
	MaxRestarts            int               `json:"max_restarts"`
	MinUptime              Duration          `json:"min_uptime"`
	RestartDelay           Duration          `json:"restart_delay"`
	ExpBackoffRestartDelay Duration          `json:"exp_backoff_restart_delay"`
	KillTimeout            Duration          `json:"kill_timeout"`
	MaxMemoryRestart       int64             `json:"max_memory_restart,omitempty"`
	OutFile                string            `json:"out_file,omitempty"`
	ErrorFile              string            `json:"error_file,omitempty"`
	HealthCheck            *HealthCheck      `json:"health_check,omitempty"`
	WaitReady              bool              `json:"wait_ready,omitempty"`
	WaitTimeout            Duration          `json:"wait_timeout,omitzero"`
	LogMaxSize             int64             `json:"log_max_size,omitempty"`
	LogKeep                int               `json:"log_keep,omitempty"`
	Socket                 config.SocketMode `json:"socket,omitempty"` // "instance" or "shared"; true and false are read too
	Bind                   string            `json:"bind,omitempty"`
	Ready                  string            `json:"ready,omitempty"`
	Watchdog               Duration          `json:"watchdog,omitzero"`
	EnvFile                []string          `json:"env_file,omitempty"`
	CronRestart            string            `json:"cron_restart,omitempty"`
	StopExitCodes          []int             `json:"stop_exit_codes,omitempty"`
	Watch                  []string          `json:"watch,omitempty"`
	IgnoreWatch            []string          `json:"ignore_watch,omitempty"`
	WatchDelay             Duration          `json:"watch_delay,omitzero"`
	WatchOptions           map[string]any    `json:"watch_options,omitempty"`
	Time                   bool              `json:"time,omitempty"`
	LogDateFormat          string            `json:"log_date_format,omitempty"`
	LogType                string            `json:"log_type,omitempty"`
	LogFile                string            `json:"log_file,omitempty"`
	MergeLogs              bool              `json:"merge_logs,omitempty"`
	Namespace              string            `json:"namespace,omitempty"`
	PidFile                string            `json:"pid_file,omitempty"`

	// How the app is told to stop, and the apps it starts after.
	ShutdownWithMessage bool                `json:"shutdown_with_message,omitempty"`
	DependsOn           []config.Dependency `json:"depends_on,omitempty"`
}

// HealthCheck is an app's health check as the API shows it.
type HealthCheck struct {
	URL      string   `json:"url,omitempty"`
	Script   string   `json:"script,omitempty"`
	Interval Duration `json:"interval"`
	Timeout  Duration `json:"timeout"`
	Retries  int      `json:"retries"`
	Restart  bool     `json:"restart"`
}

// NewAppConfig is c as the API shows it; the one place the two schemas meet.
func NewAppConfig(c config.App) AppConfig {
	out := AppConfig{
		Name: c.Name, Script: c.Script, Args: c.Args, Cwd: c.Cwd, Env: c.Env, Instances: c.Instances,
		Port: c.Port, Autorestart: c.Autorestart, MaxRestarts: c.MaxRestarts,
		MinUptime: Duration(c.MinUptime), RestartDelay: Duration(c.RestartDelay),
		ExpBackoffRestartDelay: Duration(c.ExpBackoffRestartDelay), KillTimeout: Duration(c.KillTimeout),
		MaxMemoryRestart: c.MaxMemoryRestart, OutFile: c.OutFile, ErrorFile: c.ErrorFile,
		WaitReady: c.WaitReady, WaitTimeout: Duration(c.WaitTimeout), LogMaxSize: c.LogMaxSize, LogKeep: c.LogKeep,
		Socket: c.Socket, Bind: c.Bind, Ready: c.Ready, Watchdog: Duration(c.Watchdog),
		EnvFile: c.EnvFile, CronRestart: c.CronRestart, StopExitCodes: c.StopExitCodes, Watch: c.Watch,
		IgnoreWatch: c.IgnoreWatch, WatchDelay: Duration(c.WatchDelay), WatchOptions: c.WatchOptions,
		Time: c.Time, LogDateFormat: c.LogDateFormat, LogType: c.LogType, LogFile: c.LogFile, MergeLogs: c.MergeLogs,
		Namespace: c.Namespace, PidFile: c.PidFile,
		ShutdownWithMessage: c.ShutdownWithMessage, DependsOn: c.DependsOn,
	}
	if h := c.HealthCheck; h != nil {
		out.HealthCheck = &HealthCheck{URL: h.URL, Script: h.Script, Interval: Duration(h.Interval),
			Timeout: Duration(h.Timeout), Retries: h.Retries, Restart: h.Restart}
	}
	return out
}

// Waiting is the wait_timeout in force (config.App's rule: the default when unset).
func (c AppConfig) Waiting() time.Duration {
	a := config.App{WaitTimeout: c.WaitTimeout.Std()}
	return a.Waiting()
}

// LogLimits are the rotation size and count in force (config.App's rule).
func (c AppConfig) LogLimits() (int64, int) {
	a := config.App{LogMaxSize: c.LogMaxSize, LogKeep: c.LogKeep}
	return a.LogLimits()
}

// Config is c in the daemon's schema; NewAppConfig's inverse.
func (c AppConfig) Config() config.App {
	out := config.App{
		Name: c.Name, Script: c.Script, Args: c.Args, Cwd: c.Cwd, Env: c.Env, Instances: c.Instances,
		Port: c.Port, Autorestart: c.Autorestart, MaxRestarts: c.MaxRestarts,
		MinUptime: c.MinUptime.Std(), RestartDelay: c.RestartDelay.Std(),
		ExpBackoffRestartDelay: c.ExpBackoffRestartDelay.Std(), KillTimeout: c.KillTimeout.Std(),
		MaxMemoryRestart: c.MaxMemoryRestart, OutFile: c.OutFile, ErrorFile: c.ErrorFile,
		WaitReady: c.WaitReady, WaitTimeout: c.WaitTimeout.Std(), LogMaxSize: c.LogMaxSize, LogKeep: c.LogKeep,
		Socket: c.Socket, Bind: c.Bind, Ready: c.Ready, Watchdog: c.Watchdog.Std(),
		EnvFile: c.EnvFile, CronRestart: c.CronRestart, StopExitCodes: c.StopExitCodes, Watch: c.Watch,
		IgnoreWatch: c.IgnoreWatch, WatchDelay: c.WatchDelay.Std(), WatchOptions: c.WatchOptions,
		Time: c.Time, LogDateFormat: c.LogDateFormat, LogType: c.LogType, LogFile: c.LogFile, MergeLogs: c.MergeLogs,
		Namespace: c.Namespace, PidFile: c.PidFile,
		ShutdownWithMessage: c.ShutdownWithMessage, DependsOn: c.DependsOn,
	}
	if h := c.HealthCheck; h != nil {
		out.HealthCheck = &config.HealthCheck{URL: h.URL, Script: h.Script, Interval: h.Interval.Std(),
			Timeout: h.Timeout.Std(), Retries: h.Retries, Restart: h.Restart}
	}
	return out
}

// startRequestWire is StartRequest as it travels: the app in the API's schema, not the state
// file's, so that its durations are Durations like every other.
type startRequestWire struct {
	App         AppConfig `json:"app"`
	IfExists    string    `json:"if_exists,omitempty"`
	WaitTimeout Duration  `json:"wait_timeout,omitzero"`
}

// MarshalJSON writes the request with its app as an AppConfig.
func (r StartRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(startRequestWire{App: NewAppConfig(r.App), IfExists: r.IfExists, WaitTimeout: r.WaitTimeout})
}

// UnmarshalJSON reads the request with its app as an AppConfig. It refuses unknown fields
// whatever decoder it is called from: a field the daemon does not know is a client's mistake
// (or a newer client's setting) that must not be dropped unseen.
func (r *StartRequest) UnmarshalJSON(b []byte) error {
	var w startRequestWire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	*r = StartRequest{App: w.App.Config(), IfExists: w.IfExists, WaitTimeout: w.WaitTimeout}
	return nil
}
