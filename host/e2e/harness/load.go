package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LoadTimeout bounds one request of a Load. A connection waiting in the backlog of a socket
// whose app is being restarted is answered late, not lost: it must not count as a failure
// while the new instance starts, so this is far longer than a start.
const LoadTimeout = 10 * time.Second

// Load is a steady HTTP load on one or more URLs: every worker loops, each request on a new
// TCP connection (no keep-alive), so every request is a new connect() and a moment when no
// process accepts on the port shows as a refused connection instead of hiding behind an open
// one. It runs until Stop.
type Load struct {
	t      testing.TB
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time

	mu    sync.Mutex
	stats LoadStats
	done  bool
}

// LoadStats counts what a Load saw. Every request lands in exactly one of the counters.
type LoadStats struct {
	OK       int64 // 2xx with a body naming a pid
	Refused  int64 // ECONNREFUSED: nothing accepted on the port
	Reset    int64 // the connection was reset or closed before a whole answer (a process died mid-request)
	Timeouts int64 // no answer within LoadTimeout
	Non2xx   int64 // an answer, but not 2xx (a proxy's 502)
	Other    int64 // anything else (a body that is not the apps' JSON, no local port left, ...)
	// ByPid is how many requests each process answered (the pid of the JSON body).
	ByPid   map[int]int64
	Elapsed time.Duration
	// Samples are the first failures, one line each, for the test log.
	Samples []string
}

// Total is the number of requests made.
func (s LoadStats) Total() int64 {
	return s.OK + s.Refused + s.Reset + s.Timeouts + s.Non2xx + s.Other
}

// Failed is the number of requests that did not get a 2xx answer, refused ones included.
func (s LoadStats) Failed() int64 { return s.Total() - s.OK }

// Since is what happened between prev (an earlier Now of the same load) and s: the counts of
// one phase of a test. Samples are those of s that prev did not have yet.
func (s LoadStats) Since(prev LoadStats) LoadStats {
	d := LoadStats{
		OK: s.OK - prev.OK, Refused: s.Refused - prev.Refused, Reset: s.Reset - prev.Reset,
		Timeouts: s.Timeouts - prev.Timeouts, Non2xx: s.Non2xx - prev.Non2xx, Other: s.Other - prev.Other,
		ByPid: map[int]int64{}, Elapsed: s.Elapsed - prev.Elapsed,
	}
	for p, n := range s.ByPid {
		if n -= prev.ByPid[p]; n > 0 {
			d.ByPid[p] = n
		}
	}
	if len(s.Samples) > len(prev.Samples) {
		d.Samples = slices.Clone(s.Samples[len(prev.Samples):])
	}
	return d
}

// Pids are the processes that answered, in order.
func (s LoadStats) Pids() []int {
	out := make([]int, 0, len(s.ByPid))
	for p := range s.ByPid {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (s LoadStats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests in %s (%.0f/s): ok %d, refused %d, reset %d, timeout %d, non-2xx %d, other %d",
		s.Total(), s.Elapsed.Round(time.Millisecond), float64(s.Total())/max(s.Elapsed.Seconds(), 1e-9),
		s.OK, s.Refused, s.Reset, s.Timeouts, s.Non2xx, s.Other)
	if len(s.ByPid) > 0 {
		b.WriteString("; answered by pid:")
		for _, p := range s.Pids() {
			fmt.Fprintf(&b, " %d=%d", p, s.ByPid[p])
		}
	}
	for i, f := range s.Samples {
		if i == 8 {
			fmt.Fprintf(&b, "\n  ... (%d more sampled)", len(s.Samples)-i)
			break
		}
		b.WriteString("\n  " + f)
	}
	return b.String()
}

// loadSamples bounds the failures kept as text: enough that each phase of a test still has
// some of its own after the earlier phases took theirs.
const loadSamples = 256

// StartLoad starts workers goroutines sending GET requests to urls (worker i starts on
// urls[i%len(urls)] and moves to the next URL after each request, so every URL gets its share).
// The load is stopped at cleanup if the test did not stop it.
func StartLoad(t testing.TB, workers int, urls ...string) *Load {
	t.Helper()
	if workers < 1 || len(urls) == 0 {
		t.Fatalf("StartLoad: %d workers on %d URLs", workers, len(urls))
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{t: t, cancel: cancel, start: time.Now(), stats: LoadStats{ByPid: map[int]int64{}}}
	// One transport for all workers: without keep-alive it pools nothing, and each request
	// dials its own connection.
	client := &http.Client{Timeout: LoadTimeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: LoadTimeout}).DialContext,
	}}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				pid, err := getPid(ctx, client, urls[i%len(urls)])
				if ctx.Err() != nil && err != nil {
					return // cut short by Stop: not the app's failure
				}
				l.record(pid, err)
			}
		}()
	}
	t.Cleanup(func() { l.Stop() })
	return l
}

// Stop ends the load, waits for the requests in flight and returns the counts.
func (l *Load) Stop() LoadStats {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.done = true
		l.stats.Elapsed = time.Since(l.start)
	}
	return l.snapshotLocked()
}

// Now returns the counts so far, while the load goes on.
func (l *Load) Now() LoadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.snapshotLocked()
	if !l.done {
		s.Elapsed = time.Since(l.start)
	}
	return s
}

// WaitRequests polls until the load has made n more requests than when it was called: a
// phase of a test then surely ran under load, however slow the machine.
func (l *Load) WaitRequests(n int64) {
	l.t.Helper()
	from := l.Now().Total()
	Eventually(l.t, 60*time.Second, fmt.Sprintf("%d more requests of the load", n), func() bool {
		return l.Now().Total() >= from+n
	})
}

func (l *Load) snapshotLocked() LoadStats {
	s := l.stats
	s.ByPid = make(map[int]int64, len(l.stats.ByPid))
	for p, n := range l.stats.ByPid {
		s.ByPid[p] = n
	}
	s.Samples = slices.Clone(l.stats.Samples)
	return s
}

// errNon2xx and errBody mark an answer that came but was wrong.
var errNon2xx, errBody = errors.New("non-2xx answer"), errors.New("unexpected body")

func (l *Load) record(pid int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.stats
	switch {
	case err == nil:
		s.OK++
		s.ByPid[pid]++
		return
	case errors.Is(err, syscall.ECONNREFUSED):
		s.Refused++
	case errors.Is(err, errNon2xx):
		s.Non2xx++
	case errors.Is(err, errBody):
		s.Other++
	case isTimeout(err):
		s.Timeouts++
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		// net/http's name for a connection closed before any byte of the answer; the error
		// value is not exported.
		strings.Contains(err.Error(), "server closed idle connection"):
		s.Reset++
	default:
		s.Other++
	}
	if len(s.Samples) < loadSamples {
		s.Samples = append(s.Samples, fmt.Sprintf("+%s %v", time.Since(l.start).Round(time.Millisecond), err))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// getPid makes one request and returns the pid the JSON body names.
func getPid(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("%w: %s: %.80q", errNon2xx, resp.Status, body)
	}
	var who struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal(body, &who); err != nil || who.Pid <= 0 {
		return 0, fmt.Errorf("%w: %.80q", errBody, body)
	}
	return who.Pid, nil
}

// WrkResult is what wrk (the load generator) reported.
type WrkResult struct {
	Requests int64
	// Non2xx is wrk's "Non-2xx or 3xx responses"; SocketErrors the sum of its "Socket errors"
	// (connect, read, write, timeout).
	Non2xx, SocketErrors int64
	Output               string
}

// Failed is the number of requests that failed either way.
func (r WrkResult) Failed() int64 { return r.Non2xx + r.SocketErrors }

// StartWrk runs `wrk -t2 -c16 [args...] url` in the background until stop, which interrupts
// it (wrk then prints its report, as at the end of its run) and returns the parsed report. It
// fails the test when wrk is missing (test.sh installs it: apt-get install wrk).
func StartWrk(t testing.TB, url string, args ...string) (stop func() WrkResult) {
	t.Helper()
	bin, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatalf("this test needs wrk (test.sh installs it: apt-get install -y wrk): %v", err)
	}
	// The duration only bounds a run whose stop is never called.
	args = append([]string{"-t2", "-c16", "-d10m", "--timeout", "10s"}, args...)
	cmd := exec.Command(bin, append(args, url)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting wrk: %v", err)
	}
	var once sync.Once
	var res WrkResult
	stop = func() WrkResult {
		t.Helper()
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGINT)
			err := cmd.Wait()
			res, err = parseWrk(out.String(), err)
			if err != nil {
				t.Fatalf("wrk: %v\n%s", err, out.String())
			}
		})
		return res
	}
	t.Cleanup(func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	})
	return stop
}

var (
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads wrk's report. wrk prints "Non-2xx or 3xx responses" and "Socket errors" only
// when there were some; "N requests in" it always prints.
func parseWrk(out string, runErr error) (WrkResult, error) {
	r := WrkResult{Output: out}
	if runErr != nil {
		return r, runErr
	}
	m := wrkRequests.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New(`no "requests in" line in its report`)
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		for _, f := range m[1:] {
			n, _ := strconv.ParseInt(f, 10, 64)
			r.SocketErrors += n
		}
	}
	return r, nil
}
