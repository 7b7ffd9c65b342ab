package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/logs"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// launch starts supervising slot s of a; d.mu must be held.
func (d *Daemon) launch(a *app, s *slot, adopt *supervisor.Adopt) {
	s.restarting = false
	if a.argvErr != nil {
		s.loop = nil
		s.last = supervisor.State{Status: supervisor.Errored, Restarts: s.last.Restarts, Reason: a.argvErr.Error()}
		return
	}
	if _, err := a.cfg.FileEnv(); err != nil && adopt == nil {
		s.loop = nil
		s.last = supervisor.State{Status: supervisor.Errored, Restarts: s.last.Restarts, Reason: err.Error()}
		return
	}
	if adopt != nil {
		d.recoverListener(a, s)
	} else if _, err := d.listenerFile(a, s); err != nil {
		s.loop = nil
		s.last = supervisor.State{Status: supervisor.Errored, Restarts: s.last.Restarts, Reason: err.Error()}
		return
	}
	spec := d.specFor(a, s)
	s.carry = 0
	s.loop = supervisor.Start(spec, s.last.Restarts, adopt, d.pidFileNotify(a, d.instanceChanged))
}

// startSlot launches slot s of a once its port is ready (portReady: free, or an auto: instance
// moved); when it is not, s is left errored and the reason returned. It reports whether a loop
// runs (not when a's command cannot run: s is errored with the reason). opMu must be held;
// d.mu must not be.
func (d *Daemon) startSlot(a *app, s *slot) (bool, error) {
	if err := d.portReady(a, s); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.launch(a, s, nil)
	return s.loop != nil, nil
}

// specFor is what slot s of a runs as now; d.mu must be held.
func (d *Daemon) specFor(a *app, s *slot) supervisor.Spec {
	return supervisor.Spec{
		ID: s.id, App: a.cfg.Name, Index: s.index, Argv: a.argv, Dir: a.cfg.Cwd,
		Env:    d.env(a, s),
		OutLog: d.outLog(a, s), ErrLog: d.errLog(a, s),
		Policy: supervisor.RestartPolicy{
			Autorestart: a.cfg.Autorestart, MaxRestarts: a.cfg.MaxRestarts, MinUptime: a.cfg.MinUptime,
			RestartDelay: a.cfg.RestartDelay, ExpBackoff: a.cfg.ExpBackoffRestartDelay,
			StopExitCodes: a.cfg.StopExitCodes,
		},
		KillTimeout: a.cfg.KillTimeout,
		Port:        s.port,
		Health:      healthSpec(*a.cfg, s.port),
		Unstable:    s.carry,
		Cgroup:      d.cgroupOf(s),
		BeforeSpawn: d.respawnCheck(a, s),
		Warn:        func(msg string) { d.logger.Print(msg) },
		Listener:    d.heldFile(a, s),
		Watchdog:    a.cfg.Watchdog,
		LogWriter:   d.logWriter(a, s),
		IPC:         hasIPC(*a.cfg),
		// Without a channel there is no one to tell: the signal it is then.
		ShutdownMessage: a.cfg.ShutdownWithMessage,
		OnHealth:        d.onHealth(a.cfg.Name, s.index, s.port),
	}
}

// logWriter is how s's output goes through the log writer, nil when a's logs need none.
func (d *Daemon) logWriter(a *app, s *slot) *supervisor.LogWriterSpec {
	if !a.cfg.StampsLogs() {
		return nil
	}
	layout := a.cfg.LogTimeLayout()
	cfg := logs.WriterConfig{
		Layout: layout, UTC: layout == config.ISOLayout, JSON: a.cfg.LogType == config.LogTypeJSON,
		ID: s.id, App: a.cfg.Name, Combined: a.cfg.LogFile != "",
	}
	arg, _ := json.Marshal(cfg)
	return &supervisor.LogWriterSpec{
		Argv: []string{writerExe(), logs.WriterArg, string(arg)}, Combined: d.combinedLog(a),
		// PMDAEMON_HOME marks it as this home's, as the apps are (ps, leftover checks).
		Env: []string{"GOMAXPROCS=1", "PMDAEMON_HOME=" + d.paths.Home},
	}
}

// writerExe is the binary the log writer runs: this one.
var writerExe = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return "/proc/self/exe"
	}
	return exe
})

// combinedLog is a's log_file, made absolute against its cwd; "" for none.
func (d *Daemon) combinedLog(a *app) string {
	p := a.cfg.LogFile
	if p != "" && !filepath.IsAbs(p) {
		p = filepath.Join(a.cfg.Cwd, p)
	}
	return p
}

// hasIPC tells which apps get PM2's IPC channel (NODE_CHANNEL_FD): node apps, as every app PM2
// forks does, so that process.send works as there; and apps that wait_ready or
// shutdown_with_message speak to, in whatever language they are written.
func hasIPC(cfg config.App) bool {
	return cfg.RunsNode() || cfg.WaitReady || cfg.ShutdownWithMessage
}

// heldFile is the listening socket the daemon holds for s's port, nil when it holds none.
// d.mu must be held.
func (d *Daemon) heldFile(a *app, s *slot) *os.File {
	if a.cfg.Socket == config.SocketNone {
		return nil
	}
	if l := a.listeners[s.port]; l != nil {
		return l.File
	}
	return nil
}

// healthSpec resolves an app's health check for the instance on port.
func healthSpec(cfg config.App, port int) *supervisor.HealthSpec {
	h := cfg.HealthCheck
	if h == nil {
		return nil
	}
	out := &supervisor.HealthSpec{
		URL: strings.ReplaceAll(h.URL, "{port}", strconv.Itoa(port)), Interval: h.Interval, Timeout: h.Timeout,
		Retries: h.Retries, Restart: h.Restart,
		Grace: max(cfg.MinUptime, h.Interval*time.Duration(h.Retries)),
	}
	if h.Script != "" {
		// config.Validate has split this script already; a port number put in place of
		// {port} cannot make it unsplittable, so there is no error to handle here.
		out.Argv, _ = config.SplitCommand(strings.ReplaceAll(h.Script, "{port}", strconv.Itoa(port)))
	}
	return out
}

func (d *Daemon) outLog(a *app, s *slot) string {
	switch {
	case a.cfg.OutFile != "":
		return a.cfg.OutFile
	case a.cfg.MergeLogs:
		return d.paths.MergedLog(a.cfg.Name, "out")
	}
	return d.paths.OutLog(a.cfg.Name, s.index)
}

func (d *Daemon) errLog(a *app, s *slot) string {
	switch {
	case a.cfg.ErrorFile != "":
		return a.cfg.ErrorFile
	case a.cfg.MergeLogs:
		return d.paths.MergedLog(a.cfg.Name, "err")
	}
	return d.paths.ErrLog(a.cfg.Name, s.index)
}

// env is the daemon's environment, then the app's env_file values, then its env, then
// pmdaemon's own variables. A daemon
// variable nothing overrides goes in as the very string os.Environ gave, so every instance's
// environment shares those bytes instead of holding its own copy (2–3 KB an instance with a
// shell's usual environment).
func (d *Daemon) env(a *app, s *slot) []string {
	m := map[string]string{}
	inherited := map[string]string{} // name -> the daemon's "NAME=value"
	for _, kv := range os.Environ() {
		if k, v, ok := cutEnv(kv); ok {
			m[k] = v
			inherited[k] = kv
		}
	}
	// launch refuses an unreadable env_file; one broken since (an automatic respawn) is
	// reported and left out rather than keeping the instance down.
	fileEnv, err := a.cfg.FileEnv()
	if err != nil {
		d.logger.Printf("%v (starting without it)", err)
	}
	for _, vars := range []map[string]string{fileEnv, a.cfg.Env} {
		for k, v := range vars {
			m[k] = v
			delete(inherited, k)
		}
	}
	delete(m, "PORT")
	// The protocols' variables are the daemon's to set: one the daemon inherited (it may run
	// under systemd) would point the app at sockets that are not its own.
	for _, k := range protocolEnv {
		delete(m, k)
	}
	if d.notifier != nil {
		m["NOTIFY_SOCKET"] = d.notifier.Address()
	}
	if a.cfg.Watchdog > 0 {
		m["WATCHDOG_USEC"] = strconv.FormatInt(a.cfg.Watchdog.Microseconds(), 10)
	}
	if a.cfg.Socket != config.SocketNone && s.port > 0 {
		// LISTEN_PID is set by the process itself (supervisor's shim): it is its own pid.
		m["LISTEN_FDS"], m["LISTEN_FDNAMES"] = "1", a.cfg.Name
	}
	if v, ok := a.cfg.Env["PORT"]; ok && s.port == 0 {
		m["PORT"] = v
	} else if v, ok := fileEnv["PORT"]; ok && s.port == 0 {
		m["PORT"] = v
	}
	if s.port > 0 {
		m["PORT"] = strconv.Itoa(s.port)
	}
	idx := strconv.Itoa(s.index)
	m["PM2_INSTANCE_ID"] = idx
	m["NODE_APP_INSTANCE"] = idx
	m["PMDAEMON_APP_NAME"] = a.cfg.Name
	m["PMDAEMON_HOME"] = d.paths.Home
	m[unitEnv] = s.unit
	out := make([]string, 0, len(m))
	for k, v := range m {
		if kv, ok := inherited[k]; ok && len(kv) == len(k)+1+len(v) && kv[len(k)+1:] == v {
			out = append(out, kv)
			continue
		}
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// protocolEnv are the variables of systemd's socket-activation and notify protocols, and of
// node's IPC channel (set by the supervisor for the apps that get one).
var protocolEnv = []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
	"NODE_CHANNEL_FD", "NODE_CHANNEL_SERIALIZATION_MODE"}

func cutEnv(kv string) (string, string, bool) {
	for i := 1; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return "", "", false
}

// pathOf is the PATH the app runs with.
func pathOf(env map[string]string) string {
	if p, ok := env["PATH"]; ok {
		return p
	}
	return os.Getenv("PATH")
}

// stopSlots stops the given slots' processes in parallel. With unwant, the slots are no longer
// wanted and give their ports back.
func (d *Daemon) stopSlots(slots []*slot, unwant bool) {
	var wg sync.WaitGroup
	for _, s := range slots {
		d.mu.Lock()
		// Stopped to be started again (restart, reload): until it is, the state file says
		// so, and a daemon that dies meanwhile has the next one start it, not take it for an
		// instance that had finished.
		s.restarting = !unwant
		inst := s.loop
		d.mu.Unlock()
		if inst == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst.Stop()
		}()
	}
	wg.Wait()
	d.mu.Lock()
	for _, s := range slots {
		if s.loop != nil {
			s.last = s.loop.State()
			s.loop = nil
		}
		if unwant {
			s.wanted = false
			d.dropUnit(s)
		}
	}
	d.mu.Unlock()
}
