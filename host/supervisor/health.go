package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// HealthSpec is an instance's health check, resolved for the instance (its port in the URL).
type HealthSpec struct {
	URL      string   // HTTP GET; 2xx is healthy
	Argv     []string // or a command; exit 0 is healthy
	Interval time.Duration
	Timeout  time.Duration
	Retries  int  // consecutive failures that make the instance unhealthy
	Restart  bool // restart an unhealthy instance
	// Grace is how long after a start failures do not count until the first success: an app
	// that takes a while to listen is "checking", not unhealthy.
	Grace time.Duration
}

// Health values of State.Health.
const (
	HealthChecking  = "checking"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// checkFast is the pace of checks until the first success, so readiness is seen at once. It
// is also the floor on the interval: no setting runs checks (processes, connections) in a busy
// loop.
const checkFast = 100 * time.Millisecond

// maxCheckOutput is how much of a script check's output is kept for the error message; the
// rest is read and discarded as it comes, so a check that prints without end costs no memory.
// maxCheckBody is how much of an HTTP check's answer is read before the connection is closed.
const (
	maxCheckOutput = 4 << 10
	maxCheckBody   = 4 << 10
)

type healthResult struct {
	ok   bool
	msg  string
	took time.Duration
}

// checker probes one process on its own goroutine and hands results to the instance's loop,
// so that a slow check never delays handling an exit or a stop.
type checker struct {
	results chan healthResult
	stop    chan struct{}
	cancel  context.CancelFunc // ends a probe in flight, so close never waits out a timeout
	done    chan struct{}
}

func (l *Loop) startChecker() *checker {
	h := l.spec.Health
	if h == nil {
		return nil
	}
	// A stop ends a check in flight, or its wait for a slot, at once, before the loop has
	// come to close the checker.
	ctx, cancel := context.WithCancel(l.stopCtx)
	c := &checker{results: make(chan healthResult), stop: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	started := time.Now()
	go func() {
		defer close(c.done)
		delay, healthy := checkFast, false
		t := time.NewTimer(delay)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
			}
			r := l.probe(ctx, h)
			if ctx.Err() != nil {
				return // stopped: the result says so, not how the process is
			}
			select {
			case c.results <- r:
			case <-c.stop:
				return
			}
			healthy = healthy || r.ok
			// Fast until the first success, but only through the grace period: an instance
			// that never passes is checked at the interval after that.
			delay = max(h.Interval, checkFast)
			if !healthy && time.Since(started) < h.Grace {
				delay = checkFast
			}
			t.Reset(delay)
		}
	}()
	return c
}

// results is nil (never ready) without a checker.
func (c *checker) resultsCh() <-chan healthResult {
	if c == nil {
		return nil
	}
	return c.results
}

func (c *checker) close() {
	if c != nil {
		close(c.stop)
		c.cancel()
		<-c.done
	}
}

// healthClient never follows a redirect: a check probes the instance itself, and a 3xx
// would send the daemon (often root) to whatever host the app names. The 3xx is the answer,
// and it is not healthy.
var healthClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// probe runs one check. The wait for a slot of the check gate is not the check's time: its
// timeout starts, and the time it took (took) is measured from, when it may run.
func (l *Loop) probe(parent context.Context, h *HealthSpec) (r healthResult) {
	leave, err := enterCtx(parent, checkGate)
	if err != nil {
		return healthResult{msg: "the check was stopped"}
	}
	defer leave()
	began := time.Now()
	defer func() { r.took = time.Since(began) }() // runs before leave
	ctx, cancel := context.WithTimeout(parent, h.Timeout)
	defer cancel()
	if h.URL != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
		if err != nil {
			return healthResult{msg: err.Error()}
		}
		resp, err := healthClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return healthResult{msg: fmt.Sprintf("GET %s: no answer within %s", h.URL, h.Timeout)}
			}
			return healthResult{msg: fmt.Sprintf("GET %s: %v", h.URL, unwrapURLError(err))}
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxCheckBody))
		resp.Body.Close()
		if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
			to := resp.Header.Get("Location")
			if len(to) > 200 {
				to = to[:200] + "..."
			}
			if to == "" {
				to = "(no Location)"
			}
			return healthResult{msg: fmt.Sprintf("GET %s: HTTP %d, redirected to %s; a health check does not follow redirects", h.URL, resp.StatusCode, to)}
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return healthResult{msg: fmt.Sprintf("GET %s: HTTP %d", h.URL, resp.StatusCode)}
		}
		return healthResult{ok: true}
	}
	cmd := exec.CommandContext(ctx, h.Argv[0], h.Argv[1:]...)
	cmd.Dir = l.spec.Dir
	cmd.Env = l.spec.Env
	out := &headWriter{max: maxCheckOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// On timeout the check's whole group goes, so a hung check leaves nothing behind.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if err == nil {
		return healthResult{ok: true}
	}
	first, _, _ := strings.Cut(strings.TrimSpace(out.String()), "\n")
	if len(first) > 200 {
		first = first[:200]
	}
	if ctx.Err() != nil {
		return healthResult{msg: fmt.Sprintf("check %q did not finish within %s", strings.Join(h.Argv, " "), h.Timeout)}
	}
	if first != "" {
		return healthResult{msg: fmt.Sprintf("check %q: %v: %s", strings.Join(h.Argv, " "), err, first)}
	}
	return healthResult{msg: fmt.Sprintf("check %q: %v", strings.Join(h.Argv, " "), err)}
}

// headWriter keeps the first max bytes written to it and discards the rest, always reporting
// success so that the process writing is never stopped by a short write.
type headWriter struct {
	buf bytes.Buffer
	max int
}

func (w *headWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (w *headWriter) String() string { return w.buf.String() }

func unwrapURLError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}
