package export

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// Losses reports the keys of a that neither Nomad nor Kubernetes has a place for, with what
// to do instead; target ("Nomad", "Kubernetes") names the scheduler in the lines. The
// exporters report what is particular to their target themselves. Last, any key set in a that
// no exporter knows (one added to pmdaemon after the export) is reported as not carried over.
func Losses(a config.App, target string, r *Report) {
	app := AppLabel(a.Name)
	if len(a.Watch) > 0 {
		r.Drop("%s: watch (%s): %s restarts nothing when files change; ship a new version of the app instead (watching is for development)", app, strings.Join(a.Watch, ", "), target)
	}
	if a.CronRestart != "" {
		r.Drop("%s: cron_restart %q: %s has no scheduled restart of a running service; a periodic job that restarts it is the nearest thing", app, a.CronRestart, target)
	}
	if len(a.EnvFile) > 0 {
		r.Drop("%s: env_file (%s): read on this machine at each launch; its values are not copied into the export (they may be secrets): put them in the %s", app, strings.Join(a.EnvFile, ", "), secretHome(target))
	}
	if len(a.StopExitCodes) > 0 {
		r.Drop("%s: stop_exit_codes: %s restarts by its own policy whatever the exit code", app, target)
	}
	switch a.Socket {
	case config.SocketInstance, config.SocketShared:
		r.Drop("%s: socket %q: the daemon binds the port and hands the listening socket to the app as fd 3 (LISTEN_FDS); %s passes no socket, so the app must bind $PORT itself", app, a.Socket, target)
	}
	if a.Bind != "" {
		r.Drop("%s: bind %q: the address the daemon binds for socket apps; under %s the app binds its own address", app, a.Bind, target)
	}
	if a.Ready == config.ReadyNotify || a.Watchdog > 0 {
		r.Drop("%s: ready \"notify\" / watchdog: %s provides no NOTIFY_SOCKET (sd_notify); readiness and liveness come from the health check", app, target)
	}
	if a.OutFile != "" || a.ErrorFile != "" {
		r.Drop("%s: out_file / error_file: %s keeps the app's stdout and stderr itself (%s)", app, target, logsCommand(target))
	}
	if len(a.WatchOptions) > 0 || len(a.IgnoreWatch) > 0 || a.WatchDelay > 0 {
		if len(a.Watch) == 0 {
			r.Drop("%s: ignore_watch / watch_delay / watch_options: they only tune watch, which %s does not do", app, target)
		}
	}
	if a.Ready != "" && a.Ready != config.ReadyNotify {
		r.Drop("%s: ready %q: under %s readiness comes from the health check; without one an instance counts as ready once it runs", app, a.Ready, target)
	}
	if a.WaitTimeout > 0 {
		r.Drop("%s: wait_timeout %s: how long `start --wait-ready` waits here; a rollout has its own deadline (%s)", app, a.WaitTimeout, rolloutDeadline(target))
	}
	if logKeys := setKeys(a, "time", "log_date_format", "log_type", "log_file", "merge_logs"); len(logKeys) > 0 {
		r.Drop("%s: %s: how pmdaemon writes its log files; %s keeps the app's output as the app writes it (%s)", app, strings.Join(logKeys, " / "), target, logsCommand(target))
	}
	if a.Namespace != "" && a.Namespace != config.DefaultNamespace {
		r.Drop("%s: namespace %q: pmdaemon's group of apps for commands; the export names no namespace (%s)", app, a.Namespace, namespaceHint(target, a.Namespace))
	}
	if a.ShutdownWithMessage {
		r.Drop("%s: shutdown_with_message: %s stops the app with a signal (SIGTERM, then SIGKILL after the kill timeout), not a message on an IPC channel: the app must stop on SIGTERM", app, target)
	}
	if a.PidFile != "" {
		r.Drop("%s: pid_file %s: %s tracks the process itself and writes no pid file", app, a.PidFile, target)
	}
	unknownKeys(a, config.AppFields, handledKeys, target, r)
}

// handledKeys are the app keys the exporters carry over or report when they cannot (Losses'
// lines and the exporters' own notes). A key of config.AppFields missing here is reported by
// unknownKeys whenever an app sets it, so a key added to pmdaemon is never dropped silently;
// the tests hold every key, set, to change the export or be named in its report.
var handledKeys = map[string]bool{
	"name": true, "script": true, "args": true, "cwd": true, "env": true, "instances": true, "port": true,
	"autorestart": true, "max_restarts": true, "min_uptime": true, "restart_delay": true,
	"exp_backoff_restart_delay": true, "kill_timeout": true, "max_memory_restart": true,
	"out_file": true, "error_file": true, "health_check": true, "wait_ready": true, "wait_timeout": true,
	"log_max_size": true, "log_keep": true, "time": true, "log_date_format": true, "log_type": true,
	"log_file": true, "merge_logs": true, "env_file": true, "cron_restart": true, "stop_exit_codes": true,
	"watch": true, "ignore_watch": true, "watch_delay": true, "watch_options": true, "namespace": true,
	"pid_file": true, "socket": true, "bind": true, "ready": true, "watchdog": true,
	"shutdown_with_message": true, "depends_on": true, // depends_on: PlanDepends
}

// unknownKeys reports each key of fields that a sets (to other than a new app's value) and
// that handled does not name.
func unknownKeys(a config.App, fields []config.Field[config.App], handled map[string]bool, target string, r *Report) {
	def := config.NewApp()
	for i := range fields {
		f := &fields[i]
		if handled[f.Key] || isDefault(f.Get(&a), f.Get(&def)) {
			continue
		}
		r.Drop("%s: %s %v: this version of the export does not know the key, and %s gets nothing of it", AppLabel(a.Name), f.Key, f.Get(&a), target)
	}
}

// setKeys returns those of keys that a sets.
func setKeys(a config.App, keys ...string) []string {
	def := config.NewApp()
	var set []string
	for _, k := range keys {
		if f := config.AppField(k); !isDefault(f.Get(&a), f.Get(&def)) {
			set = append(set, k)
		}
	}
	return set
}

// isDefault reports whether v is def, an empty list or map being the same as none.
func isDefault(v, def any) bool {
	if reflect.DeepEqual(v, def) {
		return true
	}
	rv, rd := reflect.ValueOf(v), reflect.ValueOf(def)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map:
		return rv.Len() == 0 && rd.Len() == 0
	}
	return false
}

func secretHome(target string) string {
	if target == "Kubernetes" {
		return "Deployment's env or a Secret"
	}
	return "job's env block or a template block reading Nomad Variables"
}

func logsCommand(target string) string {
	if target == "Kubernetes" {
		return "kubectl logs"
	}
	return "nomad alloc logs"
}

func rolloutDeadline(target string) string {
	if target == "Kubernetes" {
		return "a Deployment's progressDeadlineSeconds"
	}
	return "the update block's healthy_deadline"
}

func namespaceHint(target, ns string) string {
	if target == "Kubernetes" {
		return "kubectl apply -n " + ns + " puts the objects in a namespace of that name"
	}
	return "nomad job run -namespace " + ns + " runs the job in a namespace of that name"
}

// AppLabel is how reports name an app, as the rest of pmdaemon does: app "NAME".
func AppLabel(name string) string { return fmt.Sprintf("app %q", name) }
