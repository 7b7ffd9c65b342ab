package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Why the timed starts follow /v1/events rather than poll /v1/list: a list makes the daemon
// measure every running instance (at most once a second), so a poller beside 4000 running apps
// costs the daemon 4500 measurements a second that it does not pay beside none: the observer,
// not the starting, grew with what runs. The event stream costs the daemon nothing per
// instance. A "started" event is sent exactly when an instance turns online with a pid (what
// waitOnline counts); the list is still read once, after the timing, to check.

// startWatch counts the apps that have sent a "started" event since it began.
type startWatch struct {
	mu      sync.Mutex
	started map[string]bool
	changed chan struct{} // gets a value on each new app
	err     error         // why the stream ended, once it has
	cancel  context.CancelFunc
}

// watchStarts opens the event stream; it is following once it returns.
func (d *daemon) watchStarts(ctx context.Context) (*startWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	client := d.apiClient()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://pmdaemon/v1/events", nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET /v1/events: %s", resp.Status)
	}
	w := &startWatch{started: map[string]bool{}, changed: make(chan struct{}, 1), cancel: cancel}
	go w.read(resp)
	return w, nil
}

func (w *startWatch) read(resp *http.Response) {
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var err error
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct{ Kind, App string }
		if err = json.Unmarshal([]byte(data), &ev); err != nil {
			break
		}
		if ev.Kind == "dropped" {
			err = fmt.Errorf("the event stream dropped events (the bench read too slowly)")
			break
		}
		if ev.Kind == "started" {
			w.mu.Lock()
			w.started[ev.App] = true
			w.mu.Unlock()
			w.signal()
		}
	}
	if err == nil {
		err = sc.Err()
	}
	if err == nil {
		err = fmt.Errorf("the event stream ended")
	}
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	w.signal()
}

func (w *startWatch) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// wait returns once every app of names has started, or fails at timeout or when the stream
// ends.
func (w *startWatch) wait(ctx context.Context, names []string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		missing := 0
		for _, n := range names {
			if !w.started[n] {
				missing++
			}
		}
		err := w.err
		w.mu.Unlock()
		switch {
		case missing == 0:
			return nil
		case err != nil:
			return fmt.Errorf("%d of %d apps not started: %w", missing, len(names), err)
		}
		select {
		case <-w.changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("%d of %d apps not started after %s", missing, len(names), timeout)
		}
	}
}

func (w *startWatch) close() { w.cancel() }
