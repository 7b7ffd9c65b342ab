package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Client talks to the daemon over its unix socket.
type Client struct {
	Socket string
	hc     *http.Client

	mu         sync.Mutex
	seen       string              // the daemon version of the last answer
	onMismatch func(daemon string) // called once, on the first answer of another version
	told       bool
	onProblems func(problems []string) // called on every answer that carries problems
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns: 4,
	}
	return &Client{Socket: socket, hc: &http.Client{Transport: tr}}
}

// ErrNoDaemon is returned when nothing answers on the socket.
var ErrNoDaemon = errors.New("daemon is not running")

// OnVersionMismatch has f called once, with the daemon's version, on the first answer that
// carries a version other than this build's.
func (c *Client) OnVersionMismatch(f func(daemon string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onMismatch = f
}

// OnProblems has f called with the daemon's Problems (ProblemHeader) on every answer that
// carries any.
func (c *Client) OnProblems(f func(problems []string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onProblems = f
}

// DaemonVersion is the version the daemon sent with its last answer; "" before any answer, or
// from a daemon too old to send one.
func (c *Client) DaemonVersion() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen
}

// noteVersion records the version an answer came with.
func (c *Client) noteVersion(v string) {
	if v == "" {
		// Daemons before 0.2.0 sent no version header.
		v = OlderVersion
	}
	c.mu.Lock()
	c.seen = v
	var tell func(string)
	if v != Version && !c.told && c.onMismatch != nil {
		c.told, tell = true, c.onMismatch
	}
	c.mu.Unlock()
	if tell != nil {
		tell(v)
	}
}

// do sends a request for route (query, if any, appended to its path) with in as its JSON
// body, and decodes the answer into out.
func (c *Client) do(ctx context.Context, route Route, query url.Values, in, out any) error {
	path := route.Path
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, route.Method, "http://pmdaemon"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%w (%v)", ErrNoDaemon, op.Err)
		}
		if ctx.Err() == nil && connectionLost(err) {
			return c.stopped(route, err)
		}
		return fmt.Errorf("daemon: %w", err)
	}
	defer resp.Body.Close()
	c.noteVersion(resp.Header.Get(VersionHeader))
	if ps := resp.Header.Values(ProblemHeader); len(ps) > 0 {
		c.mu.Lock()
		tell := c.onProblems
		c.mu.Unlock()
		if tell != nil {
			tell(ps)
		}
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() == nil && connectionLost(err) {
			return c.stopped(route, err)
		}
		return fmt.Errorf("daemon: reading answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return remoteError(resp, b)
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = b // the caller's json.Indent or Unmarshal checks it: one scan, not two
		return nil
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("daemon: bad answer: %w", err)
		}
	}
	return nil
}

// remoteError is the *Error of a non-2xx answer. A daemon older than error codes answered
// {"error": message}: its status gives the code.
func remoteError(resp *http.Response, body []byte) *Error {
	var e struct {
		Code    Code   `json:"code"`
		Message string `json:"message"`
		Legacy  string `json:"error"`
	}
	json.Unmarshal(body, &e)
	out := &Error{Code: e.Code, Message: e.Message, Status: resp.StatusCode}
	if out.Message == "" {
		out.Message = e.Legacy
	}
	if out.Message == "" {
		out.Message = fmt.Sprintf("daemon answered %s", resp.Status)
	}
	if out.Code == "" {
		out.Code = CodeOfStatus(resp.StatusCode)
	}
	return out
}

// StoppedError is a request the daemon took but never answered: the connection closed under
// it, as when the daemon crashes or is killed while it works on the request.
type StoppedError struct {
	Op  string // what the request was: "start", "restart", "plugin add", ...
	Log string // the daemon's log, "" when there is none to read
	Err error  // what the connection said
}

func (e *StoppedError) Error() string {
	where := "see the daemon's log"
	if e.Log != "" {
		where = "see " + e.Log
	}
	return fmt.Sprintf("the daemon stopped while handling %s (it may have crashed: %s); run 'pmdaemon list' to see what is running", e.Op, where)
}

func (e *StoppedError) Unwrap() error { return e.Err }

// connectionLost reports whether err is a connection that closed before the answer came:
// an EOF where the answer should start, a cut answer, a reset or a broken pipe.
func connectionLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// stopped is the StoppedError of a request for route.
func (c *Client) stopped(route Route, err error) error {
	op := strings.TrimPrefix(route.Path, "/v1/")
	switch op {
	case "start-many":
		op = "start"
	default:
		op = strings.ReplaceAll(op, "/", " ")
	}
	log := filepath.Join(filepath.Dir(c.Socket), "daemon.log")
	if _, serr := os.Stat(log); serr != nil {
		log = "" // a daemon run in the foreground logs to its stderr
	}
	return &StoppedError{Op: op, Log: log, Err: err}
}

// Ping asks the daemon whether it is alive; it fails fast when it is not.
func (c *Client) Ping(ctx context.Context) (*Ping, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var p Ping
	return &p, c.do(ctx, RoutePing, nil, nil, &p)
}

func (c *Client) List(ctx context.Context) ([]Instance, error) {
	var out []Instance
	return out, c.do(ctx, RouteList, nil, nil, &out)
}

// ListJSON is List's answer as the daemon wrote it, not yet checked to be JSON, for a caller
// that only passes it on (`list --json`, `jlist`): decoding a hundred rows and encoding them again
// costs a CLI process more than the request does.
func (c *Client) ListJSON(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, RouteList, nil, nil, &out)
}

func (c *Client) Info(ctx context.Context, target string) (*App, error) {
	var out App
	return &out, c.do(ctx, RouteInfo, url.Values{"target": {target}}, nil, &out)
}

func (c *Client) Start(ctx context.Context, req StartRequest) (*Started, error) {
	var out Started
	return &out, c.do(ctx, RouteStart, nil, req, &out)
}

// StartMany starts the apps in order in one request; see StartManyResult.
func (c *Client) StartMany(ctx context.Context, req StartManyRequest) (*StartManyResult, error) {
	var out StartManyResult
	return &out, c.do(ctx, RouteStartMany, nil, req, &out)
}

func (c *Client) action(ctx context.Context, route Route, req TargetRequest) (*Result, error) {
	var out Result
	return &out, c.do(ctx, route, nil, req, &out)
}

func (c *Client) Stop(ctx context.Context, req TargetRequest) (*Result, error) {
	return c.action(ctx, RouteStop, req)
}
func (c *Client) Restart(ctx context.Context, req TargetRequest) (*Result, error) {
	return c.action(ctx, RouteRestart, req)
}
func (c *Client) Reload(ctx context.Context, req TargetRequest) (*Result, error) {
	return c.action(ctx, RouteReload, req)
}
func (c *Client) Delete(ctx context.Context, req TargetRequest) (*Result, error) {
	return c.action(ctx, RouteDelete, req)
}

// Save writes the dump file and returns its path.
func (c *Client) Save(ctx context.Context) (string, error) {
	var out Saved
	return out.Path, c.do(ctx, RouteSave, nil, nil, &out)
}

func (c *Client) Resurrect(ctx context.Context) (*Result, error) {
	var out Result
	return &out, c.do(ctx, RouteResurrect, nil, nil, &out)
}

// Kill stops every app and then the daemon.
func (c *Client) Kill(ctx context.Context) error {
	return c.do(ctx, RouteKill, nil, nil, &Killed{})
}

// Update has the daemon hand its apps over and exit, leaving them running; see Handover.
func (c *Client) Update(ctx context.Context) (*Handover, error) {
	var out Handover
	return &out, c.do(ctx, RouteUpdate, nil, nil, &out)
}

func (c *Client) PortsAssigned(ctx context.Context) (map[int]string, error) {
	var out PortsAssigned
	return out.Ports, c.do(ctx, RoutePorts, nil, nil, &out)
}

func (c *Client) PortFree(ctx context.Context, port int) (*PortFree, error) {
	var out PortFree
	return &out, c.do(ctx, RoutePortFree, url.Values{"port": {strconv.Itoa(port)}}, nil, &out)
}

// Plugins lists the registered plugins.
func (c *Client) Plugins(ctx context.Context) ([]PluginRow, error) {
	var out []PluginRow
	return out, c.do(ctx, RoutePlugins, nil, nil, &out)
}

// AddPlugin registers a plugin; the daemon starts it once to check it.
func (c *Client) AddPlugin(ctx context.Context, req PluginAddRequest) (*PluginRow, error) {
	var out PluginRow
	return &out, c.do(ctx, RoutePluginAdd, nil, req, &out)
}

// EnsurePlugin is an ecosystem file's plugin declaration.
func (c *Client) EnsurePlugin(ctx context.Context, req PluginAddRequest) (*PluginEnsured, error) {
	var out PluginEnsured
	return &out, c.do(ctx, RoutePluginEnsure, nil, req, &out)
}

// RemovePlugin unregisters a plugin.
func (c *Client) RemovePlugin(ctx context.Context, name string) error {
	return c.do(ctx, RoutePluginRemove, nil, PluginNameRequest{Name: name}, &PluginRemoved{})
}

// TrustPlugin pins a registered plugin's binary as it is now.
func (c *Client) TrustPlugin(ctx context.Context, name string) (*PluginRow, error) {
	var out PluginRow
	return &out, c.do(ctx, RoutePluginTrust, nil, PluginNameRequest{Name: name}, &out)
}
