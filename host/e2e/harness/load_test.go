package harness

import (
	"fmt"
	"net"
	"net/http"
	"testing"
)

// Each kind of failure the socket suite asserts on lands in its own counter, against real
// loopback servers that fail in that one way.
func TestLoadClassifiesEveryOutcome(t *testing.T) {
	serve := func(t *testing.T, h http.HandlerFunc) string {
		ln := Listen(t, "tcp", "127.0.0.1:0")
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return "http://" + ln.Addr().String() + "/"
	}
	tests := []struct {
		name string
		url  func(t *testing.T) string
		want func(LoadStats) int64 // the counter every request must land in
	}{
		{"ok", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"pid":42}`) })
		}, func(s LoadStats) int64 { return s.ByPid[42] }},
		{"refused", func(t *testing.T) string {
			ln := Listen(t, "tcp", "127.0.0.1:0")
			ln.Close() // the port is now closed: connect() is refused
			return "http://" + ln.Addr().String() + "/"
		}, func(s LoadStats) int64 { return s.Refused }},
		{"non-2xx", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "bad gateway", http.StatusBadGateway) })
		}, func(s LoadStats) int64 { return s.Non2xx }},
		{"reset", func(t *testing.T) string {
			// Accepts, then closes without answering: a process killed mid-request.
			ln := Listen(t, "tcp", "127.0.0.1:0")
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.(*net.TCPConn).SetLinger(0)
					c.Close()
				}
			}()
			return "http://" + ln.Addr().String() + "/"
		}, func(s LoadStats) int64 { return s.Reset }},
		{"not the apps' JSON", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") })
		}, func(s LoadStats) int64 { return s.Other }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := StartLoad(t, 2, tc.url(t))
			l.WaitRequests(20)
			s := l.Stop()
			if got := tc.want(s); got == 0 || got != s.Total() {
				t.Errorf("%d of %d requests in the expected counter: %s", got, s.Total(), s)
			}
			if s.Elapsed <= 0 {
				t.Errorf("elapsed %s", s.Elapsed)
			}
		})
	}
}

// wrk prints its error lines only when there were errors; the parser must find them when they
// are there and count zero when they are not.
func TestParseWrk(t *testing.T) {
	clean := `Running 2s test @ http://127.0.0.1:8080/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.32ms    0.97ms  14.62ms   96.74%
  31632 requests in 2.10s, 828.93KB read
Requests/sec:  15482.44
`
	failing := `Running 2s test @ http://127.0.0.1:8080/
  2 threads and 16 connections
  1200 requests in 2.00s, 8.93KB read
  Socket errors: connect 3, read 4, write 0, timeout 2
  Non-2xx or 3xx responses: 17
Requests/sec:  600.00
`
	tests := []struct {
		name              string
		out               string
		requests, non, so int64
		wantErr           bool
	}{
		{"clean", clean, 31632, 0, 0, false},
		{"errors", failing, 1200, 17, 9, false},
		{"no report", "unable to connect to 127.0.0.1:1 Connection refused\n", 0, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseWrk(tc.out, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if r.Requests != tc.requests || r.Non2xx != tc.non || r.SocketErrors != tc.so {
				t.Errorf("got %d requests, %d non-2xx, %d socket errors; want %d, %d, %d",
					r.Requests, r.Non2xx, r.SocketErrors, tc.requests, tc.non, tc.so)
			}
			if r.Failed() != tc.non+tc.so {
				t.Errorf("Failed() %d", r.Failed())
			}
		})
	}
}
