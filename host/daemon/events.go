package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// The event stream (GET /v1/events, `pmdaemon events`) is what the hooks see, plus the restarts
// with their cause, readiness and health changes, and deletes. Supervision only ever appends
// an event to one ring; each stream reads the ring at its own pace. So publishing costs the
// same with no stream or with thousands, a stream that reads too slowly loses the oldest
// events (and is told how many), and nothing a client does can hold up an instance's loop.

// eventRing is how many of the latest events the daemon keeps: how far behind a stream may
// fall before it loses events.
const eventRing = 1024

// maxStreams bounds the event and log streams open at once: each holds a connection, a
// goroutine and (for logs) open files.
const maxStreams = 4096

// eventHub keeps the latest events, numbered from 1, and wakes the streams at each one. Each
// event is encoded once, as the message every stream sends, so a thousand streams cost a
// thousand writes and not a thousand encodings.
type eventHub struct {
	mu   sync.RWMutex
	ring [eventRing]sseEvent
	last uint64        // Seq of the latest event; 0 before the first
	wake chan struct{} // closed at the next event; made by the first publish

	streams atomic.Int64  // streams open now (events and logs)
	dropped atomic.Uint64 // events and log lines streams lost to slow readers
}

// sseEvent is an event and its message on the wire.
type sseEvent struct {
	api.Event
	wire []byte
}

// publish numbers ev and keeps it; it never waits on a reader (readers hold the lock only to
// copy out of the ring).
func (h *eventHub) publish(ev api.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	h.mu.Lock()
	h.last++
	ev.Seq = h.last
	h.ring[h.last%eventRing] = sseEvent{ev, sseMessage(nil, ev.Kind, ev.Seq, ev)}
	wake := h.wake
	h.wake = make(chan struct{})
	h.mu.Unlock()
	if wake != nil {
		close(wake)
	}
}

// since returns up to max events after seq, how many events after seq are no longer kept,
// and a channel closed at the next event (valid when no event was returned).
func (h *eventHub) since(seq uint64, max int) (evs []sseEvent, lost uint64, wake <-chan struct{}) {
	h.mu.RLock()
	last := h.last
	if seq >= last {
		wake := h.wake
		h.mu.RUnlock()
		if wake == nil { // nothing published yet
			return nil, 0, h.waiter(seq)
		}
		return nil, 0, wake
	}
	if oldest := last - min(last, eventRing) + 1; seq+1 < oldest {
		lost = oldest - (seq + 1)
		seq = oldest - 1
	}
	for s := seq + 1; s <= last && len(evs) < max; s++ {
		evs = append(evs, h.ring[s%eventRing])
	}
	h.mu.RUnlock()
	return evs, lost, nil
}

// waiter returns a channel closed at the next event after seq (at once if there is one).
func (h *eventHub) waiter(seq uint64) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last > seq {
		c := make(chan struct{})
		close(c)
		return c
	}
	if h.wake == nil {
		h.wake = make(chan struct{})
	}
	return h.wake
}

// latest is the Seq of the latest event.
func (h *eventHub) latest() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.last
}

// openStream counts a stream in, or says no when maxStreams are open.
func (h *eventHub) openStream() bool {
	if h.streams.Add(1) > maxStreams {
		h.streams.Add(-1)
		return false
	}
	return true
}

func (h *eventHub) closeStream() { h.streams.Add(-1) }

// observe turns one state change of an instance into the stream's events: the hooks' events
// of it (evs), and a restart with its cause. d.emitMu is held, so events keep the order of
// the changes.
func (d *Daemon) observe(c supervisor.Change, evs []sdk.Event) {
	for _, ev := range evs {
		out := hookEvent(ev)
		out.Status, out.Restarts = string(c.New.Status), c.New.Restarts
		d.events.publish(out)
	}
	if cause := d.stats.change(c); cause != "" {
		d.events.publish(api.Event{
			Kind: "restarting", App: c.Spec.App, Instance: c.Spec.Index, ID: c.ID, Status: string(c.New.Status),
			Restarts: c.New.Restarts, ExitCode: c.New.ExitCode, Reason: c.New.Reason, Cause: cause, Ports: portList(c.Spec.Port),
		})
	}
}

// hookEvent is a hook's event as the stream carries it.
func hookEvent(ev sdk.Event) api.Event {
	return api.Event{
		Kind: string(ev.Kind), App: ev.App, Instance: ev.Instance, ID: ev.ID, Pid: ev.Pid,
		Ports: ev.Ports, AppPorts: ev.AppPorts, ExitCode: ev.ExitCode, Reason: ev.Reason, Time: ev.Time,
	}
}

// publishReady is an instance's READY=1 on NOTIFY_SOCKET.
func (d *Daemon) publishReady(spec supervisor.Spec, id int, st supervisor.State) {
	d.events.publish(api.Event{Kind: "ready", App: spec.App, Instance: spec.Index, ID: id, Pid: st.Pid,
		Status: string(st.Status), Restarts: st.Restarts, Ports: portList(spec.Port)})
}

// publishDeleted is instances of app gone for good (delete). d.mu is held.
func (d *Daemon) publishDeleted(app string, slots []*slot) {
	for _, s := range slots {
		d.events.publish(api.Event{Kind: "deleted", App: app, Instance: s.index, ID: s.id})
	}
}

// streamEvents answers GET /v1/events: every event from now on (or after the Last-Event-ID
// the client saw, while the daemon still keeps it) as Server-Sent Events, until the client
// goes. A client that falls more than eventRing events behind gets a "dropped" event saying
// how many it lost, then the events that follow.
func (s *apiServer) streamEvents(w http.ResponseWriter, r *http.Request) {
	from := s.d.events.latest()
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			reply(w, nil, userErr("Last-Event-ID %q is not an event number", shorten(id, 40)))
			return
		}
		from = min(n, from)
	}
	sse, ok := s.openSSE(w, r)
	if !ok {
		return
	}
	defer sse.close()
	hub := &s.d.events
	for {
		evs, lost, wake := hub.since(from, 64)
		if lost > 0 {
			hub.dropped.Add(lost)
			if !sse.send("dropped", from+lost, api.Event{Kind: "dropped", Dropped: lost, Instance: -1, ID: -1, Time: time.Now()}) {
				return
			}
			from += lost
		}
		for _, ev := range evs {
			if !sse.write(ev.wire) {
				return
			}
			from = ev.Seq
		}
		if len(evs) > 0 || lost > 0 {
			if !sse.flush() {
				return
			}
			continue
		}
		if !sse.wait(wake) {
			return
		}
	}
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// sseKeepAlive is how often an idle stream sends a comment, so that a client or a proxy can
// tell a quiet stream from a dead one, and the daemon finds clients that went away.
var sseKeepAlive = 15 * time.Second

// sseWriteTimeout is how long one write to a stream may wait for its client to read; a client
// that reads nothing for that long is cut off.
var sseWriteTimeout = 10 * time.Second

// sseStream writes Server-Sent Events to one client.
type sseStream struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	r      *http.Request
	hub    *eventHub
	tick   *time.Ticker
	ending <-chan struct{} // closed when the daemon stops serving
	buf    []byte
}

// openSSE starts a Server-Sent Events answer, or answers 503 when too many streams are open.
// The connection's read deadline is lifted (a stream outlives any request timeout); each
// write gets its own deadline instead (sseWriteTimeout).
func (s *apiServer) openSSE(w http.ResponseWriter, r *http.Request) (*sseStream, bool) {
	hub := &s.d.events
	if !hub.openStream() {
		writeAPIErr(w, &api.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf("%d streams are open, the most the daemon serves; close one and try again", maxStreams)})
		return nil, false
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	st := &sseStream{w: w, rc: rc, r: r, hub: hub, tick: time.NewTicker(sseKeepAlive), ending: s.streamsEnding()}
	if !st.flush() {
		st.close()
		return nil, false
	}
	return st, true
}

func (st *sseStream) close() {
	st.tick.Stop()
	st.hub.closeStream()
}

// sseMessage appends to buf one message of kind, numbered id (0: no id line), with v as its
// JSON data.
func sseMessage(buf []byte, kind string, id uint64, v any) []byte {
	if id > 0 {
		buf = append(buf, "id: "...)
		buf = strconv.AppendUint(buf, id, 10)
		buf = append(buf, '\n')
	}
	buf = append(buf, "event: "...)
	buf = append(buf, strings.ReplaceAll(kind, "\n", "")...)
	buf = append(buf, "\ndata: "...)
	b, err := json.Marshal(v) // one line: JSON escapes every newline in a string
	if err != nil {
		b = []byte("null") // the wire types always encode
	}
	buf = append(buf, b...)
	return append(buf, "\n\n"...)
}

// send queues one message of kind, numbered id (0: no id line), with v as its JSON data.
func (st *sseStream) send(kind string, id uint64, v any) bool {
	st.buf = sseMessage(st.buf[:0], kind, id, v)
	return st.write(st.buf)
}

// write queues a message, within sseWriteTimeout.
func (st *sseStream) write(msg []byte) bool {
	st.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	_, err := st.w.Write(msg)
	return err == nil
}

// flush sends what is queued, within sseWriteTimeout.
func (st *sseStream) flush() bool {
	st.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	return st.rc.Flush() == nil
}

// wait blocks until wake is closed (true), the client goes or the daemon stops (false); an
// idle stream sends a keep-alive comment meanwhile.
func (st *sseStream) wait(wake <-chan struct{}) bool {
	for {
		select {
		case <-wake:
			return true
		case <-st.r.Context().Done():
			return false
		case <-st.ending:
			return false
		case <-st.tick.C:
			st.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
			if _, err := st.w.Write([]byte(": keep-alive\n\n")); err != nil || !st.flush() {
				return false
			}
		}
	}
}
