package export

import (
	"fmt"
	"strings"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// Losses reports the keys of a that neither Nomad nor Kubernetes has a place for, with what
// to do instead; target ("Nomad", "Kubernetes") names the scheduler in the lines. The
// exporters report what is particular to their target themselves.
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

// AppLabel is how reports name an app, as the rest of pmdaemon does: app "NAME".
func AppLabel(name string) string { return fmt.Sprintf("app %q", name) }
