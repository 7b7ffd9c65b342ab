package sockets

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// An instance serving HTTP on the handed-over socket is seen to accept the probe; the probe
// is not credited to processes that did not accept it; and the probe's EOF does not stop the
// app from serving the next request.
//
// Each case runs with sock_diag and with /proc/net alone, the fallback of kernels without
// inet_diag.
func TestAcceptedByTellsWhoAccepted(t *testing.T) {
	for _, tc := range probeCases([]string{"", "127.0.0.1", "::1", "0.0.0.0"}) {
		bind, tryDiag := tc.bind, tc.tryDiag
		t.Run(tc.name, func(t *testing.T) {
			needIPv6(t, bind)
			l := listen(t, bind, 0)
			app := startChild(t, "serve", l.File)
			eventually(t, "the app accepts the probe", func() bool {
				ok, err := acceptedBy(l, []int{app.pid()}, time.Second, tryDiag)
				if err != nil {
					t.Fatalf("AcceptedBy: %v", err)
				}
				return ok
			})
			// The app accepts every probe from now on; none is this process's.
			for _, pids := range [][]int{{os.Getpid()}, nil, {deadPid(t)}} {
				ok, err := acceptedBy(l, pids, time.Second, tryDiag)
				if ok || err != nil {
					t.Fatalf("AcceptedBy(pids %v) = %v, %v; want false, nil (pid %d accepted)", pids, ok, err, app.pid())
				}
			}
			if body, want := get(t, bind, l.Port), fmt.Sprintf("pid %d", app.pid()); body != want {
				t.Fatalf("GET after the probes = %q, want %q", body, want)
			}
		})
	}
}

// While no process accepts, the probe waits in the queue: not accepted within the timeout,
// and no error, since the kernel itself completed the handshake.
func TestAcceptedByNobodyAccepting(t *testing.T) {
	for _, tc := range probeCases([]string{"", "127.0.0.1"}) {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, tc.bind, 0)
			start := time.Now()
			ok, err := acceptedBy(l, []int{os.Getpid()}, 200*time.Millisecond, tc.tryDiag)
			if ok || err != nil {
				t.Fatalf("AcceptedBy with nobody accepting = %v, %v; want false, nil", ok, err)
			}
			if waited := time.Since(start); waited < 150*time.Millisecond || waited > 5*time.Second {
				t.Fatalf("AcceptedBy returned after %v; want about the 200ms timeout", waited)
			}
			if n, err := Backlog(l); n != 1 || err != nil {
				t.Fatalf("Backlog = %d, %v; want the one probe queued", n, err)
			}
		})
	}
}

type probeCase struct {
	name    string
	bind    string
	tryDiag bool
}

// probeCases crosses binds with the two ways of finding the probe's server side.
func probeCases(binds []string) []probeCase {
	var cases []probeCase
	for _, tryDiag := range []bool{true, false} {
		how := "sock_diag"
		if !tryDiag {
			how = "/proc/net"
		}
		for _, b := range binds {
			cases = append(cases, probeCase{fmt.Sprintf("%s %q", how, b), b, tryDiag})
		}
	}
	return cases
}

// A probe of a port nobody listens on is an error that names the port.
func TestAcceptedByClosedPort(t *testing.T) {
	l, err := Listen("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	// The closed file cannot be read any more; a listener of another, closed socket can.
	other := listen(t, "127.0.0.1", 0)
	other.Port = l.Port
	ok, err := AcceptedBy(other, nil, time.Second)
	if ok || err == nil {
		t.Fatalf("AcceptedBy on a closed port = %v, %v; want an error", ok, err)
	}
	if want := fmt.Sprintf("probing port %d", l.Port); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

// Answers is the kernel's answer: true for a port with a listener, false for one without.
func TestAnswers(t *testing.T) {
	closed, err := Listen("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Port
	closed.Close()
	tests := []struct {
		name       string
		listenBind string // "-" for no listener
		probeBind  string
		port       int
		want       bool
	}{
		{"IPv4 loopback", "127.0.0.1", "127.0.0.1", 0, true},
		{"IPv6 loopback", "::1", "::1", 0, true},
		{"wildcard, probed as the wildcard", "", "", 0, true},
		{"IPv4 any, probed as IPv4 any", "0.0.0.0", "0.0.0.0", 0, true},
		{"IPv6-only any, probed as IPv6 any", "::", "::", 0, true},
		{"IPv6 loopback, probed on IPv4", "::1", "", 0, false},
		{"a closed port", "-", "", closedPort, false},
		{"a bad bind", "127.0.0.1", "nope", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needIPv6(t, tt.listenBind, tt.probeBind)
			port := tt.port
			if tt.listenBind != "-" {
				port = listen(t, tt.listenBind, 0).Port
			}
			if got := Answers(tt.probeBind, port, 2*time.Second); got != tt.want {
				t.Fatalf("Answers(%q, %d) = %v, want %v", tt.probeBind, port, got, tt.want)
			}
		})
	}
}
