package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// WebRequest opens, moves or closes the daemon's TCP listener (POST /v1/web). The daemon
// keeps it in the home, so the next daemon opens the same listener.
type WebRequest struct {
	// Addr is host:port; the host must be a loopback address or "localhost" unless
	// AllowRemote is set. "" keeps the address already configured (127.0.0.1:9615 at first).
	Addr        string `json:"addr,omitempty"`
	Off         bool   `json:"off,omitempty"`
	AllowRemote bool   `json:"allow_remote,omitempty"`
	// CORSOrigins are the browser origins allowed to call the API from their pages
	// ("https://grafana.example"); none by default, and then no CORS header is ever sent.
	CORSOrigins []string `json:"cors_origins,omitempty"`
}

// WebStatus is the listener's configuration and state (GET and POST /v1/web).
type WebStatus struct {
	On          bool     `json:"on"`
	Addr        string   `json:"addr"`
	AllowRemote bool     `json:"allow_remote"`
	CORSOrigins []string `json:"cors_origins,omitempty"`
	// Listening is the address bound now ("" when off or when it could not bind: Error).
	Listening string `json:"listening,omitempty"`
	Error     string `json:"error,omitempty"`
	// Tokens says which tokens exist ("admin", "read"); the tokens themselves come only
	// from POST /v1/web/token.
	Tokens []Access `json:"tokens"`
}

// WebTokenRequest asks for a token (POST /v1/web/token): the admin token, or with ReadOnly
// the read token; one is made on first use, and Rotate replaces it (the old one stops working
// at once).
type WebTokenRequest struct {
	ReadOnly bool `json:"read_only,omitempty"`
	Rotate   bool `json:"rotate,omitempty"`
}

// WebToken answers POST /v1/web/token.
type WebToken struct {
	Token  string `json:"token"`
	Access Access `json:"access"`
	// Created is set when this request made the token (first use or a rotation).
	Created bool `json:"created"`
}

// Event is one lifecycle event of GET /v1/events (docs/web.md lists the kinds).
type Event struct {
	// Seq numbers the daemon's events from 1; a stream resumed with Last-Event-ID starts
	// after it.
	Seq  uint64 `json:"seq"`
	Kind string `json:"kind"`
	App  string `json:"app,omitempty"`
	// Instance is the instance's index in its app and ID its id; -1 for an event of the
	// whole app (ports-changed, deleted).
	Instance int `json:"instance"`
	ID       int `json:"id"`
	Pid      int `json:"pid,omitempty"`
	// Status is the instance's status once the event happened; Restarts its restart count.
	Status   string `json:"status,omitempty"`
	Restarts int    `json:"restarts,omitempty"`
	Ports    []int  `json:"ports,omitempty"`
	AppPorts []int  `json:"app_ports,omitempty"`
	ExitCode int    `json:"exit_code,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Cause is the restart's kind for restarting: crash, exit, health, memory, watchdog,
	// cron, watch, requested.
	Cause string    `json:"cause,omitempty"`
	Time  time.Time `json:"time"`
	// Dropped, in a "dropped" event, is how many events this stream lost because its client
	// read too slowly.
	Dropped uint64 `json:"dropped,omitempty"`
}

// LogLine is one line of GET /v1/logs/stream.
type LogLine struct {
	App      string `json:"app"`
	Instance int    `json:"instance"`
	ID       int    `json:"id"`
	Stream   string `json:"stream"` // "out" or "err"
	// Time is when the daemon read the line from the log file.
	Time time.Time `json:"time"`
	Line string    `json:"line"`
	// Dropped, in a "dropped" message, is how many lines this stream lost to a slow reader.
	Dropped uint64 `json:"dropped,omitempty"`
}

// WebStatus returns the web listener's configuration and state.
func (c *Client) WebStatus(ctx context.Context) (*WebStatus, error) {
	var out WebStatus
	return &out, c.do(ctx, RouteWeb, nil, nil, &out)
}

// Web opens, moves or closes the web listener.
func (c *Client) Web(ctx context.Context, req WebRequest) (*WebStatus, error) {
	var out WebStatus
	return &out, c.do(ctx, RouteWebSet, nil, req, &out)
}

// WebToken returns (making or rotating it) the admin or read token.
func (c *Client) WebToken(ctx context.Context, req WebTokenRequest) (*WebToken, error) {
	var out WebToken
	return &out, c.do(ctx, RouteWebToken, nil, req, &out)
}

// Events calls fn with every event of the daemon's stream until ctx ends (nil), fn fails
// (its error) or the stream ends (an error).
func (c *Client) Events(ctx context.Context, fn func(Event) error) error {
	return c.stream(ctx, RouteEvents, nil, func(data []byte) error {
		var ev Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("daemon: bad event: %w", err)
		}
		return fn(ev)
	})
}

// LogStream calls fn with every line appended to target's logs (after the last lines of
// each, when lines > 0), as Events does.
func (c *Client) LogStream(ctx context.Context, target string, lines int, fn func(LogLine) error) error {
	q := url.Values{"target": {target}, "lines": {strconv.Itoa(lines)}}
	return c.stream(ctx, RouteLogStream, q, func(data []byte) error {
		var l LogLine
		if err := json.Unmarshal(data, &l); err != nil {
			return fmt.Errorf("daemon: bad log line: %w", err)
		}
		return fn(l)
	})
}

// stream reads a Server-Sent Events answer of route and hands each message's data to fn.
func (c *Client) stream(ctx context.Context, route Route, query url.Values, fn func(data []byte) error) error {
	path := route.Path
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, route.Method, "http://pmdaemon"+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("daemon: %w", err)
	}
	defer resp.Body.Close()
	c.noteVersion(resp.Header.Get(VersionHeader))
	if resp.StatusCode/100 != 2 {
		b, _ := readLimited(resp)
		return remoteError(resp, b)
	}
	err = ReadSSE(resp.Body, fn)
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		return fmt.Errorf("daemon: the stream ended (the daemon stopped?)")
	}
	return err
}

func readLimited(resp *http.Response) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(http.MaxBytesReader(nil, resp.Body, 1<<20))
	return b.Bytes(), err
}

// ReadSSE reads Server-Sent Events from r and calls fn with the data of each message (data
// lines joined by newlines), until r ends (nil) or fn fails. Comments and other fields are
// skipped.
func ReadSSE(r interface{ Read([]byte) (int, error) }, fn func(data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var data []byte
	have := false
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if have {
				if err := fn(data); err != nil {
					return err
				}
			}
			data, have = data[:0], false
		case bytes.HasPrefix(line, []byte("data:")):
			if have {
				data = append(data, '\n')
			}
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
			have = true
		}
	}
	return sc.Err()
}
