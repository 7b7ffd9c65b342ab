package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/dashboard"
)

// webHandler is the API behind the listener's gate: the token, its access, the body bound
// and the timeouts, then the same handlers as the unix socket.
func (s *apiServer) webHandler() http.Handler {
	inner := s.handler()
	page := dashboard.Handler()
	access := map[string]api.Access{}
	for _, r := range api.Routes() {
		access[r.Pattern()] = r.Access()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.VersionHeader, api.Version)
		if s.cors(w, r) {
			return
		}
		if dashboard.Serves(r.URL.Path) { // the page and its files; they ask the API with the token
			page.ServeHTTP(w, r)
			return
		}
		// Taken before the token is checked: a rotation after the check then ends the stream
		// even if it comes before the watch below starts (CI saw one slip through).
		changed := s.tokensChanged()
		got, ok := s.tokenAccess(r)
		if !ok {
			// The connection is closed with the answer: a client without a token holds no
			// connection (and no fd of the daemon's) open.
			w.Header().Set("Connection", "close")
			w.Header().Set("WWW-Authenticate", `Bearer realm="pmdaemon"`)
			writeAPIErr(w, &api.Error{Code: api.CodeUnauthorized, Message: "no valid token: send 'Authorization: Bearer TOKEN' with a token from 'pmdaemon web token'"})
			return
		}
		// HEAD runs the GET handler: it needs what GET needs. A route not in the table is
		// admin's, as an unmarked route is.
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		need, known := access[method+" "+r.URL.Path]
		if (!known || need == api.AccessAdmin) && got != api.AccessAdmin {
			w.Header().Set("Connection", "close")
			writeAPIErr(w, &api.Error{Code: api.CodeForbidden, Message: fmt.Sprintf("%s %s needs an admin token; this one is read-only", r.Method, r.URL.Path)})
			return
		}
		if !readBody(w, r) {
			return
		}
		if got != api.AccessAdmin {
			r = r.WithContext(context.WithValue(r.Context(), readOnlyKey{}, true))
		}
		if isStream(method, r.URL.Path) {
			// A stream ends when the tokens change (web token --rotate, web --off): the token
			// it was opened with may be the one rotated away.
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			go func() {
				select {
				case <-changed:
					cancel()
				case <-ctx.Done():
				}
			}()
			r = r.WithContext(ctx)
		}
		inner.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w)}, r)
	})
}

// tokenAccess is the access of the request's token: from Authorization: Bearer, or for a GET
// from the dashboard's cookie. Both tokens are compared, in constant time, whatever matches.
func (s *apiServer) tokenAccess(r *http.Request) (api.Access, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok && r.Method == http.MethodGet {
		if c, err := r.Cookie(tokenCookie); err == nil {
			tok, ok = c.Value, true
		}
	}
	if !ok || tok == "" {
		return "", false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	s.web.mu.Lock()
	adminHash, readHash := s.web.adminHash, s.web.readHash
	haveAdmin, haveRead := s.web.cfg.AdminToken != "", s.web.cfg.ReadToken != ""
	s.web.mu.Unlock()
	admin := subtle.ConstantTimeCompare(h[:], adminHash[:]) == 1 && haveAdmin
	read := subtle.ConstantTimeCompare(h[:], readHash[:]) == 1 && haveRead
	switch {
	case admin:
		return api.AccessAdmin, true
	case read:
		return api.AccessRead, true
	}
	return "", false
}

// cors adds the CORS headers for an allowed origin, and answers a preflight request itself
// (true). With no origin configured, it adds nothing: browsers then keep other sites' pages
// from reading the API.
func (s *apiServer) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	s.web.mu.Lock()
	allowed := slices.Contains(s.web.cfg.CORSOrigins, origin)
	s.web.mu.Unlock()
	if !allowed {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// readBody reads the request's body whole, at most config.MaxRequestBody bytes within
// webBodyTimeout, so that a handler that runs for minutes (a reload waiting for its instances)
// holds no half-read connection and a slow sender is cut off. It answers the error itself.
func readBody(w http.ResponseWriter, r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	if r.ContentLength > config.MaxRequestBody {
		writeAPIErr(w, &api.Error{Code: api.CodeTooLarge, Message: fmt.Sprintf("the request body is %d bytes; the limit is %d", r.ContentLength, config.MaxRequestBody)})
		return false
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(webBodyTimeout))
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, config.MaxRequestBody))
	if err != nil {
		if !bodyTooLarge(w, err) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				writeAPIErr(w, &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf("the request body did not arrive within %s", webBodyTimeout)})
			} else {
				writeAPIErr(w, &api.Error{Code: api.CodeInvalid, Message: "cannot read the request body: " + err.Error()})
			}
		}
		return false
	}
	rc.SetReadDeadline(time.Time{})
	r.Body = io.NopCloser(bytes.NewReader(b))
	return true
}

// deadlineWriter gives each write of an answer webWriteTimeout to be taken by the client: an
// answer that took minutes to compute is not cut, a client that stops reading is.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.rc.SetWriteDeadline(time.Now().Add(webWriteTimeout))
	return d.ResponseWriter.Write(p)
}

func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// webRoutes are the handlers of the web listener's settings, the streams, /metrics and the
// API's description; they are served on the unix socket too.
func (s *apiServer) webRoutes() map[api.Route]http.HandlerFunc {
	return map[api.Route]http.HandlerFunc{
		api.RouteWeb:       s.webGet,
		api.RouteWebSet:    post(s.webSet),
		api.RouteWebToken:  post(s.webToken),
		api.RouteEvents:    s.streamEvents,
		api.RouteLogStream: s.streamLogs,
		api.RouteMetrics: func(w http.ResponseWriter, r *http.Request) {
			s.d.metricsHandler().ServeHTTP(w, r)
		},
		api.RouteOpenAPI: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(api.OpenAPI)
		},
	}
}

// readOnlyKey marks the context of a request made with a read token.
type readOnlyKey struct{}

// readOnly tells whether a request was made with a read token (over the web listener).
func readOnly(ctx context.Context) bool {
	v, _ := ctx.Value(readOnlyKey{}).(bool)
	return v
}

// hideEnv blanks the values of an app's environment in an answer to a read token: an
// environment holds secrets, which is why GET /v1/env is admin's. The names stay.
func hideEnv(a *api.App) {
	if len(a.Config.Env) == 0 {
		return
	}
	hidden := make(map[string]string, len(a.Config.Env))
	for k := range a.Config.Env {
		hidden[k] = hiddenValue
	}
	a.Config.Env = hidden
}

// hiddenValue replaces an environment value a read token may not see.
const hiddenValue = "(hidden: needs an admin token)"

// isStream tells the routes that answer with a stream that lasts.
func isStream(method, path string) bool {
	return method == http.MethodGet && (path == api.RouteEvents.Path || path == api.RouteLogStream.Path)
}

// tokensChanged is closed when the tokens next change.
func (s *apiServer) tokensChanged() <-chan struct{} {
	s.web.mu.Lock()
	defer s.web.mu.Unlock()
	if s.web.tokensGen == nil {
		s.web.tokensGen = make(chan struct{})
	}
	return s.web.tokensGen
}

// connLimit caps the connections the web listener holds at once, so that no client (one
// without a token among them) can take every file descriptor of the daemon: a quarter of the
// daemon's descriptor limit, at least 64 and at most maxStreams plus room for requests.
func connLimit() int {
	var rl unix.Rlimit
	n := maxStreams + 256
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur/4 < uint64(n) {
		n = max(64, int(rl.Cur/4))
	}
	return n
}

// limitListener accepts at most cap connections at once; a further one waits for a slot.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
}

type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	c.release()
	return c.Conn.Close()
}
