package daemon

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/logs"
)

// GET /v1/logs/stream?target=T[&lines=N][&stream=out|err] streams the log lines of the
// instances T names (as they are when the stream opens) as Server-Sent Events, each with its
// app, instance, id, stream and the time the daemon read it. Each file is followed as `logs
// --follow` follows it, across rotations and flushes. Lines wait in a bounded queue per stream:
// a client that reads too slowly loses the oldest and is told how many.

const (
	// maxStreamLines bounds lines=, the last lines of each log sent before the new ones.
	maxStreamLines = 1000
	// logQueueLines is how many lines a stream holds for its client.
	logQueueLines = 1024
	// maxLineBytes cuts a line that never ends: what came so far is sent as a line.
	maxLineBytes = 64 << 10
	// logStreamPoll is how often a stream looks for new lines in its files.
	logStreamPoll = 200 * time.Millisecond
)

// logSource is one log file of one instance.
type logSource struct {
	app          string
	index, id    int
	stream, path string
	tail         []string
	pos          logs.Position
}

// logSources lists the log files of the instances target names.
func (d *Daemon) logSources(target string, out, errs bool) ([]logSource, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ts, err := d.resolve(target)
	if err != nil {
		return nil, err
	}
	var srcs []logSource
	seen := map[string]bool{}
	for _, t := range ts {
		for _, s := range t.slots() {
			add := func(stream, path string) {
				if !seen[path] { // instances of an app may share one file
					seen[path] = true
					srcs = append(srcs, logSource{app: t.app.cfg.Name, index: s.index, id: s.id, stream: stream, path: path})
				}
			}
			if out {
				add("out", d.outLog(t.app, s))
			}
			if errs {
				add("err", d.errLog(t.app, s))
			}
		}
	}
	return srcs, nil
}

// checkLogStream reads the stream's query: target, lines, stream.
func checkLogStream(r *http.Request) (target string, lines int, out, errs bool, err error) {
	q := r.URL.Query()
	target = q.Get("target")
	if target == "" {
		return "", 0, false, false, userErr("logs/stream needs ?target=: an app name, an instance id, or all")
	}
	if l := q.Get("lines"); l != "" {
		n, perr := strconv.Atoi(l)
		if perr != nil || n < 0 || n > maxStreamLines {
			return "", 0, false, false, userErr("lines=%q: give a number of lines from 0 to %d", shorten(l, 20), maxStreamLines)
		}
		lines = n
	}
	switch s := q.Get("stream"); s {
	case "":
		out, errs = true, true
	case "out":
		out = true
	case "err":
		errs = true
	default:
		return "", 0, false, false, userErr("stream=%q: give out or err, or leave it out for both", shorten(s, 20))
	}
	return target, lines, out, errs, nil
}

func (s *apiServer) streamLogs(w http.ResponseWriter, r *http.Request) {
	target, lines, out, errs, err := checkLogStream(r)
	if err != nil {
		reply(w, nil, err)
		return
	}
	srcs, err := s.d.logSources(target, out, errs)
	if err != nil {
		reply(w, nil, err)
		return
	}
	for i := range srcs {
		src := &srcs[i]
		tail, pos, err := logs.Tail(src.path, lines)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			reply(w, nil, err)
			return
		}
		src.tail, src.pos = tail, pos
	}
	sse, ok := s.openSSE(w, r)
	if !ok {
		return
	}
	defer sse.close()
	ctx, cancel := context.WithCancel(r.Context())
	q := &lineQueue{wake: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, src := range srcs {
		now := time.Now()
		for _, l := range src.tail {
			q.push(api.LogLine{App: src.app, Instance: src.index, ID: src.id, Stream: src.stream, Time: now, Line: l})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			logs.FollowFrom(ctx, src.path, src.pos, &lineSink{q: q, src: src}, logStreamPoll)
		}()
	}
	for {
		batch, dropped := q.take()
		if dropped > 0 {
			s.d.events.dropped.Add(dropped)
			if !sse.send("dropped", 0, api.LogLine{Dropped: dropped, Time: time.Now()}) {
				return
			}
		}
		for _, l := range batch {
			if !sse.send("log", 0, l) {
				return
			}
		}
		if len(batch) > 0 || dropped > 0 {
			if !sse.flush() {
				return
			}
			continue
		}
		if !sse.wait(q.wake) {
			return
		}
	}
}

// lineQueue holds the lines read for one stream until its client takes them; past
// logQueueLines the oldest go, counted.
type lineQueue struct {
	mu      sync.Mutex
	lines   []api.LogLine
	dropped uint64
	wake    chan struct{} // one signal pending at most
}

func (q *lineQueue) push(l api.LogLine) {
	q.mu.Lock()
	if len(q.lines) >= logQueueLines {
		q.lines = q.lines[1:]
		q.dropped++
	}
	q.lines = append(q.lines, l)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the lines queued and how many were dropped since the last take.
func (q *lineQueue) take() ([]api.LogLine, uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out, d := q.lines, q.dropped
	q.lines, q.dropped = nil, 0
	return out, d
}

// lineSink is what FollowFrom writes one file's new bytes to: each whole line goes to the
// queue; a line with no end yet waits for it, up to maxLineBytes.
type lineSink struct {
	q       *lineQueue
	src     logSource
	partial []byte
}

func (s *lineSink) Write(p []byte) (int, error) {
	data := append(s.partial, p...)
	now := time.Now()
	for {
		j := bytes.IndexByte(data, '\n')
		if j < 0 && len(data) < maxLineBytes {
			break
		}
		if j < 0 || j > maxLineBytes {
			j = maxLineBytes
		}
		s.q.push(api.LogLine{App: s.src.app, Instance: s.src.index, ID: s.src.id, Stream: s.src.stream, Time: now, Line: string(data[:j])})
		if j < len(data) && data[j] == '\n' {
			j++
		}
		data = data[j:]
	}
	s.partial = append(s.partial[:0:0], data...)
	return len(p), nil
}
