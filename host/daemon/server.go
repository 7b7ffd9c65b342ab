package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/state"
)

// ErrAlreadyRunning means another daemon holds this home's lock.
var ErrAlreadyRunning = errors.New("a daemon is already running for this PMDAEMON_HOME")

// Serve runs the daemon for home in the foreground until it is killed through the API or gets
// SIGTERM/SIGINT; either way apps are stopped with their kill timeouts and state is saved.
func Serve(home string, logw io.Writer) error {
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
	srv := &http.Server{Handler: d.Handler(func() {
		select {
		case killed <- struct{}{}:
		default:
		}
	}), ReadHeaderTimeout: 10 * time.Second}
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
	}
	d.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	logger.Printf("daemon stopped")
	return nil
}

// Handler returns the API. kill is called once the kill request has been answered.
func (d *Daemon) Handler(kill func()) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) {
		mode, root, why := d.processMode()
		reply(w, api.Ping{Pid: os.Getpid(), Version: api.Version, Home: d.paths.Home, Warnings: d.warnings, Problems: d.problems(),
			ProcessMode: mode, CgroupRoot: root, ProcessModeReason: why}, nil)
	})
	mux.HandleFunc("GET /v1/list", func(w http.ResponseWriter, r *http.Request) {
		reply(w, d.List(), nil)
	})
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		out, err := d.Info(r.URL.Query().Get("target"))
		reply(w, out, err)
	})
	post(mux, "/v1/start", checked(d.checkStartOne, d.Start))
	post(mux, "/v1/start-many", checked(d.checkStartMany, d.StartMany))
	for verb, op := range map[string]func(context.Context, api.TargetRequest) (*api.Result, error){
		"stop": d.Stop, "restart": d.Restart, "reload": d.Reload, "delete": d.Delete,
	} {
		post(mux, "/v1/"+verb, checked(d.checkTarget, op))
	}
	mux.HandleFunc("POST /v1/save", func(w http.ResponseWriter, r *http.Request) {
		p, err := d.Save()
		reply(w, map[string]string{"path": p}, err)
	})
	mux.HandleFunc("POST /v1/resurrect", func(w http.ResponseWriter, r *http.Request) {
		out, err := d.Resurrect(r.Context())
		reply(w, out, err)
	})
	mux.HandleFunc("POST /v1/kill", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]bool{"ok": true}, nil)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		kill()
	})
	mux.HandleFunc("GET /v1/ports", func(w http.ResponseWriter, r *http.Request) {
		reply(w, api.PortsAssigned{Ports: d.PortsAssigned()}, nil)
	})
	mux.HandleFunc("GET /v1/ports/free", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("port")
		p, err := strconv.Atoi(q)
		if err != nil {
			reply(w, nil, userErr("port %q is not a number", q))
			return
		}
		reply(w, d.PortFree(p), nil)
	})
	mux.HandleFunc("GET /v1/plugins", func(w http.ResponseWriter, r *http.Request) {
		reply(w, d.Plugins(), nil)
	})
	post(mux, "/v1/plugins/add", noContext(d.AddPlugin))
	post(mux, "/v1/plugins/ensure", noContext(d.EnsurePlugin))
	post(mux, "/v1/plugins/trust", func(_ context.Context, req api.PluginNameRequest) (*api.PluginRow, error) {
		return d.TrustPlugin(req.Name)
	})
	post(mux, "/v1/plugins/remove", func(_ context.Context, req api.PluginNameRequest) (map[string]string, error) {
		return map[string]string{"removed": req.Name}, d.RemovePlugin(req.Name)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// post serves POST path: the body decoded strictly into Req, answered with op's result. op
// gets the request's context, which ends when the client goes away.
func post[Req, Resp any](mux *http.ServeMux, path string, op func(context.Context, Req) (Resp, error)) {
	mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if !decode(w, r, &req) {
			return
		}
		out, err := op(r.Context(), req)
		reply(w, out, err)
	})
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
			writeErr(w, http.StatusBadRequest, "bad request body: "+err.Error())
		}
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		var ue *UserError
		var nf *NotFoundError
		code := http.StatusInternalServerError
		switch {
		case errors.As(err, &nf):
			code = http.StatusNotFound
		case errors.As(err, &ue):
			code = http.StatusBadRequest
		}
		writeErr(w, code, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(api.Error{Error: msg})
}
