package config

import (
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/pmdaemon/pmdaemon/host/ports"
)

// SocketMode is whether the daemon holds an app's listening sockets (DESIGN §10): not at all,
// one per instance on each assigned port, or one port shared by every instance.
type SocketMode string

const (
	SocketNone     SocketMode = ""
	SocketInstance SocketMode = "instance" // "socket": true
	SocketShared   SocketMode = "shared"   // "socket": "shared"
)

// ParseSocketMode reads the text of --socket or of a "socket" string value.
func ParseSocketMode(s string) (SocketMode, error) {
	switch s {
	case "", "false", "none":
		return SocketNone, nil
	case "true", "instance":
		return SocketInstance, nil
	case "shared":
		return SocketShared, nil
	}
	return "", fmt.Errorf("must be true, false or \"shared\", got %q", s)
}

// socketValue reads a decoded JSON or Lua value as a SocketMode.
func socketValue(v any) (SocketMode, error) {
	switch x := v.(type) {
	case bool:
		if x {
			return SocketInstance, nil
		}
		return SocketNone, nil
	case string:
		return ParseSocketMode(x)
	}
	return "", fmt.Errorf("must be true, false or \"shared\", got %s", typeName(v))
}

// UnmarshalJSON takes true and false as well as the mode's name, so that API clients may send
// what ecosystem files say.
func (m *SocketMode) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	got, err := socketValue(v)
	if err != nil {
		return fmt.Errorf("socket %w", err)
	}
	*m = got
	return nil
}

// Readiness rules an app may name with "ready"; "" is the default (Ready, below).
const (
	ReadyPort   = "port"   // the port accepts a connection (for socket apps: the app accepted one)
	ReadyNotify = "notify" // the instance sent READY=1 to NOTIFY_SOCKET, or 'ready' over PM2's IPC
	ReadyUptime = "uptime" // the instance stayed up for min_uptime
)

// MinWatchdog bounds "watchdog" from below: a shorter deadline is a restart loop by mistake.
const MinWatchdog = 100 * time.Millisecond

// ReadyRule is the readiness rule in force for an app without a health check (a health check
// always decides): the one it names; else, for a node app with wait_ready, its message (PM2's
// wait_ready: process.send('ready')); else the port's answer when it has a port, else uptime.
func (a *App) ReadyRule() string {
	switch {
	case a.Ready != "":
		return a.Ready
	case a.WaitReady && a.HealthCheck == nil && a.RunsNode():
		return ReadyNotify
	case a.Port != "":
		return ReadyPort
	}
	return ReadyUptime
}

// checkSockets validates socket, bind, ready and watchdog against each other and the port.
func (a *App) checkSockets(bad func(key, format string, x ...any) error) error {
	switch a.Socket {
	case SocketNone, SocketInstance, SocketShared:
	default:
		return bad("socket", "socket must be true, false or \"shared\", got %q", string(a.Socket))
	}
	if a.Socket != SocketNone && a.Port == "" {
		return bad("socket", "socket needs a port: give port 3000-3003 (socket: true, one per instance) or 3000 (socket: \"shared\")")
	}
	if a.Socket == SocketShared && a.Port != "" {
		spec, err := ports.ParseSpec(a.Port)
		if err == nil && spec.Kind == ports.Range && spec.Size() > 1 {
			return bad("socket", "socket \"shared\" gives every instance one port, not the range %s: give one port (%d) or auto:%s to pick it from",
				spec, spec.Start, spec)
		}
	}
	if a.Bind != "" {
		if a.Socket == SocketNone {
			return bad("bind", "bind %q applies to the sockets the daemon holds: add socket: true (or \"shared\"), or leave bind out", a.Bind)
		}
		if net.ParseIP(a.Bind) == nil {
			return bad("bind", "bind must be an IP address such as 127.0.0.1 or ::1, got %q", a.Bind)
		}
	}
	switch a.Ready {
	case "", ReadyNotify, ReadyUptime:
	case ReadyPort:
		if a.Port == "" {
			return bad("ready", "ready \"port\" needs a port; without one use \"notify\" or \"uptime\"")
		}
	default:
		return bad("ready", "ready must be \"port\", \"notify\" or \"uptime\", got %q", a.Ready)
	}
	if a.Watchdog < 0 || a.Watchdog > 0 && a.Watchdog < MinWatchdog {
		return bad("watchdog", "watchdog must be at least %s (or 0 for none), got %s", MinWatchdog, a.Watchdog)
	}
	return nil
}

// SharedPorts is how many ports an app's instances take: one for a shared socket, else one
// each.
func (a *App) SharedPorts(instances int) int {
	if a.Socket == SocketShared {
		return 1
	}
	return instances
}
