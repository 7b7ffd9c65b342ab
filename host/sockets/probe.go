package sockets

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Answers reports whether a TCP connection to port is accepted by the kernel within timeout:
// the readiness of apps that bind their own port. It connects to the loopback of the bind's
// family for a wildcard ("" tries 127.0.0.1), else to the bound address itself. It says
// nothing about a daemon-held socket, whose handshake the kernel completes whether or not an
// app serves it: use AcceptedBy for those.
func Answers(bind string, port int, timeout time.Duration) bool {
	addr, err := parseBind(bind)
	if err != nil {
		return false
	}
	conn, err := net.DialTimeout("tcp", probeTarget(addr, false, port), timeout)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// probeTarget is where to connect to reach a socket bound to addr:port from this host. A
// wildcard is reached on the loopback: 127.0.0.1 for "", 0.0.0.0, and a dual-stack [::];
// ::1 for an IPv6-only [::].
func probeTarget(addr netip.Addr, dualStack bool, port int) string {
	switch {
	case !addr.IsValid(), addr.Is4() && addr.IsUnspecified(), addr.IsUnspecified() && dualStack:
		addr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case addr.IsUnspecified():
		addr = netip.IPv6Loopback()
	}
	return net.JoinHostPort(addr.String(), strconv.Itoa(port))
}

// AcceptedBy connects to the listener's port and reports whether one of pids (the instance's
// processes) accepted that connection within timeout. For a daemon-held socket the kernel
// always completes the handshake, so only an accept by the app shows that it serves.
//
// It finds the server side of the probe connection (local port the listener's, remote end the
// probe's) with a sock_diag lookup, or in /proc/net/tcp (tcp6) on a kernel without inet_diag.
// That socket has inode 0 while it waits in the accept queue and gets one when a process
// accepts it; then the pids' fd tables tell whether it was one of them. When another process
// took it (an old instance sharing the socket), or nobody did within timeout, accepted is
// false and err nil: the caller probes again later. The probe connection is closed on return
// without sending anything, which an HTTP server sees as a client that went away.
func AcceptedBy(l *Listener, pids []int, timeout time.Duration) (accepted bool, err error) {
	return acceptedBy(l, pids, timeout, true)
}

// acceptedBy is AcceptedBy; tryDiag false reads /proc/net only, to test that path on kernels
// that have inet_diag.
func acceptedBy(l *Listener, pids []int, timeout time.Duration, tryDiag bool) (bool, error) {
	deadline := time.Now().Add(timeout)
	bound, family, dualStack, err := listenerAddr(l)
	if err != nil {
		return false, fmt.Errorf("probing port %d: %w", l.Port, err)
	}
	conn, err := net.DialTimeout("tcp", probeTarget(bound, dualStack, l.Port), timeout)
	if err != nil {
		return false, fmt.Errorf("probing port %d: %w", l.Port, err)
	}
	defer conn.Close()
	server := serverSide{
		local:  conn.RemoteAddr().(*net.TCPAddr).AddrPort(),
		remote: conn.LocalAddr().(*net.TCPAddr).AddrPort(),
		table:  &procNetReader{path: "/proc/net/tcp", buf: make([]byte, 0, 16<<10)},
	}
	if family == unix.AF_INET6 {
		// An IPv4 client of a dual-stack listener is served by an IPv6 socket with
		// IPv4-mapped addresses, listed in tcp6 too.
		server.table.path = "/proc/net/tcp6"
	}
	if tryDiag {
		// Without sock_diag (no netlink here) /proc/net gives the same answer, slower.
		server.diag, _ = openDiagTable()
	}
	defer server.close()
	for wait := 200 * time.Microsecond; ; wait = min(2*wait, 20*time.Millisecond) {
		e, found, err := server.find()
		if err != nil {
			return false, fmt.Errorf("probing port %d: %w", l.Port, err)
		}
		switch {
		case found && e.inode != 0:
			return heldBy(pids, e.inode)
		case found && e.state != tcpEstablished && e.state != tcpSynRecv && e.state != tcpNewSynRecv:
			// Accepted and already closed: some process served it, and which can no longer
			// be told.
			return false, nil
		}
		if time.Now().Add(wait).After(deadline) {
			return false, nil
		}
		time.Sleep(wait)
	}
}

// serverSide finds the listener's end of a probe connection.
type serverSide struct {
	local, remote netip.AddrPort // as the server side sees them
	diag          *diagTable     // nil when sock_diag is not used
	diagFound     bool           // sock_diag has found the socket once
	table         *procNetReader
}

func (s *serverSide) find() (tcpEntry, bool, error) {
	if s.diag != nil {
		e, err := s.diag.lookup(s.local, s.remote)
		switch {
		case err == nil:
			s.diagFound = true
			return e, true, nil
		case errors.Is(err, errDiagNotFound) && s.diagFound:
			return tcpEntry{}, false, nil
		}
		// The server side exists from the client's SYN on, so not finding it at the first
		// lookup means the kernel has no inet_diag for the family; on that or any other
		// netlink failure /proc/net answers instead.
		s.diag.close()
		s.diag = nil
	}
	return s.table.find(int(s.local.Port()), s.remote)
}

func (s *serverSide) close() {
	if s.diag != nil {
		s.diag.close()
	}
}

// heldBy reports whether one of pids has the socket with inode open.
func heldBy(pids []int, inode uint64) (bool, error) {
	for _, pid := range pids {
		fd, err := findSocketFD(pid, inode)
		if err == nil && fd >= 0 {
			return true, nil
		}
		// A process that exited (or whose fd table cannot be read) did not accept it.
	}
	return false, nil
}

// listenerAddr reads the listener's bound address and family, and whether an IPv6 listener
// also takes IPv4.
func listenerAddr(l *Listener) (addr netip.Addr, family int, dualStack bool, err error) {
	err = control(l.File, func(fd int) error {
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return os.NewSyscallError("getsockname", err)
		}
		addr = sockaddrAddr(sa)
		family = unix.AF_INET
		if _, ok := sa.(*unix.SockaddrInet6); ok {
			family = unix.AF_INET6
			v6only, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
			if err != nil {
				return os.NewSyscallError("getsockopt IPV6_V6ONLY", err)
			}
			dualStack = v6only == 0
		}
		return nil
	})
	return addr, family, dualStack, err
}
