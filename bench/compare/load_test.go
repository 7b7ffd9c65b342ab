package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	dialErr := func(errno syscall.Errno) error {
		return &url.Error{Op: "Get", URL: "http://127.0.0.1:1/", Err: &net.OpError{Op: "dial", Net: "tcp",
			Err: os.NewSyscallError("connect", errno)}}
	}
	cases := []struct {
		name string
		err  error
		want outcome
	}{
		{"no error", nil, outcomeOK},
		{"refused", dialErr(syscall.ECONNREFUSED), outcomeRefused},
		{"reset", dialErr(syscall.ECONNRESET), outcomeOther},
		{"bad status", errors.New("port 1: HTTP 502"), outcomeOther},
		{"timeout", &url.Error{Op: "Get", URL: "http://x/", Err: errors.New("context deadline exceeded")}, outcomeOther},
	}
	for _, c := range cases {
		if got := classify(c.err); got != c.want {
			t.Errorf("%s: classify = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestErrorKindDropsAddresses(t *testing.T) {
	err := &url.Error{Op: "Get", URL: "http://127.0.0.1:29200/", Err: &net.OpError{Op: "read", Net: "tcp",
		Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 51234}, Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 29200},
		Err: os.NewSyscallError("read", syscall.ECONNRESET)}}
	if got, want := errorKind(err), "read: read: connection reset by peer"; got != want {
		t.Errorf("errorKind = %q, want %q", got, want)
	}
	if got := errorKind(errors.New("port 1: HTTP 500")); got != "port 1: HTTP 500" {
		t.Errorf("errorKind of a plain error = %q", got)
	}
	got := topErrors(map[string]int64{"b": 2, "a": 2, "c": 9, "d": 1}, 3)
	if want := []string{"9× c", "2× a", "2× b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("topErrors = %q, want %q", got, want)
	}
}

// serve answers on a loopback port with handler until the test ends, and returns the port.
func serve(t *testing.T, handler http.HandlerFunc) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return l.Addr().(*net.TCPAddr).Port
}

// closedPort is a loopback port that nothing listens on: bound by the kernel's choice, then
// released.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// hangUp accepts connections on a loopback port and closes them at once, without an answer.
func hangUp(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().(*net.TCPAddr).Port
}

func TestLoadClientCounts(t *testing.T) {
	app := func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"ok":true,"pid":1}`) }
	cases := []struct {
		name string
		port func(t *testing.T) int
		// want says which counts must be positive; the others must be 0.
		ok, refused, other bool
		otherSays          string
	}{
		{name: "the app", port: func(t *testing.T) int { return serve(t, app) }, ok: true},
		{name: "nothing listens", port: closedPort, refused: true},
		{name: "HTTP 502", port: func(t *testing.T) int {
			return serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
		}, other: true, otherSays: "HTTP 502"},
		{name: "not the app's answer", port: func(t *testing.T) int {
			return serve(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"ok":false}`) })
		}, other: true, otherSays: "not the app's answer"},
		{name: "hang-up", port: hangUp, other: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := runLoad(t, []int{c.port(t)}, 2, 20)
			if (got.OK > 0) != c.ok || (got.Refused > 0) != c.refused || (got.Other > 0) != c.other {
				t.Fatalf("counts %+v", got)
			}
			if c.otherSays != "" {
				for msg := range got.OtherErrors {
					if !strings.Contains(msg, c.otherSays) {
						t.Errorf("other failure %q does not say %q", msg, c.otherSays)
					}
				}
			}
		})
	}
}

func TestLoadClientSpreadsOverPorts(t *testing.T) {
	up := serve(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"ok":true}`) })
	const workers = 3
	got := runLoad(t, []int{up, closedPort(t)}, workers, 60)
	// Each worker alternates between the two ports, so they differ by at most one per worker.
	if got.OK == 0 || got.Refused == 0 || got.Other != 0 || abs(got.OK-got.Refused) > workers {
		t.Errorf("counts %+v: not spread evenly over the two ports", got)
	}
}

// runLoad puts workers on ports until at least n requests have ended (for at most 10 s) and
// returns the counts.
func runLoad(t *testing.T, ports []int, workers int, n int64) loadCounts {
	t.Helper()
	l := startLoad(ports, workers)
	deadline := time.Now().Add(10 * time.Second)
	for l.ok.Load()+l.refused.Load()+l.other.Load() < n {
		if time.Now().After(deadline) {
			got := l.finish()
			t.Fatalf("fewer than %d requests in 10s: %+v", n, got)
		}
		time.Sleep(time.Millisecond)
	}
	return l.finish()
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
