package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// loadRequestTimeout bounds one request of the load client. It is long on purpose: a connection
// that waits in a held socket's backlog while no instance accepts is slow, not failed.
const loadRequestTimeout = 5 * time.Second

// outcome is how one request of the load client ended.
type outcome int

const (
	outcomeOK      outcome = iota // HTTP 200 with the app's JSON
	outcomeRefused                // the connect got ECONNREFUSED: nothing listened on the port
	outcomeOther                  // any other failure: reset, timeout, bad status or body
)

// classify sorts a request's error into refused or other.
func classify(err error) outcome {
	if err == nil {
		return outcomeOK
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return outcomeRefused
	}
	return outcomeOther
}

// loadCounts are the requests of one load phase by how they ended.
type loadCounts struct {
	OK, Refused, Other int64
	// OtherErrors counts the other failures by message, for the log.
	OtherErrors map[string]int64
}

// loadClient sends GET / to 127.0.0.1 on its ports from a fixed number of workers, each request
// on a new TCP connection, until stopped. Worker i starts on port i mod len(ports) and moves to
// the next port after each request, so the load spreads evenly over the ports.
type loadClient struct {
	ports  []int
	client *http.Client
	stop   chan struct{}
	wg     sync.WaitGroup

	ok, refused, other atomic.Int64
	mu                 sync.Mutex
	otherErrors        map[string]int64
}

// startLoad starts workers workers against ports.
func startLoad(ports []int, workers int) *loadClient {
	l := &loadClient{
		ports: ports,
		client: &http.Client{
			Timeout:   loadRequestTimeout,
			Transport: &http.Transport{DisableKeepAlives: true},
		},
		stop:        make(chan struct{}),
		otherErrors: map[string]int64{},
	}
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go l.work(i)
	}
	return l
}

func (l *loadClient) work(next int) {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		port := l.ports[next%len(l.ports)]
		next++
		err := l.request(port)
		switch classify(err) {
		case outcomeOK:
			l.ok.Add(1)
		case outcomeRefused:
			l.refused.Add(1)
		default:
			l.other.Add(1)
			l.mu.Lock()
			l.otherErrors[errorKind(err)]++
			l.mu.Unlock()
		}
	}
}

// request makes one request and checks that the answer is the app's: status 200 and a JSON
// object with "ok": true.
func (l *loadClient) request(port int) error {
	resp, err := l.client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fmt.Errorf("port %d: reading the body: %w", port, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("port %d: HTTP %d", port, resp.StatusCode)
	}
	var answer struct {
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || !answer.OK {
		return fmt.Errorf("port %d: not the app's answer: %q", port, trunc(string(body)))
	}
	return nil
}

// finish stops the workers, lets the requests in flight end (each within loadRequestTimeout)
// and returns the counts.
func (l *loadClient) finish() loadCounts {
	close(l.stop)
	l.wg.Wait()
	l.client.CloseIdleConnections()
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := make(map[string]int64, len(l.otherErrors))
	for k, v := range l.otherErrors {
		errs[k] = v
	}
	return loadCounts{OK: l.ok.Load(), Refused: l.refused.Load(), Other: l.other.Load(), OtherErrors: errs}
}

// errorKind is err without what differs between requests of the same failure (the client's
// ephemeral port, the URL), so that the log can count them.
func errorKind(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Op + ": " + op.Err.Error()
	}
	var u *url.Error
	if errors.As(err, &u) {
		return u.Err.Error()
	}
	return err.Error()
}

// topErrors lists the n most frequent messages of counts, most frequent first, as "N× message".
func topErrors(counts map[string]int64, n int) []string {
	type entry struct {
		msg string
		n   int64
	}
	var es []entry
	for m, k := range counts {
		es = append(es, entry{m, k})
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].n != es[j].n {
			return es[i].n > es[j].n
		}
		return es[i].msg < es[j].msg
	})
	var out []string
	for i := 0; i < len(es) && i < n; i++ {
		out = append(out, fmt.Sprintf("%d× %s", es[i].n, es[i].msg))
	}
	return out
}
