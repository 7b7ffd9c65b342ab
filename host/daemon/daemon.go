// Package daemon wires the supervisor, the port registry, metrics and the state file together
// and serves the API. One daemon runs per PMDAEMON_HOME (a lock file guarantees it).
package daemon

import (
	"errors"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pmdaemon/pmdaemon/host/cgroup"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/metrics"
	"github.com/pmdaemon/pmdaemon/host/pluginhost"
	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/host/state"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// Paths are the files of a PMDAEMON_HOME.
type Paths struct{ Home string }

func (p Paths) Socket() string { return filepath.Join(p.Home, "daemon.sock") }
func (p Paths) Pid() string    { return filepath.Join(p.Home, "daemon.pid") }
func (p Paths) Lock() string   { return filepath.Join(p.Home, "daemon.lock") }
func (p Paths) Log() string    { return filepath.Join(p.Home, "daemon.log") }
func (p Paths) State() string  { return filepath.Join(p.Home, "state.json") }
func (p Paths) Dump() string   { return filepath.Join(p.Home, "dump.json") }
func (p Paths) LogDir() string { return filepath.Join(p.Home, "logs") }
func (p Paths) OutLog(app string, i int) string {
	return filepath.Join(p.LogDir(), app+"-"+strconv.Itoa(i)+"-out.log")
}
func (p Paths) ErrLog(app string, i int) string {
	return filepath.Join(p.LogDir(), app+"-"+strconv.Itoa(i)+"-err.log")
}

// Daemon owns every app. Mutating operations are serialised by opMu, so an allocation and the
// reservation that follows it are one step and two racing requests never get the same port;
// mu guards the data and is held only briefly, so `list` stays fast while a stop waits out a
// kill timeout.
type Daemon struct {
	paths  Paths
	prober ports.Prober
	logger *log.Logger

	opMu sync.Mutex
	// batch (under opMu) defers the state writes of the operations of one request to its end.
	batch, batchDirty bool
	mu                sync.Mutex
	apps              map[string]*app
	order             []string // app names in creation order
	reg               *ports.Registry
	nextID            int

	// cg owns the instances' cgroups; nil in process-group mode, cgReason says why.
	cg       *cgroup.Manager
	cgReason string

	plugins *pluginhost.Manager
	live    livePorts
	emitMu  sync.Mutex // orders hook events with their app_ports snapshots

	sampler   *metrics.Sampler
	warnings  []string // start-up problems, reported by ping
	orphans   []orphan // new instances of a reload the previous daemon did not finish
	saveErr   string   // why the last state write failed; "" when it succeeded
	saveRetry bool     // a retry of the state write is scheduled
	saveCh    chan struct{}
	sampleMu  sync.Mutex
	sampled   time.Time // when every instance was last measured
	// sampledRoots are the processes measured then (instance id -> pid).
	sampledRoots map[int]int
	quit         chan struct{}
	wg           sync.WaitGroup
	logw         logWatch // new log files for the rotation loop (logrotate.go)
}

type app struct {
	cfg      config.App
	override string // live port spec from restart/reload --port
	argv     []string
	argvErr  error
	created  time.Time
	slots    []*slot
	// rollback is set while a rolling reload runs (see state.Rollback).
	rollback *state.Rollback
}

// slot is one instance position of an app: its id and port outlive the process in it.
type slot struct {
	id, index, port int
	wanted          bool
	inst            *supervisor.Instance
	last            supervisor.State // state kept while no process runs
	// transient marks a new instance of a side-by-side reload before the swap.
	transient bool
	// restarting marks an instance stopped by an operation that starts it again.
	restarting bool
	// carry is the unstable-exit count a restored instance resumes with; launches by the
	// user start from zero, as a restart of an errored app should.
	carry int
	// unit names the slot's processes for as long as the slot lives: its cgroup directory,
	// and the PMDAEMON_UNIT marker every process it spawns carries. It is fixed when the slot
	// is made (from the app and the id it had then), so a reload handing ids over does not
	// rename it.
	unit string
}

func (s *slot) state() supervisor.State {
	if s.inst != nil {
		return s.inst.State()
	}
	return s.last
}

// liveSpec is the port spec in force.
func (a *app) liveSpec() string {
	if a.override != "" {
		return a.override
	}
	return a.cfg.Port
}

// New loads the state and returns a daemon ready to Restore. A corrupt state file has been
// moved aside; its error is returned with a usable daemon.
func New(home string, logger *log.Logger) (*Daemon, error) {
	d := &Daemon{
		paths:   Paths{Home: home},
		prober:  ports.OSProber{},
		logger:  logger,
		apps:    map[string]*app{},
		reg:     ports.NewRegistry(),
		sampler: metrics.NewSampler(),
		saveCh:  make(chan struct{}, 1),
		quit:    make(chan struct{}),
		plugins: pluginhost.NewManager(logger.Writer()),
	}
	if err := os.MkdirAll(d.paths.LogDir(), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create log directory: %w", err)
	}
	d.setupOwnership()
	f, err := state.Load(d.paths.State())
	var corrupt *state.CorruptError
	if err != nil && !errors.As(err, &corrupt) {
		return nil, err
	}
	d.load(f)
	if err != nil {
		d.warnings = append(d.warnings, err.Error())
	}
	return d, err
}

func (d *Daemon) load(f *state.File) {
	d.nextID = f.NextID
	specs := make([]pluginhost.Spec, 0, len(f.Plugins))
	for _, p := range f.Plugins {
		specs = append(specs, pluginhost.Spec(p))
	}
	d.plugins.Load(specs)
	for _, sa := range f.Apps {
		a := &app{cfg: sa.Config, override: sa.PortOverride, created: sa.CreatedAt, rollback: sa.Rollback}
		for _, si := range sa.Instances {
			if si.Transient {
				// A reload was under way when the daemon died: its new instance is not part of
				// the app. Stop it (if it still runs) and keep the old instances.
				unit := si.Unit
				if unit == "" {
					unit = unitName(sa.Config.Name, si.ID)
				}
				d.orphans = append(d.orphans, orphan{app: sa.Config.Name, pid: si.Pid, start: si.PidStart, kill: sa.Config.KillTimeout, unit: unit})
				continue
			}
			s := &slot{id: si.ID, index: si.Index, port: si.Port, wanted: si.Wanted, unit: si.Unit}
			if s.unit == "" { // written by a daemon before units
				s.unit = unitName(sa.Config.Name, si.ID)
			}
			s.last = supervisor.State{Status: supervisor.Status(si.Status), Pid: si.Pid, PidStart: si.PidStart,
				StartedAt: si.StartedAt, Restarts: si.Restarts, Unstable: si.Unstable}
			if !s.wanted {
				s.last.Status, s.port = supervisor.Stopped, 0
			}
			a.slots = append(a.slots, s)
		}
		d.apps[a.cfg.Name] = a
		d.order = append(d.order, a.cfg.Name)
	}
}

// orphan is a process of an interrupted reload, to be stopped.
type orphan struct {
	app   string
	pid   int
	start uint64
	kill  time.Duration
	unit  string
}

// Restore brings every wanted instance back: a process still running from an earlier daemon
// (same pid and start time, in the slot's cgroup) is taken back, any other is started afresh
// on its old port. Before anything starts, every process of the home that no slot owns is
// killed (reconcile), so nothing runs twice and nothing runs unlisted.
func (d *Daemon) Restore() {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	// First decide, for every slot, whether its process is taken back; then kill everything
	// else; only then start anything, so that no fresh process is mistaken for a stray.
	keep := map[string]int{}
	spare := map[string]bool{} // units of an unfinished reload, stopped gracefully below
	for _, o := range d.orphans {
		if d.cg != nil {
			spare[o.unit] = true
		} else if supervisor.Alive(o.pid, o.start) {
			keep[o.unit] = o.pid // its recorded process drains; any other process of it goes
		}
		d.stopOrphan(o)
	}
	d.orphans = nil
	adopt := map[*slot]*supervisor.Adopt{}
	for _, name := range d.order {
		a := d.apps[name]
		a.argv, a.argvErr = a.cfg.Argv(pathOf(a.cfg.Env))
		d.rollBackInterrupted(a)
		for _, s := range a.slots {
			st := s.last.Status
			if !s.wanted || st == supervisor.Errored || st == supervisor.Stopped {
				keep[s.unit] = 0
				continue
			}
			if d.adoptable(s) {
				adopt[s] = &supervisor.Adopt{Pid: s.last.Pid, PidStart: s.last.PidStart, StartedAt: s.last.StartedAt}
				keep[s.unit] = s.last.Pid
			} else {
				keep[s.unit] = 0
			}
		}
	}
	d.reconcile(keep, spare)
	// Empty every slot whose process is not taken back before any starts: a process of one
	// slot may still hold the port another slot is to start on (a reload cut short).
	for _, name := range d.order {
		for _, s := range d.apps[name].slots {
			if adopt[s] == nil {
				d.clearSlot(s)
			}
		}
	}
	for _, name := range d.order {
		a := d.apps[name]
		for _, s := range a.slots {
			if !s.wanted {
				continue
			}
			if s.port > 0 {
				if err := d.reg.Reserve(name, []int{s.port}); err != nil {
					d.logger.Printf("restore %s[%d]: %v", name, s.index, err)
				}
			}
			if st := s.last.Status; st == supervisor.Errored || st == supervisor.Stopped {
				// It had given up (crash loop) or finished (autorestart off) before the daemon
				// went down; a restart of the daemon does not run it again. It keeps its ports.
				s.last.Pid, s.last.PidStart = 0, 0
				continue
			}
			if ad := adopt[s]; ad != nil {
				d.logger.Printf("took back %s[%d] pid %d", name, s.index, s.last.Pid)
				s.carry = s.last.Unstable
				d.launch(a, s, ad)
				continue
			}
			// It died while no daemon watched, was waiting for its restart, or was being
			// spawned when the daemon died: starting it again is a restart like any other.
			if s.last.Pid > 0 || s.last.Status == supervisor.WaitingRestart {
				s.last.Restarts++
			}
			s.carry = s.last.Unstable
			d.mu.Unlock() // portReady takes it; nothing else changes the apps meanwhile (opMu)
			err := d.portReady(a, s)
			d.mu.Lock()
			if err != nil {
				continue // errored, with the reason
			}
			d.launch(a, s, nil)
		}
	}
	if err := d.saveLocked(); err != nil {
		d.logger.Printf("restore: %v", err)
	}
}

// stopOrphan stops, in the background, the processes of a reload the previous daemon did not
// finish, as a stop would: SIGTERM, kill timeout, SIGKILL.
func (d *Daemon) stopOrphan(o orphan) {
	if p := d.cgroupOf(&slot{unit: o.unit}); p != "" {
		if cgroup.Populated(p) {
			d.logger.Printf("stopping %s of %s: a new instance of a reload the previous daemon did not finish", o.unit, o.app)
		}
		go func() {
			cgroup.Signal(p, syscall.SIGTERM)
			if !cgroup.WaitEmpty(p, time.Now().Add(o.kill)) {
				cgroup.Kill(p)
			}
			d.dropUnit(&slot{unit: o.unit})
		}()
		return
	}
	if o.pid > 0 && supervisor.Alive(o.pid, o.start) {
		d.logger.Printf("stopping pid %d of %s: a new instance of a reload the previous daemon did not finish", o.pid, o.app)
		go supervisor.StopOrphan(o.pid, o.start, o.kill)
	}
}

// Run starts the background loops (metrics, state writer). Stop ends them.
func (d *Daemon) Run() {
	d.wg.Add(3)
	go d.saveLoop()
	go d.metricsLoop(2 * time.Second)
	go d.rotateLoop(2 * time.Second)
}

// metricsLoop enforces memory limits: every tick it measures the instances whose app has
// max_memory_restart and restarts those over it. Everything else is measured when someone
// looks (list, info), so an idle daemon with no limits does no sampling at all.
func (d *Daemon) metricsLoop(every time.Duration) {
	defer d.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-d.quit:
			return
		case <-t.C:
		}
		d.enforceMemoryLimits()
	}
}

type limited struct {
	inst  *supervisor.Instance
	limit int64
	name  string
	index int
}

// roots lists running instances (id -> pid) and the cgroups of those that have one; with
// onlyLimited, those with a memory limit.
func (d *Daemon) roots(onlyLimited bool) (map[int]int, map[int]string, map[int]limited) {
	roots := map[int]int{}
	groups := map[int]string{}
	limits := map[int]limited{}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.apps {
		for _, s := range a.slots {
			st := s.state()
			if st.Pid <= 0 {
				continue
			}
			if a.cfg.MaxMemoryRestart > 0 && s.inst != nil {
				limits[s.id] = limited{s.inst, a.cfg.MaxMemoryRestart, a.cfg.Name, s.index}
			} else if onlyLimited {
				continue
			}
			roots[s.id] = st.Pid
			if p := d.cgroupOf(s); p != "" {
				groups[s.id] = p
			}
		}
	}
	return roots, groups, limits
}

// enforceMemoryLimits restarts every instance whose process tree uses more memory than its
// app's max_memory_restart.
func (d *Daemon) enforceMemoryLimits() {
	roots, groups, limits := d.roots(true)
	if len(roots) == 0 {
		return
	}
	d.sampler.Sample(roots, groups, false)
	for id, l := range limits {
		if rss := d.sampler.Get(id).Memory; int64(rss) > l.limit {
			reason := fmt.Sprintf("memory %d bytes exceeded max_memory_restart %d bytes; restarted at %s",
				rss, l.limit, time.Now().Format(time.RFC3339))
			d.logger.Printf("%s[%d] (id %d): %s", l.name, l.index, id, reason)
			l.inst.Restart(reason)
		}
	}
}

// freshMetrics measures every running instance for list and info, unless the same processes
// were measured less than a second ago. CPU is then the average since the previous measure.
// d.mu must not be held.
func (d *Daemon) freshMetrics() {
	d.sampleMu.Lock()
	defer d.sampleMu.Unlock()
	roots, groups, _ := d.roots(false)
	if time.Since(d.sampled) < time.Second && maps.Equal(roots, d.sampledRoots) {
		return
	}
	d.sampler.Sample(roots, groups, true)
	d.sampled, d.sampledRoots = time.Now(), roots
}

// requestSave asks the writer loop for a save; many requests collapse into one write.
func (d *Daemon) requestSave() {
	select {
	case d.saveCh <- struct{}{}:
	default:
	}
}

// saveLoop writes the state when asked, then rests for savePace times the write's duration
// before the next: the requests of that rest collapse into one write. A write costs time in
// proportion to the apps registered and every instance's change asks for one, so without the
// rest the writes alone made starting an app cost in proportion to the apps already running.
func (d *Daemon) saveLoop() {
	defer d.wg.Done()
	rest := time.NewTimer(maxSaveRest)
	rest.Stop()
	defer rest.Stop()
	for {
		select {
		case <-d.quit:
			return
		case <-d.saveCh:
			d.mu.Lock()
			began := time.Now()
			d.saveLocked()
			took := time.Since(began)
			d.mu.Unlock()
			rest.Reset(min(savePace*took, maxSaveRest))
			select {
			case <-d.quit:
				return
			case <-rest.C:
			}
		}
	}
}

// savePace and maxSaveRest bound the share of the daemon's time spent writing state on
// instance changes to about 1/(1+savePace), and how long a change waits to be written.
const (
	savePace    = 4
	maxSaveRest = 500 * time.Millisecond
)

// saveLocked writes the state file; d.mu must be held. A failed write keeps the previous file
// intact (WriteAtomic) and is logged; the registry in memory stays the truth.
func (d *Daemon) saveLocked() error {
	f := &state.File{Version: state.Version, NextID: d.nextID}
	for _, name := range d.order {
		a := d.apps[name]
		sa := state.App{Config: a.cfg, PortOverride: a.override, CreatedAt: a.created, Rollback: a.rollback}
		for _, s := range a.slots {
			st := s.state()
			if s.restarting && (st.Status == supervisor.Stopping || st.Status == supervisor.Stopped) {
				st.Status = supervisor.WaitingRestart
			}
			sa.Instances = append(sa.Instances, state.Instance{
				ID: s.id, Index: s.index, Port: s.port, Wanted: s.wanted, Pid: st.Pid, PidStart: st.PidStart,
				StartedAt: st.StartedAt, Restarts: st.Restarts, Unstable: st.Unstable, Status: string(st.Status),
				Transient: s.transient, Unit: s.unit,
			})
		}
		f.Apps = append(f.Apps, sa)
	}
	for _, p := range d.plugins.Specs() {
		f.Plugins = append(f.Plugins, state.Plugin(p))
	}
	err := state.Save(d.paths.State(), f)
	if err != nil {
		if d.saveErr == "" {
			d.logger.Printf("saving state: %v (retrying every second)", err)
		}
		d.saveErr = err.Error()
		// The change lives in memory only until a write succeeds: try again soon, so that a
		// disk that was full loses nothing once it has room.
		if !d.saveRetry {
			d.saveRetry = true
			time.AfterFunc(time.Second, func() {
				d.mu.Lock()
				d.saveRetry = false
				d.mu.Unlock()
				d.requestSave()
			})
		}
	} else if d.saveErr != "" {
		d.logger.Printf("state saved again after: %s", d.saveErr)
		d.saveErr = ""
	}
	return err
}

// problems are the conditions ping reports on every call while they last.
func (d *Daemon) problems() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.saveErr == "" {
		return nil
	}
	return []string{"the daemon cannot write its state file (" + d.saveErr + "); changes are kept in memory " +
		"and written as soon as it can. Until then a daemon crash would lose them."}
}

// Shutdown stops every instance (in parallel, each with its kill timeout), keeps them wanted so
// that the next daemon brings them back, and writes the state.
func (d *Daemon) Shutdown() {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	var all []*slot
	before := map[*slot]supervisor.Status{}
	for _, a := range d.apps {
		for _, s := range a.slots {
			all = append(all, s)
			before[s] = s.state().Status
		}
	}
	d.mu.Unlock()
	d.stopSlots(all, false)
	// Save what each instance was doing before shutdown, so the next daemon brings back the
	// running ones and leaves finished or errored ones as they were.
	d.mu.Lock()
	for s, st := range before {
		s.restarting = false
		if st == supervisor.Stopping {
			st = supervisor.Stopped
		}
		if st != supervisor.Errored && st != supervisor.Stopped {
			st = supervisor.Online
		}
		s.last.Status = st
	}
	d.mu.Unlock()
	close(d.quit)
	d.wg.Wait()
	d.mu.Lock()
	d.saveLocked()
	d.mu.Unlock()
	d.plugins.Close() // hooks get the stop events first
	if d.cg != nil {
		d.cg.Close()
	}
}

// launch starts supervising slot s of a; d.mu must be held.
func (d *Daemon) launch(a *app, s *slot, adopt *supervisor.Adopt) {
	s.restarting = false
	if a.argvErr != nil {
		s.inst = nil
		s.last = supervisor.State{Status: supervisor.Errored, Restarts: s.last.Restarts, Reason: a.argvErr.Error()}
		return
	}
	spec := d.specFor(a, s)
	s.carry = 0
	s.inst = supervisor.Start(spec, s.last.Restarts, adopt, d.instanceChanged)
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
		},
		KillTimeout: a.cfg.KillTimeout,
		Port:        s.port,
		Health:      healthSpec(a.cfg, s.port),
		Unstable:    s.carry,
		Cgroup:      d.cgroupOf(s),
		BeforeSpawn: d.respawnCheck(a, s),
	}
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
		out.Argv, _ = config.SplitCommand(strings.ReplaceAll(h.Script, "{port}", strconv.Itoa(port)))
	}
	return out
}

func (d *Daemon) outLog(a *app, s *slot) string {
	if a.cfg.OutFile != "" {
		return a.cfg.OutFile
	}
	return d.paths.OutLog(a.cfg.Name, s.index)
}

func (d *Daemon) errLog(a *app, s *slot) string {
	if a.cfg.ErrorFile != "" {
		return a.cfg.ErrorFile
	}
	return d.paths.ErrLog(a.cfg.Name, s.index)
}

// env is the daemon's environment, then the app's, then pmdaemon's own variables. A daemon
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
	for k, v := range a.cfg.Env {
		m[k] = v
		delete(inherited, k)
	}
	delete(m, "PORT")
	if v, ok := a.cfg.Env["PORT"]; ok && s.port == 0 {
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
		inst := s.inst
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
		if s.inst != nil {
			s.last = s.inst.State()
			s.inst = nil
		}
		if unwant {
			s.wanted = false
			d.dropUnit(s)
		}
	}
	d.mu.Unlock()
}
