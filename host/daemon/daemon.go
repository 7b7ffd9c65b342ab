// Package daemon wires the supervisor, the port registry, metrics and the state file together
// and serves the API. One daemon runs per PMDAEMON_HOME (a lock file guarantees it).
package daemon

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pmdaemon/pmdaemon/host/cgroup"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/home"
	"github.com/pmdaemon/pmdaemon/host/metrics"
	"github.com/pmdaemon/pmdaemon/host/notify"
	"github.com/pmdaemon/pmdaemon/host/pluginhost"
	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/host/sockets"
	"github.com/pmdaemon/pmdaemon/host/state"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// Paths are the files of a PMDAEMON_HOME.
type Paths = home.Paths

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
	// bound are the sockets the running operation's allocation bound for socket apps, until
	// a slot launches on them or the operation ends (sockets.go).
	bound map[int]*sockets.Listener
	// notifier receives the instances' sd_notify datagrams; nil when it could not be made
	// (the reason is in warnings).
	notifier *notify.Server

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
	// saveMu orders state writes; saveGen numbers snapshots as they are taken (under mu),
	// savedGen is the newest written, so an older snapshot never replaces a newer file.
	saveMu   sync.Mutex
	saveGen  uint64
	savedGen atomic.Uint64
	// stateWriter writes the state file (under saveMu); cfgGens numbers app configs for it.
	stateWriter *state.Writer
	cfgGens     atomic.Uint64
	sampleMu    sync.Mutex
	// scraped is when /metrics was last scraped (unix ns; 0: never): the metrics loop keeps
	// samples fresh while scrapes come.
	scraped atomic.Int64
	sampled time.Time // when every instance was last measured
	// sampledRoots are the processes measured since (instance id -> pid).
	sampledRoots map[int]int
	quit         chan struct{}
	wg           sync.WaitGroup
	logw         logWatch // new log files for the rotation loop (logrotate.go)

	// The event stream, the counts /metrics adds to the state, and its handler (events.go,
	// metrics.go).
	events      eventHub
	stats       daemonStats
	promOnce    sync.Once
	promHandler http.Handler
}

type app struct {
	// cfg is never changed, only replaced, through setConfig, which gives it a new cfgGen:
	// the state writer's snapshots share it (taken under mu, written without), and encode it
	// again only when its cfgGen changed.
	cfg      *config.App
	cfgGen   uint64
	override string // live port spec from restart/reload --port
	argv     []string
	argvErr  error
	created  time.Time
	slots    []*slot
	// rollback is set while a rolling reload runs (see state.Rollback).
	rollback *state.Rollback
	// listeners are the listening sockets the daemon holds for a socket app, by port;
	// inodes are those a previous daemon held, from the state file, to take back at restore.
	listeners map[int]*sockets.Listener
	inodes    map[int]uint64
}

// slot is one instance position of an app: its id and port outlive the process in it.
type slot struct {
	id, index, port int
	wanted          bool
	loop            *supervisor.Loop
	last            supervisor.State // state kept while no process runs
	// transient marks a new instance of a side-by-side reload before the swap.
	transient bool
	// restarting marks an instance stopped by an operation that starts it again.
	restarting bool
	// carry is the unstable-exit count a restored instance resumes with; launches by the
	// user start from zero, as a restart of an errored app should.
	carry int
	// notice is what the user should know of the slot's instance (it did not accept on the
	// socket handed to it); cleared when it is ready.
	notice string
	// unit names the slot's processes for as long as the slot lives: its cgroup directory,
	// and the PMDAEMON_UNIT marker every process it spawns carries. It is fixed when the slot
	// is made (from the app and the id it had then), so a reload handing ids over does not
	// rename it.
	unit string
}

func (s *slot) state() supervisor.State {
	if s.loop != nil {
		return s.loop.State()
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
		bound:   map[int]*sockets.Listener{},
		sampler: metrics.NewSampler(),
		saveCh:  make(chan struct{}, 1),
		quit:    make(chan struct{}),
		plugins: pluginhost.NewManager(logger.Writer()),
	}
	d.stateWriter = state.NewWriter(d.paths.State())
	if err := os.MkdirAll(d.paths.LogDir(), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create log directory: %w", err)
	}
	d.setupOwnership()
	d.openNotify()
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
		a := &app{override: sa.PortOverride, created: sa.CreatedAt, rollback: sa.Rollback, inodes: sa.Sockets}
		d.setConfig(a, *sa.Config)
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

// Run starts the background loops (metrics, state writer). Stop ends them.
func (d *Daemon) Run() {
	d.serveNotify()
	d.wg.Add(5)
	go d.saveLoop()
	go d.metricsLoop(2 * time.Second)
	go d.rotateLoop(2 * time.Second)
	go d.cronLoop(250 * time.Millisecond)
	go d.watchLoop(500 * time.Millisecond)
}

// Shutdown stops every instance (in parallel, each with its kill timeout; an app before the apps
// it depends on), keeps them wanted so that the next daemon brings them back, and writes the
// state.
func (d *Daemon) Shutdown() {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	d.mu.Lock()
	levels := d.shutdownLevelsLocked()
	before := map[*slot]supervisor.Status{}
	for _, level := range levels {
		for _, s := range level {
			before[s] = s.state().Status
		}
	}
	d.mu.Unlock()
	// In parallel, but an app only once the apps that depend on it have stopped.
	for _, level := range levels {
		d.stopSlots(level, false)
	}
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
	d.persistLocked()
	d.mu.Unlock()
	// A log writer that outlived its instance's stop (a slow machine, a process outside the
	// instance holding its output) goes with the daemon, not after it. After the state is
	// written: a `kill` that finds the daemon unanswering allows it only 5 s beyond its apps.
	if err := supervisor.AwaitStrayWriters(3 * time.Second); err != nil {
		d.logger.Print(err)
	}
	d.plugins.Close() // hooks get the stop events first
	d.closeNotify()
	d.mu.Lock()
	for _, a := range d.apps {
		d.closeAppListeners(a)
	}
	d.mu.Unlock()
	if d.cg != nil {
		d.cg.Close()
	}
}
