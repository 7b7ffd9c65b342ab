package sockets

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// queuedRequest is an HTTP request sent on a connection that no process has accepted yet.
type queuedRequest struct {
	conn net.Conn
	resp *bufio.Reader
}

// queueRequests connects n clients to the port and sends each one's request; it fails the
// test if any connection is refused.
func queueRequests(t *testing.T, bind string, port, n int) []queuedRequest {
	t.Helper()
	addr, err := parseBind(bind)
	if err != nil {
		t.Fatal(err)
	}
	reqs := make([]queuedRequest, n)
	for i := range reqs {
		conn, err := net.DialTimeout("tcp", probeTarget(addr, true, port), 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d to port %d while no process accepts: %v", i, port, err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := fmt.Fprintf(conn, "GET /%d HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", i); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		reqs[i] = queuedRequest{conn: conn, resp: bufio.NewReader(conn)}
	}
	return reqs
}

// waitBacklog polls until the listener's accept queue holds n connections.
func waitBacklog(t *testing.T, l *Listener, n int) {
	t.Helper()
	var last int
	var lastErr error
	eventually(t, fmt.Sprintf("Backlog reaching %d", n), func() bool {
		last, lastErr = Backlog(l)
		return lastErr == nil && last == n
	})
}

// expectServedBy reads each queued request's response and checks the instance served it.
func expectServedBy(t *testing.T, reqs []queuedRequest, app *child) {
	t.Helper()
	want := "pid " + strconv.Itoa(app.pid())
	for i, r := range reqs {
		r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(r.resp, nil)
		if err != nil {
			t.Fatalf("queued request %d: %v", i, err)
		}
		body := make([]byte, len(want)+8)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body[:n]) != want {
			t.Fatalf("queued request %d: %s %q, want 200 %q", i, resp.Status, body[:n], want)
		}
	}
}

// The headline property of a daemon-held socket: connections that arrive while no instance
// accepts (before the first start, and between a crash and the restart) wait in the backlog,
// counted by Backlog, and are served once an instance accepts. None is refused.
func TestQueuedConnectionsAreServedOnceAnInstanceAccepts(t *testing.T) {
	const n = 5
	for _, bind := range []string{"", "127.0.0.1"} {
		t.Run(fmt.Sprintf("%q", bind), func(t *testing.T) {
			l := listen(t, bind, 0)
			if q, err := Backlog(l); q != 0 || err != nil {
				t.Fatalf("Backlog of a new listener = %d, %v; want 0", q, err)
			}

			before := queueRequests(t, bind, l.Port, n)
			waitBacklog(t, l, n)
			first := startChild(t, "serve", l.File)
			expectServedBy(t, before, first)
			waitBacklog(t, l, 0)

			first.stop() // a crash: the instance is gone, the daemon's socket stays
			between := queueRequests(t, bind, l.Port, n)
			waitBacklog(t, l, n)
			second := startChild(t, "serve", l.File)
			expectServedBy(t, between, second)
		})
	}
}
