package sockets

import (
	"os"
	"testing"
)

// WaitsOn sees a process that waits for connections on the socket, through an event loop or
// blocked in accept, and not one that merely holds it open (an app that ignores LISTEN_FDS) or
// that never had it.
func TestWaitsOn(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		waits bool
	}{
		{"serve", true},  // Go's net/http: the socket in an epoll set
		{"accept", true}, // a thread in accept(2)
		{"hold", false},  // fd 3 open, nothing waits on it
	} {
		t.Run(tc.mode, func(t *testing.T) {
			l := listen(t, "127.0.0.1", 0)
			app := startChild(t, tc.mode, l.File)
			if tc.waits {
				eventually(t, "the app waits on the socket", func() bool { return WaitsOn(l, []int{app.pid()}) })
			} else if WaitsOn(l, []int{app.pid()}) {
				t.Fatalf("WaitsOn(the %s child) = true; it does not wait on the socket", tc.mode)
			}
			other := listen(t, "127.0.0.1", 0)
			for _, pids := range [][]int{{os.Getpid()}, nil, {deadPid(t)}} {
				if WaitsOn(l, pids) {
					t.Fatalf("WaitsOn(pids %v) = true; only pid %d has the socket", pids, app.pid())
				}
			}
			if WaitsOn(other, []int{app.pid()}) {
				t.Fatalf("WaitsOn(another socket, the %s child) = true", tc.mode)
			}
		})
	}
}
