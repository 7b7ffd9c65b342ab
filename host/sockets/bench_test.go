package sockets

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// The cost of one readiness probe of a serving instance: connect, find the server side in
// /proc/net/tcp6, look in the instance's fd table.
func BenchmarkAcceptedBy(b *testing.B) {
	for _, tc := range probeCases([]string{""}) {
		b.Run(tc.name, func(b *testing.B) {
			l := listen(b, tc.bind, 0)
			app := startChild(b, "serve", l.File)
			for b.Loop() {
				ok, err := acceptedBy(l, []int{app.pid()}, 5*time.Second, tc.tryDiag)
				if !ok || err != nil {
					b.Fatalf("AcceptedBy = %v, %v", ok, err)
				}
			}
		})
	}
}

// One lookup of a connection's server side with other connections open on the host. Reading
// /proc/net/tcp costs in proportion to the host's sockets (TIME_WAIT ones included), which is
// why AcceptedBy asks sock_diag first and parses only the lines of the listener's port.
func BenchmarkServerSideLookup(b *testing.B) {
	for _, conns := range []int{0, 1000} {
		other := listen(b, "127.0.0.1", 0)
		openConnections(b, other, conns)
		l := listen(b, "127.0.0.1", 0)
		local := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(l.Port))
		absent := netip.MustParseAddrPort("127.0.0.1:1")
		b.Run(fmt.Sprintf("/proc/net, %d other connections", conns), func(b *testing.B) {
			table := &procNetReader{path: "/proc/net/tcp"}
			for b.Loop() {
				if _, found, err := table.find(l.Port, absent); found || err != nil {
					b.Fatalf("find = %v, %v", found, err)
				}
			}
		})
		b.Run(fmt.Sprintf("sock_diag, %d other connections", conns), func(b *testing.B) {
			d, err := openDiagTable()
			if err != nil {
				b.Fatal(err)
			}
			defer d.close()
			for b.Loop() {
				if _, err := d.lookup(local, absent); err != errDiagNotFound {
					b.Fatalf("lookup = %v", err)
				}
			}
		})
	}
}

// openConnections opens n loopback connections to l, accepted, until the benchmark ends.
func openConnections(b *testing.B, l *Listener, n int) {
	ln, err := net.FileListener(l.File)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
	}
}
