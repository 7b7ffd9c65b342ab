//go:build pprof

package main

import (
	"strings"
	"testing"
)

// TestCheckLoopback: the profiling listener takes loopback addresses only, and says why not.
func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want string // "" when accepted
	}{
		{"127.0.0.1:6060", ""},
		{"localhost:6060", ""},
		{"[::1]:6060", ""},
		{"0.0.0.0:6060", `host "0.0.0.0" is not a loopback address`},
		{":6060", `host "" is not a loopback address`},
		{"10.1.2.3:6060", `host "10.1.2.3" is not a loopback address`},
		{"example.com:6060", `host "example.com" is not a loopback address`},
		{"127.0.0.1", "want HOST:PORT"},
	} {
		err := checkLoopback(tc.addr)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.addr, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v; want one saying %q", tc.addr, err, tc.want)
		}
	}
}
