package daemon

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/state"
)

// `pmdaemon web` opens a TCP listener that serves the unix socket's API, the same handlers,
// to clients with a token: Prometheus, a browser, scripts on other machines. Its settings and
// tokens are in $PMDAEMON_HOME/web.json (mode 0600, in the home of mode 0700), so the next
// daemon opens the same listener. The tokens are kept as they are, not hashed: `web token`
// prints the token again when asked, as a Prometheus config needs it, and the file's mode is
// what guards it, as the unix socket's mode guards the socket.

// DefaultWebAddr is where `pmdaemon web` listens unless told otherwise.
const DefaultWebAddr = "127.0.0.1:9615"

// Bounds of the web listener's requests, against clients that send slowly or never finish.
var (
	webHeaderTimeout = 5 * time.Second  // to send the request line and headers
	webBodyTimeout   = 30 * time.Second // to send the body, once the headers are in
	webWriteTimeout  = 30 * time.Second // for each write of the answer to be taken
	webIdleTimeout   = 2 * time.Minute  // a kept-alive connection with no request
)

const (
	maxWebHeaderBytes = 64 << 10
	maxCORSOrigins    = 16
	maxOriginLen      = 256
	// tokenCookie carries a token for GET requests from a browser, where an EventSource
	// cannot send an Authorization header (the dashboard sets it).
	tokenCookie = "pmdaemon_token"
)

// webConfig is web.json.
type webConfig struct {
	On          bool     `json:"on"`
	Addr        string   `json:"addr"`
	AllowRemote bool     `json:"allow_remote,omitempty"`
	CORSOrigins []string `json:"cors_origins,omitempty"`
	AdminToken  string   `json:"admin_token,omitempty"`
	ReadToken   string   `json:"read_token,omitempty"`
}

// webState is the listener of one API server and its settings.
type webState struct {
	mu     sync.Mutex
	loaded bool
	cfg    webConfig
	// adminHash and readHash are the tokens' SHA-256, compared in constant time.
	adminHash, readHash [sha256.Size]byte
	srv                 *http.Server
	ln                  net.Listener
	err                 string // why the listener is not open though it is on
	// ending is closed when the daemon stops serving: every stream ends then, rather than
	// hold the shutdown until its timeout.
	ending     chan struct{}
	endingOnce sync.Once
	// tokensGen is closed when the tokens change: the streams opened with them end.
	tokensGen chan struct{}
}

// streamsEnding is closed once the daemon stops serving (endStreams).
func (s *apiServer) streamsEnding() <-chan struct{} {
	s.web.mu.Lock()
	defer s.web.mu.Unlock()
	if s.web.ending == nil {
		s.web.ending = make(chan struct{})
	}
	return s.web.ending
}

// endStreams ends every event and log stream; the daemon calls it as it shuts its API down.
func (s *apiServer) endStreams() {
	s.streamsEnding()
	s.web.endingOnce.Do(func() { close(s.web.ending) })
}

// loadWeb reads web.json once; a missing file is the defaults, off. s.web.mu is held.
func (s *apiServer) loadWebLocked() error {
	w := &s.web
	if w.loaded {
		return nil
	}
	cfg := webConfig{Addr: DefaultWebAddr}
	b, err := os.ReadFile(s.d.paths.Web())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("cannot read %s: %w", s.d.paths.Web(), err)
	default:
		if err := json.Unmarshal(b, &cfg); err != nil {
			return fmt.Errorf("%s is not valid: %w (remove it and run 'pmdaemon web' again)", s.d.paths.Web(), err)
		}
	}
	w.setLocked(cfg)
	w.loaded = true
	return nil
}

func (w *webState) setLocked(cfg webConfig) {
	if (cfg.AdminToken != w.cfg.AdminToken || cfg.ReadToken != w.cfg.ReadToken) && w.tokensGen != nil {
		close(w.tokensGen)
		w.tokensGen = nil
	}
	w.cfg = cfg
	w.adminHash = sha256.Sum256([]byte(cfg.AdminToken))
	w.readHash = sha256.Sum256([]byte(cfg.ReadToken))
}

// saveWebLocked writes cfg to web.json and makes it the one in force.
func (s *apiServer) saveWebLocked(cfg webConfig) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := state.WriteAtomic(s.d.paths.Web(), append(b, '\n'), 0o600); err != nil {
		return err
	}
	s.web.setLocked(cfg)
	return nil
}

// openWeb opens the listener web.json asks for, at the daemon's start. A failure is logged
// and shown by `pmdaemon web`; the daemon runs on without it.
func (s *apiServer) openWeb() {
	s.web.mu.Lock()
	defer s.web.mu.Unlock()
	if err := s.loadWebLocked(); err != nil {
		s.web.err = err.Error()
		s.d.logger.Printf("WARNING: web listener: %v", err)
		return
	}
	if !s.web.cfg.On {
		return
	}
	if err := s.listenWebLocked(s.web.cfg.Addr); err != nil {
		s.web.err = err.Error()
		s.d.logger.Printf("WARNING: web listener: %v", err)
	}
}

// closeWeb closes the listener and every connection it has (the daemon is stopping).
func (s *apiServer) closeWeb() {
	s.web.mu.Lock()
	defer s.web.mu.Unlock()
	if s.web.srv != nil {
		s.web.srv.Close()
		s.web.srv, s.web.ln = nil, nil
	}
}

// listenWebLocked binds addr and serves on it, then retires the listener open before, if any.
func (s *apiServer) listenWebLocked(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s.webHandler(),
		ReadHeaderTimeout: webHeaderTimeout,
		IdleTimeout:       webIdleTimeout,
		MaxHeaderBytes:    maxWebHeaderBytes,
	}
	go srv.Serve(&limitListener{Listener: ln, slots: make(chan struct{}, connLimit())})
	s.retireWebLocked()
	s.web.srv, s.web.ln, s.web.err = srv, ln, ""
	s.d.logger.Printf("web: listening on %s", ln.Addr())
	return nil
}

// retireWebLocked stops the listener that is open: no new connection; the requests under way
// (the one that closes it among them) get their answers, and streams are cut after a moment.
func (s *apiServer) retireWebLocked() {
	old := s.web.srv
	if old == nil {
		return
	}
	s.web.srv, s.web.ln = nil, nil
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		old.Shutdown(ctx)
		old.Close()
	}()
}

// webStatusLocked is the listener as GET /v1/web shows it.
func (s *apiServer) webStatusLocked() api.WebStatus {
	c := s.web.cfg
	out := api.WebStatus{On: c.On, Addr: c.Addr, AllowRemote: c.AllowRemote, CORSOrigins: c.CORSOrigins, Error: s.web.err, Tokens: []api.Access{}}
	if s.web.ln != nil {
		out.Listening = s.web.ln.Addr().String()
	}
	if c.AdminToken != "" {
		out.Tokens = append(out.Tokens, api.AccessAdmin)
	}
	if c.ReadToken != "" {
		out.Tokens = append(out.Tokens, api.AccessRead)
	}
	return out
}

func (s *apiServer) webGet(w http.ResponseWriter, r *http.Request) {
	s.web.mu.Lock()
	defer s.web.mu.Unlock()
	if err := s.loadWebLocked(); err != nil {
		reply(w, nil, err)
		return
	}
	reply(w, s.webStatusLocked(), nil)
}

// webSet answers POST /v1/web: the request is checked whole before anything changes; the new
// listener is bound before the old one closes, so a move that cannot bind leaves things as
// they were.
func (s *apiServer) webSet(ctx context.Context, req api.WebRequest) (*api.WebStatus, error) {
	s.web.mu.Lock()
	defer s.web.mu.Unlock()
	if err := s.loadWebLocked(); err != nil {
		return nil, err
	}
	cfg := s.web.cfg
	if req.Addr != "" {
		cfg.Addr = req.Addr
	}
	if !req.Off {
		// Every opening says again whether other machines may connect; closing keeps it.
		cfg.AllowRemote = req.AllowRemote
	}
	if req.CORSOrigins != nil {
		cfg.CORSOrigins = req.CORSOrigins
	}
	if err := checkWebAddr(cfg.Addr, cfg.AllowRemote || req.Off); err != nil {
		return nil, err
	}
	if err := checkOrigins(cfg.CORSOrigins); err != nil {
		return nil, err
	}
	cfg.On = !req.Off
	switch {
	case !cfg.On:
		s.retireWebLocked()
		s.web.err = ""
	case s.web.ln == nil || cfg.Addr != s.web.cfg.Addr:
		if err := s.listenWebLocked(cfg.Addr); err != nil {
			return nil, &ConflictError{err.Error()}
		}
	}
	if cfg.On && cfg.AdminToken == "" {
		// A listener nobody can use is no use: the admin token is made with it.
		tok, err := newToken()
		if err != nil {
			return nil, err
		}
		cfg.AdminToken = tok
	}
	if err := s.saveWebLocked(cfg); err != nil {
		return nil, err
	}
	st := s.webStatusLocked()
	return &st, nil
}

// webToken answers POST /v1/web/token.
func (s *apiServer) webToken(ctx context.Context, req api.WebTokenRequest) (*api.WebToken, error) {
	s.web.mu.Lock()
	defer s.web.mu.Unlock()
	if err := s.loadWebLocked(); err != nil {
		return nil, err
	}
	cfg := s.web.cfg
	tok, access := &cfg.AdminToken, api.AccessAdmin
	if req.ReadOnly {
		tok, access = &cfg.ReadToken, api.AccessRead
	}
	created := false
	if *tok == "" || req.Rotate {
		t, err := newToken()
		if err != nil {
			return nil, err
		}
		*tok, created = t, true
		if err := s.saveWebLocked(cfg); err != nil {
			return nil, err
		}
	}
	return &api.WebToken{Token: *tok, Access: access, Created: created}, nil
}

// newToken is 32 random bytes, URL-safe base64 (43 characters).
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cannot make a token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// checkWebAddr refuses an address that is not host:port with a port, and one that other
// machines could reach unless allowRemote.
func checkWebAddr(addr string, allowRemote bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return userErr("web address %q is not host:port (e.g. 127.0.0.1:9615): %v", shorten(addr, 100), err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return userErr("web address %q: port %q is not a number from 1 to 65535", shorten(addr, 100), port)
	}
	if allowRemote || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	what := "host " + host
	if host == "" {
		what = "every interface"
	}
	return userErr("web address %q listens on %s, which other machines may reach; use a loopback address (127.0.0.1, ::1, localhost) or pass --allow-remote", addr, what)
}

// checkOrigins refuses CORS origins that are not scheme://host[:port].
func checkOrigins(origins []string) error {
	if len(origins) > maxCORSOrigins {
		return userErr("%d CORS origins given; at most %d", len(origins), maxCORSOrigins)
	}
	for i, o := range origins {
		u, err := url.Parse(o)
		if len(o) > maxOriginLen || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return userErr("cors origin %d (%q) is not an origin such as https://grafana.example:3000 (scheme and host, no path)", i+1, shorten(o, 100))
		}
	}
	return nil
}
