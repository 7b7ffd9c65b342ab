//go:build pprof

// Profiling hook, compiled only with `-tags pprof` so the normal binary neither links
// net/http/pprof nor pays for its init. With PMDAEMON_PPROF=127.0.0.1:PORT in the
// environment, the daemon (pmdaemond, not a log writer) serves /debug/pprof/ on that loopback address (see
// docs/performance.md for how the profiles there were taken).
package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
)

func init() {
	addr := os.Getenv("PMDAEMON_PPROF")
	if addr == "" || len(os.Args) > 1 && os.Args[1] != "daemon" {
		return
	}
	if err := checkLoopback(addr); err != nil {
		fmt.Fprintf(os.Stderr, "PMDAEMON_PPROF=%q: %v; profiling is off\n", addr, err)
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "PMDAEMON_PPROF=%q: %v; profiling is off\n", addr, err)
		return
	}
	go http.Serve(ln, nil)
}

// checkLoopback refuses any address another machine could reach: profiles show memory.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT: %w", err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("host %q is not a loopback address", host)
	}
	return nil
}
