package daemon

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// The ring keeps the last eventRing events: a reader behind by more learns how many it lost
// and goes on with the oldest kept; a reader at the end gets a channel the next event closes.
func TestEventHubRing(t *testing.T) {
	var h eventHub
	tests := []struct {
		published, from uint64
		wantLost        uint64
		wantFirst       uint64
	}{
		{published: 10, from: 0, wantLost: 0, wantFirst: 1},
		{published: 10, from: 4, wantLost: 0, wantFirst: 5},
		{published: eventRing, from: 0, wantLost: 0, wantFirst: 1},
		{published: eventRing + 500, from: 0, wantLost: 500, wantFirst: 501},
		{published: eventRing + 500, from: 499, wantLost: 1, wantFirst: 501},
		{published: eventRing + 500, from: 500, wantLost: 0, wantFirst: 501},
	}
	for _, tt := range tests {
		h = eventHub{}
		for i := uint64(0); i < tt.published; i++ {
			h.publish(api.Event{Kind: "started"})
		}
		evs, lost, _ := h.since(tt.from, 64)
		if lost != tt.wantLost || len(evs) == 0 || evs[0].Seq != tt.wantFirst {
			t.Errorf("%d published, from %d: lost %d, first %v; want lost %d, first %d", tt.published, tt.from, lost, evs[:min(1, len(evs))], tt.wantLost, tt.wantFirst)
		}
	}
	evs, lost, wake := h.since(h.latest(), 64)
	if len(evs) != 0 || lost != 0 || wake == nil {
		t.Fatalf("at the end: %d events, %d lost, wake %v", len(evs), lost, wake)
	}
	select {
	case <-wake:
		t.Fatal("woken before any event")
	default:
	}
	h.publish(api.Event{Kind: "stopped"})
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("the next event did not wake the reader")
	}
}

// gatedWriter is a client that reads nothing until its gate opens (a real ResponseWriter of
// httptest behind a gate).
type gatedWriter struct {
	*httptest.ResponseRecorder
	mu   sync.Mutex
	gate chan struct{}
	got  bytes.Buffer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.got.Write(p)
}

func (g *gatedWriter) text() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.got.String()
}

// A stream whose client stops reading holds up nobody: events are published at full speed
// meanwhile, and once the client reads again it is told how many it lost, then gets the rest.
func TestEventStreamSlowClient(t *testing.T) {
	s := newAPIServer(&Daemon{}, &control{})
	w := &gatedWriter{ResponseRecorder: httptest.NewRecorder(), gate: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := httptest.NewRequest("GET", "/v1/events", nil).WithContext(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.streamEvents(w, r)
	}()
	deadline := time.Now().Add(10 * time.Second)
	pollFor(t, "the stream to open", time.Until(deadline), func() bool { return s.d.events.streams.Load() == 1 })
	for i := 0; i < 3*eventRing; i++ {
		s.d.events.publish(api.Event{Kind: "started", App: "web"})
	}
	close(w.gate)
	pollFor(t, "the last event (id 3072)", time.Until(deadline), func() bool { return strings.Contains(w.text(), "id: 3072\n") })
	cancel()
	<-done
	out := w.text()
	if !strings.Contains(out, "event: dropped\n") || !strings.Contains(out, `"dropped":`) {
		t.Errorf("no dropped event in:\n%.2000s", out)
	}
	if s.d.events.dropped.Load() == 0 || s.d.events.streams.Load() != 0 {
		t.Errorf("dropped %d, streams open %d", s.d.events.dropped.Load(), s.d.events.streams.Load())
	}
}

// collectEvents streams the daemon's events into a channel until the test ends; it returns
// once the daemon counts the stream open, so no later event is missed.
func collectEvents(t *testing.T, f *webFixture) <-chan api.Event {
	t.Helper()
	ch := make(chan api.Event, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	before := f.d.events.streams.Load()
	go func() {
		defer close(done)
		f.c.Events(ctx, func(ev api.Event) error {
			ch <- ev
			return nil
		})
	}()
	pollFor(t, "the event stream to open", 10*time.Second, func() bool { return f.d.events.streams.Load() != before })
	return ch
}

// waitEvent reads events until one matches.
func waitEvent(t *testing.T, ch <-chan api.Event, what string, match func(api.Event) bool) api.Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-ch:
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within 30s", what)
		}
	}
}

// A crash shows on the stream as the hooks see it (started, crashed), with the restart and its
// cause between, then the new process; a delete says which instances went.
func TestEventsOfACrash(t *testing.T) {
	f := newWebFixture(t)
	ch := collectEvents(t, f)
	mustStart(t, f.d, sleeper(t, "ev", 1, ""))
	first := waitEvent(t, ch, "started", func(ev api.Event) bool { return ev.Kind == "started" && ev.App == "ev" })
	if first.Pid <= 0 || first.Instance != 0 || first.Status != "online" || first.Seq == 0 {
		t.Fatalf("started: %+v", first)
	}
	syscall.Kill(first.Pid, syscall.SIGKILL)
	crashed := waitEvent(t, ch, "crashed", func(ev api.Event) bool { return ev.App == "ev" && ev.Kind != "started" })
	if crashed.Kind != "crashed" || crashed.Pid != first.Pid || crashed.ID != first.ID {
		t.Errorf("after SIGKILL: %+v, want crashed of pid %d", crashed, first.Pid)
	}
	restarting := waitEvent(t, ch, "restarting", func(ev api.Event) bool { return ev.Kind == "restarting" })
	if restarting.Cause != causeCrash || restarting.Restarts != 1 {
		t.Errorf("restarting: %+v, want cause crash, restarts 1", restarting)
	}
	again := waitEvent(t, ch, "started again", func(ev api.Event) bool { return ev.Kind == "started" })
	if again.Pid == first.Pid || again.Seq <= restarting.Seq {
		t.Errorf("started again: %+v", again)
	}
	if _, err := f.d.Delete(context.Background(), api.TargetRequest{Target: "ev"}); err != nil {
		t.Fatal(err)
	}
	deleted := waitEvent(t, ch, "deleted", func(ev api.Event) bool { return ev.Kind == "deleted" })
	if deleted.App != "ev" || deleted.ID != first.ID {
		t.Errorf("deleted: %+v", deleted)
	}
}

// The log stream sends each line of the target's logs with its app, instance, id and stream;
// its query is checked, naming what is wrong.
func TestLogStream(t *testing.T) {
	f := newWebFixture(t)
	cfg := sleeper(t, "talk", 1, "")
	cfg.Script, cfg.Args = "sh", []string{"-c", "echo hello; echo oops >&2; sleep 0.3; echo later; exec sleep 600"}
	st := mustStart(t, f.d, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := make(chan api.LogLine, 100)
	go f.c.LogStream(ctx, "talk", 10, func(l api.LogLine) error {
		lines <- l
		return nil
	})
	want := map[string]string{"hello": "out", "oops": "err", "later": "out"}
	timeout := time.After(30 * time.Second)
	for len(want) > 0 {
		select {
		case l := <-lines:
			stream, ok := want[l.Line]
			if !ok {
				continue
			}
			if l.Stream != stream || l.App != "talk" || l.Instance != 0 || l.ID != st.IDs[0] || l.Time.IsZero() {
				t.Errorf("line %+v, want stream %s of talk[0] id %d", l, stream, st.IDs[0])
			}
			delete(want, l.Line)
		case <-timeout:
			t.Fatalf("lines not streamed: %v", want)
		}
	}
	for _, tt := range []struct{ query, want string }{
		{"", "needs ?target="},
		{"?target=talk&lines=5000", "from 0 to 1000"},
		{"?target=talk&lines=x", "from 0 to 1000"},
		{"?target=talk&stream=both", "give out or err"},
		{"?target=nothing", "not found"},
	} {
		resp, b := f.do(t, "GET", "/v1/logs/stream"+tt.query, f.read, nil)
		if resp.StatusCode/100 != 4 || !strings.Contains(string(b), tt.want) {
			t.Errorf("%s: %d %s, want a 4xx saying %q", tt.query, resp.StatusCode, b, tt.want)
		}
	}
	if resp, _ := f.do(t, "GET", "/v1/events", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("events without a token: %d", resp.StatusCode)
	}
}

// When the daemon stops serving, its streams end at once (a daemon with `pmdaemon events`
// running does not wait out a shutdown timeout), and the client says the stream ended.
func TestStreamsEndWithTheDaemon(t *testing.T) {
	f := newWebFixture(t)
	ended := make(chan error, 1)
	go func() { ended <- f.c.Events(context.Background(), func(api.Event) error { return nil }) }()
	pollFor(t, "the stream to open", 10*time.Second, func() bool { return f.d.events.streams.Load() == 1 })
	f.s.endStreams()
	select {
	case err := <-ended:
		if err == nil || !strings.Contains(err.Error(), "stream ended") {
			t.Errorf("the client's stream ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream is still open after endStreams")
	}
}
