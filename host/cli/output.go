package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
)

// ListHeader is the column order of `list`, as in the port-management spec.
var ListHeader = []string{"ID", "Name", "Status", "PID", "Port", "CPU (%)", "Memory", "Uptime", "Restarts"}

// RenderList prints the instance table; fancy shows statuses with their colour dot and a
// capital ("🟢 Online"), plain as the daemon names them ("online").
func RenderList(w io.Writer, rows []api.Instance, fancy bool) error {
	t := newTable(w)
	t.Header(ListHeader...)
	for _, r := range rows {
		pid, port := "-", "-"
		if r.Pid > 0 {
			pid = strconv.Itoa(r.Pid)
		}
		if r.Port != nil {
			port = strconv.Itoa(*r.Port)
		}
		uptime := "-"
		if r.Pid > 0 {
			uptime = FormatUptime(time.Duration(r.UptimeMS) * time.Millisecond)
		}
		if err := t.Append([]string{
			strconv.Itoa(r.ID), r.Name, statusText(r.Status, fancy) + healthNote(r.Health), pid, port,
			strconv.FormatFloat(r.CPU, 'f', 1, 64), FormatBytes(r.Memory), uptime, strconv.Itoa(r.Restarts),
		}); err != nil {
			return err
		}
	}
	return t.Render()
}

// StatusLabel adds the seed's colour dot to a status.
func StatusLabel(s string) string {
	switch s {
	case "online":
		return "🟢 Online"
	case "stopped":
		return "⚪ Stopped"
	case "errored":
		return "🔴 Errored"
	case "waiting-restart":
		return "🟡 Waiting restart"
	case "starting":
		return "🟡 Starting"
	case "stopping":
		return "🟡 Stopping"
	}
	return s
}

func statusText(s string, fancy bool) string {
	if fancy {
		return StatusLabel(s)
	}
	return s
}

// fancyOutput reports whether out is a terminal that wants colour: a TTY, with NO_COLOR unset
// (set to anything, even empty, it asks for none) and TERM not "dumb". A pipe, a file or a
// buffer gets plain text, which scripts and logs can read.
func fancyOutput(out io.Writer, lookup func(string) (string, bool)) bool {
	if _, set := lookup("NO_COLOR"); set {
		return false
	}
	if term, _ := lookup("TERM"); term == "dumb" {
		return false
	}
	return isTerminal(out)
}

// healthNote follows the status of an instance with a health check.
func healthNote(h string) string {
	if h == "" {
		return ""
	}
	return " (" + h + ")"
}

// FormatBytes prints memory like the seed: "45.2 MB".
func FormatBytes(b uint64) string {
	switch {
	case b == 0:
		return "0 B"
	case b < 1<<10:
		return fmt.Sprintf("%d B", b)
	case b < 1<<20-1<<10/20: // what would round to 1024.0 KB is shown as 1.0 MB
		return fmt.Sprintf("%.1f KB", float64(b)/(1<<10))
	case b < 1<<30-1<<20/20:
		return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.2f GB", float64(b)/(1<<30))
}

// FormatUptime prints "2h 15m", "3m 4s", "12s", "2d 3h".
func FormatUptime(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %dm", s/3600, (s%3600)/60)
	}
	return fmt.Sprintf("%dd %dh", s/86400, (s%86400)/3600)
}

// RenderInfo prints everything known about an app.
func RenderInfo(w io.Writer, a *api.App) error {
	c := a.Config
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%-22s %s\n", k+":", v) }
	line("name", a.Name)
	line("command", strings.Join(a.Command, " "))
	line("script", c.Script)
	if len(c.Args) > 0 {
		line("args", strings.Join(c.Args, " "))
	}
	line("cwd", c.Cwd)
	line("namespace", c.Config().NamespaceOf())
	if c.PidFile != "" {
		line("pid file", c.PidFile+" (written while an instance runs; NAME.pid is NAME-INDEX.pid)")
	}
	line("instances", fmt.Sprintf("%d running slots (configured %d)", a.InstancesCount, c.Instances))
	ports := a.PortSpec
	if ports == "" {
		ports = "(none)"
	}
	line("port spec (configured)", ports)
	if a.PortOverride {
		line("port spec (live)", a.LivePortSpec+"  [runtime override active; saved config unchanged]")
	} else {
		line("port spec (live)", orNone(a.LivePortSpec))
	}
	line("ports (live)", orNone(joinInts(a.Ports)))
	line("autorestart", strconv.FormatBool(c.Autorestart))
	line("max restarts", strconv.Itoa(c.MaxRestarts))
	line("min uptime", c.MinUptime.String())
	line("restart delay", c.RestartDelay.String())
	line("exp backoff delay", c.ExpBackoffRestartDelay.String())
	line("kill timeout", c.KillTimeout.String())
	if c.MaxMemoryRestart > 0 {
		line("max memory", FormatBytes(uint64(c.MaxMemoryRestart)))
	}
	if h := c.HealthCheck; h != nil {
		what := "GET " + h.URL
		if h.Script != "" {
			what = "run " + h.Script
		}
		onFail := "restart"
		if !h.Restart {
			onFail = "report only"
		}
		line("health check", fmt.Sprintf("%s every %s, timeout %s, unhealthy after %d failures (%s)",
			what, h.Interval, h.Timeout, h.Retries, onFail))
	}
	if c.WaitReady {
		line("wait ready", "yes, up to "+c.Waiting().String())
	}
	switch c.Socket {
	case config.SocketInstance:
		line("socket", "held by pmdaemon, one per instance, passed as fd 3 (LISTEN_FDS)"+bindNote(c.Bind))
	case config.SocketShared:
		line("socket", "held by pmdaemon, one port shared by every instance, passed as fd 3 (LISTEN_FDS)"+bindNote(c.Bind))
	}
	line("ready when", readyText(c))
	if c.Watchdog > 0 {
		line("watchdog", "restart when no WATCHDOG=1 within "+c.Watchdog.String())
	}
	runKeyLines(c, line)
	size, keep := c.LogLimits()
	line("log rotation", fmt.Sprintf("at %s, keeping %d", FormatBytes(uint64(size)), keep))
	line("created", a.CreatedAt.Format(time.RFC3339))
	if len(c.Env) > 0 {
		b.WriteString("env:\n")
		for _, k := range sortedKeys(c.Env) {
			fmt.Fprintf(&b, "  %s=%s\n", k, c.Env[k])
		}
	}
	b.WriteString("instances:\n")
	for _, in := range a.Instances {
		port := "-"
		if in.Port != nil {
			port = strconv.Itoa(*in.Port)
		}
		started := "-"
		if !in.StartedAt.IsZero() && in.Pid > 0 {
			started = in.StartedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "  [%d] id %d  status %s  pid %d  port %s  restarts %d  started %s\n",
			in.Index, in.ID, in.Status, in.Pid, port, in.Restarts, started)
		if in.Health != "" {
			fmt.Fprintf(&b, "      health: %s\n", in.Health)
			if in.HealthError != "" {
				fmt.Fprintf(&b, "      last failed check: %s\n", in.HealthError)
			}
		}
		if in.Reason != "" {
			fmt.Fprintf(&b, "      reason: %s\n", in.Reason)
		}
		if in.AppStopping {
			fmt.Fprintf(&b, "      the app said STOPPING=1: it is shutting down\n")
		}
		if in.StatusText != "" {
			fmt.Fprintf(&b, "      status text: %s\n", in.StatusText)
		}
		if in.Notice != "" {
			fmt.Fprintf(&b, "      notice: %s\n", in.Notice)
		}
		fmt.Fprintf(&b, "      out log: %s\n      err log: %s\n", in.OutLog, in.ErrLog)
		if in.Cgroup != "" {
			fmt.Fprintf(&b, "      cgroup: %s\n", in.Cgroup)
		} else {
			fmt.Fprintf(&b, "      cgroup: none (process-group mode: see pmdaemon ping)\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func bindNote(bind string) string {
	if bind == "" {
		return ", on every address"
	}
	return ", on " + bind
}

// readyText says what makes a new instance ready (docs/sockets.md#readiness).
func readyText(c api.AppConfig) string {
	if c.HealthCheck != nil {
		return "its health check passes"
	}
	app := config.App{Ready: c.Ready, Port: c.Port}
	switch app.ReadyRule() {
	case config.ReadyNotify:
		return "it sends READY=1 to NOTIFY_SOCKET"
	case config.ReadyPort:
		if c.Socket != config.SocketNone {
			return "it accepts a connection on its socket (or sends READY=1)"
		}
		return "its port accepts a connection (or it sends READY=1)"
	}
	return "it has been up for min uptime " + c.MinUptime.String() + " (or sends READY=1)"
}
