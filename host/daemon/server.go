package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/state"
)

// ErrAlreadyRunning means another daemon holds this home's lock.
var ErrAlreadyRunning = errors.New("a daemon is already running for this PMDAEMON_HOME")

// Serve runs the daemon for home in the foreground until it is killed through the API or gets
// SIGTERM/SIGINT; either way apps are stopped with their kill timeouts and state is saved.
func Serve(home string, logw io.Writer) error {
	closeInheritedOnExec()
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %w", home, err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		return fmt.Errorf("cannot secure %s: %w", home, err)
	}
	paths := Paths{Home: home}
	lock, err := os.OpenFile(paths.Lock(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open lock file: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return ErrAlreadyRunning
	}
	logger := log.New(logw, "", log.LstdFlags)
	noHandover := systemdService() // asked now: the parent that started us may not outlive us
	// Holding the lock, we are the only writer of these files: a temp file beside them is
	// what a write cut short by a crash left behind.
	for _, p := range []string{paths.State(), paths.Dump()} {
		removed, err := state.RemoveStaleTemps(p)
		for _, r := range removed {
			logger.Printf("removed %s, left by a write the previous daemon did not finish", r)
		}
		if err != nil {
			logger.Printf("WARNING: %v", err)
		}
	}
	// We hold the lock, so any socket file left behind belongs to a dead daemon.
	os.Remove(paths.Socket())
	ln, err := net.Listen("unix", paths.Socket())
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", paths.Socket(), err)
	}
	defer os.Remove(paths.Socket())
	if err := os.Chmod(paths.Socket(), 0o600); err != nil {
		ln.Close()
		return err
	}
	d, err := New(home, logger)
	if err != nil {
		if d == nil {
			ln.Close()
			return err
		}
		// A corrupt state file was moved aside; say so loudly and go on with no apps.
		logger.Printf("WARNING: %v", err)
	}
	os.WriteFile(paths.Pid(), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	defer os.Remove(paths.Pid())
	d.Restore()
	// Answer only once every instance taken back or restarted has its process, so that the
	// first list after a daemon restart shows pids, not "starting".
	d.mu.Lock()
	var all []*slot
	for _, a := range d.apps {
		all = append(all, a.slots...)
	}
	d.mu.Unlock()
	if err := d.waitSpawned(context.Background(), all); err != nil {
		logger.Printf("waiting for restored instances to spawn: %v", err)
	}
	d.Run()
	logger.Printf("daemon %d listening on %s", os.Getpid(), paths.Socket())

	killed := make(chan struct{}, 1)
	handover := make(chan struct{}, 1)
	ctl := &control{
		kill:       func() { signalOnce(killed) },
		handover:   func() { signalOnce(handover) },
		noHandover: noHandover,
	}
	apiSrv := newAPIServer(d, ctl)
	srv := &http.Server{Handler: apiSrv.handler(), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(apiSrv.endStreams) // streams never end by themselves
	// The TCP listener of `pmdaemon web`, when it is on, opens before the socket is served:
	// once a ping answers, the web listener is up too (a script that starts the daemon with
	// ping and then calls the HTTP API found it refused for a moment).
	apiSrv.openWeb()
	defer apiSrv.closeWeb()
	go srv.Serve(ln)
	// Once start-up is over, and again a little later (the first requests and metrics passes
	// touch code once), give the kernel back the code pages start-up mapped.
	trimText()
	trimTimer := time.AfterFunc(5*time.Second, func() {
		logger.Printf("code pages given back (%d KiB of code mapped)", trimText()>>10)
	})
	defer trimTimer.Stop()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	select {
	case s := <-sigs:
		logger.Printf("got %v, stopping apps", s)
	case <-killed:
		logger.Printf("kill requested, stopping apps")
	case <-handover:
		logger.Printf("update requested: handing the apps over to the next daemon, leaving them running")
		if err := d.Handover(); err != nil {
			logger.Printf("WARNING: handover: %v", err)
		}
		// Handover leaves the daemon frozen: answer nothing more, and go.
		srv.Close()
		logger.Printf("daemon %d handed over", os.Getpid())
		return nil
	}
	ctl.close(shuttingDown)
	d.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	logger.Printf("daemon stopped")
	return nil
}

// signalOnce sends on a channel of one slot without waiting: a second kill is the first.
func signalOnce(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Handler returns the API. kill is called once the kill request has been answered. A daemon
// served this way cannot hand over: update is answered unavailable (see Serve).
func (d *Daemon) Handler(kill func()) http.Handler {
	return newAPIServer(d, &control{kill: kill}).handler()
}

// control is what the API's kill and update requests set off, and the gate that refuses
// changes once the daemon is going away.
type control struct {
	kill func()
	// handover, when set, is called once the update request has been answered; noHandover
	// says why update is refused all the same.
	handover   func()
	noHandover string
	// closing holds why changes are refused; nil while they are taken.
	closing atomic.Pointer[string]
}

// close refuses every request that would change something from now on, saying why.
func (c *control) close(why string) { c.closing.Store(&why) }

// apiServer is the daemon's API: one handler per api.Route.
type apiServer struct {
	d   *Daemon
	ctl *control
	web webState // the TCP listener of `pmdaemon web` (web.go)
}

func newAPIServer(d *Daemon, ctl *control) *apiServer { return &apiServer{d: d, ctl: ctl} }

// routes maps every route of the API to its handler; TestEveryRouteHandled checks that it
// covers api.Routes() exactly.
func (s *apiServer) routes() map[api.Route]http.HandlerFunc {
	d := s.d
	m := map[api.Route]http.HandlerFunc{
		api.RoutePing: func(w http.ResponseWriter, r *http.Request) {
			mode, root, why := d.processMode()
			reply(w, api.Ping{Pid: os.Getpid(), Version: api.Version, Home: d.paths.Home, Warnings: d.warnings, Problems: d.problems(),
				ProcessMode: mode, CgroupRoot: root, ProcessModeReason: why}, nil)
		},
		api.RouteList: func(w http.ResponseWriter, r *http.Request) {
			reply(w, d.List(), nil)
		},
		api.RouteInfo: func(w http.ResponseWriter, r *http.Request) {
			out, err := d.Info(r.URL.Query().Get("target"))
			if out != nil && readOnly(r.Context()) {
				hideEnv(out)
			}
			reply(w, out, err)
		},
		api.RouteStart:     post(checked(d.checkStartOne, d.Start)),
		api.RouteStartMany: post(checked(d.checkStartMany, d.StartMany)),
		api.RouteStop:      post(checked(d.checkTarget, d.Stop)),
		api.RouteRestart:   post(checked(d.checkTarget, d.Restart)),
		api.RouteReload:    post(checked(d.checkTarget, d.Reload)),
		api.RouteDelete:    post(checked(d.checkTarget, d.Delete)),
		api.RouteSave: func(w http.ResponseWriter, r *http.Request) {
			p, err := d.Save()
			reply(w, api.Saved{Path: p}, err)
		},
		api.RouteResurrect: func(w http.ResponseWriter, r *http.Request) {
			out, err := d.Resurrect(r.Context())
			reply(w, out, err)
		},
		api.RouteKill: func(w http.ResponseWriter, r *http.Request) {
			// A kill and an update exclude each other: whichever sets the gate first wins, so
			// that a daemon told it hands over never stops its apps instead. A second kill is
			// answered as the first.
			why := shuttingDown
			if !s.ctl.closing.CompareAndSwap(nil, &why) && *s.ctl.closing.Load() == handingOver {
				writeAPIErr(w, &api.Error{Code: api.CodeUnavailable, Message: handingOver})
				return
			}
			reply(w, api.Killed{OK: true}, nil)
			flush(w)
			s.ctl.kill()
		},
		api.RouteUpdate: s.update,
		api.RoutePorts: func(w http.ResponseWriter, r *http.Request) {
			reply(w, api.PortsAssigned{Ports: d.PortsAssigned()}, nil)
		},
		api.RoutePortFree: func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query().Get("port")
			p, err := strconv.Atoi(q)
			if err != nil {
				reply(w, nil, userErr("port %q is not a number", q))
				return
			}
			reply(w, d.PortFree(p), nil)
		},
		api.RoutePlugins: func(w http.ResponseWriter, r *http.Request) {
			reply(w, d.Plugins(), nil)
		},
		api.RoutePluginAdd:    post(noContext(d.AddPlugin)),
		api.RoutePluginEnsure: post(noContext(d.EnsurePlugin)),
		api.RoutePluginTrust: post(func(_ context.Context, req api.PluginNameRequest) (*api.PluginRow, error) {
			return d.TrustPlugin(req.Name)
		}),
		api.RoutePluginRemove: post(func(_ context.Context, req api.PluginNameRequest) (*api.PluginRemoved, error) {
			return &api.PluginRemoved{Removed: req.Name}, d.RemovePlugin(req.Name)
		}),
		api.RouteEnv: func(w http.ResponseWriter, r *http.Request) {
			id := r.URL.Query().Get("id")
			if err := checkInstanceID(id); err != nil {
				reply(w, nil, err)
				return
			}
			out, err := d.Env(id)
			reply(w, out, err)
		},
		api.RouteSignal: post(checked(checkSignal, d.Signal)),
		api.RouteReset:  post(checked(checkReset, d.Reset)),
		api.RouteScale:  post(checked(d.checkScale, d.Scale)),
	}
	maps.Copy(m, s.webRoutes())
	return m
}

// checkInstanceID is the check of GET /v1/env: one instance id, decimal digits only (an
// app's instances each have their own environment, so an app name is not enough).
func checkInstanceID(id string) error {
	if id == "" || len(id) > 9 || strings.Trim(id, "0123456789") != "" {
		return userErr("env takes an instance id (a number from pmdaemon list), got %q", id)
	}
	return nil
}

// checkReset is the check of POST /v1/reset: a target and nothing else, since a reset only
// zeroes counters and takes no override.
func checkReset(req api.TargetRequest) error {
	if req.Port != "" || req.Instances != 0 || req.WaitReady || req.WaitTimeout != 0 {
		return userErr("reset takes only a target; port, instances, wait_ready and wait_timeout are for restart and reload")
	}
	return nil
}

// checkSignal is the check of POST /v1/signal: a target and a signal this daemon knows.
func checkSignal(req api.SignalRequest) error {
	if req.Target == "" {
		return userErr("no target given: name an app, an instance id, or all")
	}
	if _, _, err := api.ParseSignal(req.Signal); err != nil {
		return &UserError{err.Error()}
	}
	return nil
}

// checkScale is the check of POST /v1/scale: an app name and a count within the bounds of an
// app's instances and the daemon's budget.
func (d *Daemon) checkScale(req api.ScaleRequest) error {
	if req.Name == "" {
		return userErr("no app given: scale NAME N names the app to scale")
	}
	if req.Instances < 1 || req.Instances > config.MaxInstances {
		return userErr("instances must be between 1 and %d, got %d", config.MaxInstances, req.Instances)
	}
	return d.checkBudget(map[string]appUse{req.Name: {instances: req.Instances}})
}

// handler serves the routes; every answer, an error or an unknown route's included, carries
// the daemon's version, and changes are refused once the daemon is closing.
func (s *apiServer) handler() http.Handler {
	mux := http.NewServeMux()
	for route, h := range s.routes() {
		if route.Method != http.MethodGet && route != api.RouteKill {
			h = s.gated(h)
		}
		mux.HandleFunc(route.Pattern(), h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIErr(w, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path)})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.VersionHeader, api.Version)
		for _, p := range s.d.problems() {
			w.Header().Add(api.ProblemHeader, problemHeaderValue(p))
		}
		mux.ServeHTTP(w, r)
	})
}

// maxProblemHeader bounds one problem in the Pmdaemon-Problem header: a path in it can be
// long, and clients refuse answers with huge headers.
const maxProblemHeader = 1024

// problemHeaderValue is problem as one header line a client accepts and a terminal shows as
// it is: white space runs become one space, other control characters (an escape in a home's
// path) are written as Go escapes (\x1b), invalid UTF-8 as U+FFFD, and it is cut to
// maxProblemHeader bytes. A control byte in a header makes Go's client (every pmdaemon
// command) refuse the whole answer.
func problemHeaderValue(problem string) string {
	var b strings.Builder
	for _, r := range strings.Join(strings.Fields(strings.ToValidUTF8(problem, "\uFFFD")), " ") {
		next := string(r)
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			next = q[1 : len(q)-1]
		}
		if b.Len()+len(next) > maxProblemHeader-len("...") {
			b.WriteString("...")
			break
		}
		b.WriteString(next)
	}
	return b.String()
}

// gated refuses a change while the daemon is closing: it would be lost, or worse, start an
// app the next daemon does not know of.
func (s *apiServer) gated(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if why := s.ctl.closing.Load(); why != nil {
			writeAPIErr(w, &api.Error{Code: api.CodeUnavailable, Message: *why})
			return
		}
		h(w, r)
	}
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// post is the handler of a POST route: the body decoded strictly into Req, answered with op's
// result. op gets the request's context, which ends when the client goes away.
func post[Req, Resp any](op func(context.Context, Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if !decode(w, r, &req) {
			return
		}
		out, err := op(r.Context(), req)
		reply(w, out, err)
	}
}

// checked runs check on a request before op; a request check refuses returns check's error.
func checked[Req, Resp any](check func(Req) error, op func(context.Context, Req) (Resp, error)) func(context.Context, Req) (Resp, error) {
	return func(ctx context.Context, req Req) (Resp, error) {
		if err := check(req); err != nil {
			var zero Resp
			return zero, err
		}
		return op(ctx, req)
	}
}

// noContext adapts an operation that does not wait on anything to post.
func noContext[Req, Resp any](op func(Req) (Resp, error)) func(context.Context, Req) (Resp, error) {
	return func(_ context.Context, req Req) (Resp, error) { return op(req) }
}

// decode reads a JSON body strictly: unknown fields, a key given twice in one object and
// trailing data are errors, and a body over config.MaxRequestBody is answered 413 without
// being read further.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, config.MaxRequestBody))
	var raw json.RawMessage
	err := dec.Decode(&raw)
	if err == nil {
		err = config.EnsureEOF(dec)
	}
	if err == nil {
		err = config.CheckDuplicateKeys(raw)
	}
	if err == nil {
		strict := json.NewDecoder(bytes.NewReader(raw))
		strict.DisallowUnknownFields()
		err = strict.Decode(v)
	}
	if err != nil {
		if !bodyTooLarge(w, err) {
			writeAPIErr(w, &api.Error{Code: api.CodeInvalid, Message: "bad request body: " + err.Error()})
		}
		return false
	}
	return true
}

// reply answers v, or err as an API error.
func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeAPIErr(w, apiError(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// writeErr answers msg with status, and the code of that status.
func writeErr(w http.ResponseWriter, status int, msg string) {
	writeAPIErr(w, &api.Error{Code: api.CodeOfStatus(status), Message: msg})
}

// writeAPIErr answers e with the HTTP status of its code.
func writeAPIErr(w http.ResponseWriter, e *api.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Code.Status())
	out := *e
	out.Legacy = e.Message
	json.NewEncoder(w).Encode(out)
}

// closeInheritedOnExec marks close-on-exec every fd above stderr that the daemon inherited
// open across exec (a shell's or a CI runner's pipes): Go opens its own fds close-on-exec, but
// inherited ones would otherwise leak into every app and plugin it starts, and an app's
// fds must be 0-2 and, for a socket app, the socket at 3.
func closeInheritedOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
