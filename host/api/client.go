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
	"syscall"
	"time"
)

// Client talks to the daemon over its unix socket.
type Client struct {
	Socket string
	hc     *http.Client
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

// RemoteError is an error the daemon answered with.
type RemoteError struct {
	Status  int
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://pmdaemon"+path, body)
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
			return c.stopped(path, err)
		}
		return fmt.Errorf("daemon: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() == nil && connectionLost(err) {
			return c.stopped(path, err)
		}
		return fmt.Errorf("daemon: reading answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return &RemoteError{Status: resp.StatusCode, Message: e.Error}
		}
		return &RemoteError{Status: resp.StatusCode, Message: fmt.Sprintf("daemon answered %s", resp.Status)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("daemon: bad answer: %w", err)
		}
	}
	return nil
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

// stopped is the StoppedError of a request to path.
func (c *Client) stopped(path string, err error) error {
	op, _, _ := strings.Cut(strings.TrimPrefix(path, "/v1/"), "?")
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
	return &p, c.do(ctx, "GET", "/v1/ping", nil, &p)
}

func (c *Client) List(ctx context.Context) ([]Instance, error) {
	var out []Instance
	return out, c.do(ctx, "GET", "/v1/list", nil, &out)
}

func (c *Client) Info(ctx context.Context, target string) (*App, error) {
	var out App
	return &out, c.do(ctx, "GET", "/v1/info?target="+url.QueryEscape(target), nil, &out)
}

func (c *Client) Start(ctx context.Context, req StartRequest) (*Started, error) {
	var out Started
	return &out, c.do(ctx, "POST", "/v1/start", req, &out)
}

// StartMany starts the apps in order in one request; see StartManyResult.
func (c *Client) StartMany(ctx context.Context, req StartManyRequest) (*StartManyResult, error) {
	var out StartManyResult
	return &out, c.do(ctx, "POST", "/v1/start-many", req, &out)
}

func (c *Client) action(ctx context.Context, verb string, req TargetRequest) (*Result, error) {
	var out Result
	return &out, c.do(ctx, "POST", "/v1/"+verb, req, &out)
}

func (c *Client) Stop(ctx context.Context, req TargetRequest) (*Result, error) {
	return c.action(ctx, "stop", req)
}
func (c *Client) Restart(ctx context.Context, req TargetRequest) (*Result, error) {
	return c.action(ctx, "restart", req)
}
func (c *Client) Reload(ctx context.Context, req TargetRequest) (*Result, error) {
	return c.action(ctx, "reload", req)
}
func (c *Client) Delete(ctx context.Context, req TargetRequest) (*Result, error) {
	return c.action(ctx, "delete", req)
}

// Save writes the dump file and returns its path.
func (c *Client) Save(ctx context.Context) (string, error) {
	var out struct {
		Path string `json:"path"`
	}
	return out.Path, c.do(ctx, "POST", "/v1/save", nil, &out)
}

func (c *Client) Resurrect(ctx context.Context) (*Result, error) {
	var out Result
	return &out, c.do(ctx, "POST", "/v1/resurrect", nil, &out)
}

// Kill stops every app and then the daemon.
func (c *Client) Kill(ctx context.Context) error {
	return c.do(ctx, "POST", "/v1/kill", nil, nil)
}

func (c *Client) PortsAssigned(ctx context.Context) (map[int]string, error) {
	var out PortsAssigned
	return out.Ports, c.do(ctx, "GET", "/v1/ports", nil, &out)
}

func (c *Client) PortFree(ctx context.Context, port int) (*PortFree, error) {
	var out PortFree
	return &out, c.do(ctx, "GET", "/v1/ports/free?port="+strconv.Itoa(port), nil, &out)
}

// Plugins lists the registered plugins.
func (c *Client) Plugins(ctx context.Context) ([]PluginRow, error) {
	var out []PluginRow
	return out, c.do(ctx, "GET", "/v1/plugins", nil, &out)
}

// AddPlugin registers a plugin; the daemon starts it once to check it.
func (c *Client) AddPlugin(ctx context.Context, req PluginAddRequest) (*PluginRow, error) {
	var out PluginRow
	return &out, c.do(ctx, "POST", "/v1/plugins/add", req, &out)
}

// EnsurePlugin is an ecosystem file's plugin declaration.
func (c *Client) EnsurePlugin(ctx context.Context, req PluginAddRequest) (*PluginEnsured, error) {
	var out PluginEnsured
	return &out, c.do(ctx, "POST", "/v1/plugins/ensure", req, &out)
}

// RemovePlugin unregisters a plugin.
func (c *Client) RemovePlugin(ctx context.Context, name string) error {
	return c.do(ctx, "POST", "/v1/plugins/remove", PluginNameRequest{Name: name}, nil)
}

// TrustPlugin pins a registered plugin's binary as it is now.
func (c *Client) TrustPlugin(ctx context.Context, name string) (*PluginRow, error) {
	var out PluginRow
	return &out, c.do(ctx, "POST", "/v1/plugins/trust", PluginNameRequest{Name: name}, &out)
}
