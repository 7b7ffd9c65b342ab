package config

// PM2Key is one app key of PM2's ecosystem files (PM2's lib/API/schema.json) that is not a
// pmdaemon key of the same name and meaning. A PM2 file loads as written: every such key is
// either honoured (translated into pmdaemon's own keys by pm2App) or accepted, with Note saying
// in one line what pmdaemon does instead. Note is printed once per key per file, by `run` and
// `run --dry-run`.
//
// This is the one table of PM2 keys: a helper that implements a key flips its entry (Honoured:
// true, Note: "" or a shorter note) and handles the key in pm2App.
type PM2Key struct {
	Key string
	// AliasOf is the canonical PM2 key this one is another name for ("" for a canonical key).
	AliasOf string
	// Honoured keys do what PM2 does; they print no note unless their value asks for something
	// pmdaemon does differently (pm2App adds that note itself).
	Honoured bool
	// Note is what pmdaemon does instead of what PM2 does with the key.
	Note string
}

// Notes shared by the keys another part of issue 14 implements: the file loads, the key does
// nothing yet.
const (
	notYet = "accepted; pmdaemon does not act on it yet"
)

// PM2Keys are the PM2 app keys pmdaemon reads beside its own (AppFields). Keys PM2 and
// pmdaemon share with one meaning (name, args, cwd, env, port, autorestart, max_restarts,
// min_uptime, restart_delay, exp_backoff_restart_delay, kill_timeout, max_memory_restart,
// out_file, error_file, wait_ready) are AppFields and not repeated here.
var PM2Keys = []PM2Key{
	// Honoured: translated into pmdaemon keys.
	{Key: "exec", AliasOf: "script", Honoured: true},
	{Key: "out", AliasOf: "out_file", Honoured: true},
	{Key: "output", AliasOf: "out_file", Honoured: true},
	{Key: "out_log", AliasOf: "out_file", Honoured: true},
	{Key: "error", AliasOf: "error_file", Honoured: true},
	{Key: "err", AliasOf: "error_file", Honoured: true},
	{Key: "err_file", AliasOf: "error_file", Honoured: true},
	{Key: "err_log", AliasOf: "error_file", Honoured: true},
	{Key: "exec_mode", Honoured: true},
	{Key: "interpreter", Honoured: true},
	{Key: "exec_interpreter", AliasOf: "interpreter", Honoured: true},
	{Key: "node_args", Honoured: true},
	{Key: "interpreter_args", AliasOf: "node_args", Honoured: true},
	{Key: "interpreterArgs", AliasOf: "node_args", Honoured: true},
	{Key: "increment_var", Honoured: true},
	{Key: "watch", Honoured: true}, // an AppField: read as pmdaemon reads it
	{Key: "vizion", Honoured: true, Note: "ignored: pmdaemon keeps no version-control metadata"},
	{Key: "treekill", Honoured: true, Note: "pmdaemon always stops the whole process tree (its cgroup)"},
	// PM2's bound on wait_ready's wait is pmdaemon's wait_timeout (whose default is 30s, not 3s).
	{Key: "listen_timeout", AliasOf: "wait_timeout", Honoured: true},
	{Key: "shutdown_with_message", Honoured: true}, // an AppField: read as pmdaemon reads it

	// Honoured by pmdaemon's own keys of the same name (AppFields), and, below them, accepted
	// keys of issue 14 not implemented yet.
	{Key: "env_file", Honoured: true},     // an AppField: read as pmdaemon reads it
	{Key: "cron_restart", Honoured: true}, // an AppField: read as pmdaemon reads it
	{Key: "cron", AliasOf: "cron_restart", Honoured: true},
	{Key: "stop_exit_codes", Honoured: true}, // an AppField: read as pmdaemon reads it
	{Key: "ignore_watch", Honoured: true},    // an AppField: read as pmdaemon reads it
	{Key: "watch_delay", Honoured: true},     // an AppField: read as pmdaemon reads it
	{Key: "watch_options", Honoured: true},   // an AppField: read as pmdaemon reads it
	{Key: "time", Honoured: true},            // an AppField
	{Key: "log_date_format", Honoured: true}, // an AppField
	{Key: "log_type", Honoured: true},        // an AppField
	{Key: "log_file", Honoured: true},        // an AppField
	{Key: "log", AliasOf: "log_file", Honoured: true},
	{Key: "merge_logs", Honoured: true}, // an AppField
	{Key: "combine_logs", AliasOf: "merge_logs", Honoured: true},
	{Key: "namespace", Honoured: true}, // an AppField
	{Key: "pid_file", Honoured: true},  // an AppField
	{Key: "pid", AliasOf: "pid_file", Honoured: true},

	// Accepted: PM2 features pmdaemon does differently or not at all.
	{Key: "name_prefix", Note: "ignored: the app's name is its \"name\""},
	{Key: "filter_env", Note: "ignored: apps get the daemon's environment plus \"env\""},
	{Key: "install_url", Note: "ignored: pmdaemon installs nothing"},
	{Key: "disable_logs", Note: "ignored: pmdaemon always logs; set out_file and error_file to /dev/null to drop output"},
	{Key: "source_map_support", Note: "ignored: pmdaemon does not wrap Node apps (pass --enable-source-maps in node_args)"},
	{Key: "disable_source_map_support", Note: "ignored: pmdaemon does not wrap Node apps"},
	{Key: "kill_retry_time", Note: "ignored: pmdaemon sends SIGKILL once, after kill_timeout"},
	{Key: "execute_command", Note: "ignored: \"script\" is always run as a command"},
	{Key: "force", Note: "ignored: an app already running is left alone (run --update replaces it)"},
	{Key: "append_env_to_name", Note: "ignored: the app keeps its \"name\" whatever --env says"},
	{Key: "post_update", Note: "ignored: pmdaemon has no remote update hooks"},
	{Key: "instance_var", Note: "pmdaemon sets NODE_APP_INSTANCE and PM2_INSTANCE_ID, not a variable of another name"},
	{Key: "trace", Note: "ignored: no PM2 Plus (Keymetrics) tracing"},
	{Key: "disable_trace", Note: "ignored: no PM2 Plus (Keymetrics) tracing"},
	{Key: "v8", Note: "ignored: no PM2 Plus (Keymetrics) metrics"},
	{Key: "event_loop_inspector", Note: "ignored: no PM2 Plus (Keymetrics) metrics"},
	{Key: "deep_monitoring", Note: "ignored: no PM2 Plus (Keymetrics) metrics"},
	{Key: "pmx", Note: "ignored: pmdaemon injects no pmx module"},
	{Key: "automation", Note: "ignored: pmdaemon injects no pmx module"},
	{Key: "io", Note: "ignored: no PM2 Plus (Keymetrics) agent"},
	{Key: "username", Note: "ignored: apps run as the daemon's user"},
	{Key: "uid", Note: "ignored: apps run as the daemon's user (run a daemon as that user)"},
	{Key: "user", AliasOf: "uid", Note: "ignored: apps run as the daemon's user (run a daemon as that user)"},
	{Key: "gid", Note: "ignored: apps run as the daemon's group"},
	{Key: "windowsHide", Note: "ignored: Windows only"},
	{Key: "write", Note: "ignored"},
}

// PM2Sections are PM2's top-level keys beside "apps"; a file's other top-level keys are
// ignored with a note too, unless they look like a typo of "apps" or "plugins".
var PM2Sections = map[string]string{
	"deploy": "ignored: pmdaemon does not deploy; run your deploy tool, then `pmdaemon run --update FILE`",
}

// pm2Key finds the entry of a PM2 key.
func pm2Key(k string) *PM2Key {
	for i := range PM2Keys {
		if PM2Keys[i].Key == k {
			return &PM2Keys[i]
		}
	}
	return nil
}

// canonical is the key a PM2 key stands for.
func (k *PM2Key) canonical() string {
	if k.AliasOf != "" {
		return k.AliasOf
	}
	return k.Key
}

// pm2KeyNames are PM2's keys: with appKeys, the "did you mean" list of a PM2 file.
func pm2KeyNames() []string {
	out := make([]string, 0, len(PM2Keys))
	for _, k := range PM2Keys {
		out = append(out, k.Key)
	}
	return out
}
