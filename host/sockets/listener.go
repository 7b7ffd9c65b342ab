// Package sockets holds the listening TCP sockets the daemon owns for apps started with
// --socket (DESIGN §10): it binds them, hands them over systemd-style, takes them back from a
// running instance after a daemon SIGKILL, and tells whether an app is actually accepting on
// them. It is Linux-only, like the daemon.
package sockets

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Listener is a listening TCP socket the daemon holds for an app's port.
type Listener struct {
	// File is the socket. It is close-on-exec in the daemon so that no unrelated child inherits
	// it; exec.Cmd.ExtraFiles dup2s it to fd 3 of the app, which clears that flag there.
	File *os.File
	Port int
	// Bind is the address as the app asked for it: "" is the wildcard (dual-stack [::] when
	// the host has IPv6, else 0.0.0.0), otherwise an IP literal.
	Bind string
	// Inode is the socket's inode: the one name of the socket that is the same in every
	// process holding it, by which Recover and AcceptedBy find it in other fd tables.
	Inode uint64
}

// Listen binds a listening TCP socket on bind:port. Port 0 lets the kernel choose; Port then
// reports the choice.
//
// The socket is blocking because its file description is shared with the app, which expects
// what systemd hands out; SO_REUSEADDR lets it rebind over an earlier owner's TIME_WAIT, as
// every server does; SO_REUSEPORT is deliberately not set, so a second bind of the same port
// fails with EADDRINUSE, which is the daemon's port conflict check.
func Listen(bind string, port int) (*Listener, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("port %d is out of range (0-65535)", port)
	}
	addr, err := parseBind(bind)
	if err != nil {
		return nil, err
	}
	var fd int
	if bind == "" {
		fd, err = listenWildcard(port)
	} else {
		fd, err = listenOn(addr.Unmap(), port, false)
	}
	if err != nil {
		return nil, bindError(err, bind, port)
	}
	l, err := newListener(fd, bind)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", hostPort(bind, port), err)
	}
	return l, nil
}

// parseBind checks a bind address: "" or an IP literal (an IPv6 zone is allowed, for
// link-local addresses).
func parseBind(bind string) (netip.Addr, error) {
	if bind == "" {
		return netip.Addr{}, nil
	}
	addr, err := netip.ParseAddr(bind)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bind address %q is not an IP address (use an IP literal such as 127.0.0.1 or ::1, or leave it empty for every address)", bind)
	}
	return addr, nil
}

// listenWildcard binds [::] accepting IPv4 too, or 0.0.0.0 on a host without IPv6.
func listenWildcard(port int) (int, error) {
	fd, err := listenOn(netip.IPv6Unspecified(), port, true)
	if err == nil || !noIPv6(err) {
		return fd, err
	}
	return listenOn(netip.IPv4Unspecified(), port, false)
}

// noIPv6 tells the errors of a host without IPv6: no AF_INET6 at all, or no address for it.
func noIPv6(err error) bool {
	return errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EADDRNOTAVAIL)
}

// listenOn makes the socket. dualStack clears IPV6_V6ONLY on an IPv6 socket; otherwise an IPv6
// address ("::" included, since the user then named the family) is IPv6 only, whatever the
// host's net.ipv6.bindv6only says.
func listenOn(addr netip.Addr, port int, dualStack bool) (fd int, err error) {
	sa, err := sockaddr(addr, port)
	if err != nil {
		return -1, err
	}
	family := unix.AF_INET
	if addr.Is6() {
		family = unix.AF_INET6
	}
	fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return -1, os.NewSyscallError("setsockopt SO_REUSEADDR", err)
	}
	if family == unix.AF_INET6 {
		v6only := 1
		if dualStack {
			v6only = 0
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			return -1, os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return -1, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, backlogSize()); err != nil {
		return -1, os.NewSyscallError("listen", err)
	}
	return fd, nil
}

// sockaddr turns an address into the kernel's form. An IPv4-mapped IPv6 address binds as the
// IPv4 address it stands for, which is what the user means by it.
func sockaddr(addr netip.Addr, port int) (unix.Sockaddr, error) {
	if addr.Is4() {
		return &unix.SockaddrInet4{Port: port, Addr: addr.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: port, Addr: addr.As16()}
	if zone := addr.Zone(); zone != "" {
		if n, err := strconv.Atoi(zone); err == nil && n > 0 {
			sa.ZoneId = uint32(n)
		} else {
			ifi, err := net.InterfaceByName(zone)
			if err != nil {
				return nil, fmt.Errorf("bind address %q: no network interface %q", addr, zone)
			}
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa, nil
}

// backlogSize is the kernel's cap on a listen backlog: asking for it gives the app the longest
// accept queue the host allows, which is what holds connections while no instance accepts.
func backlogSize() int {
	if n := readSysctlInt("/proc/sys/net/core/somaxconn"); n > 0 {
		return n
	}
	return 4096
}

// readSysctlInt reads a number from a /proc/sys file; -1 when it cannot.
func readSysctlInt(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// bindError turns the errors a user can act on into sentences; the errno stays wrapped so that
// errors.Is(err, syscall.EADDRINUSE) holds for the daemon's conflict message.
func bindError(err error, bind string, port int) error {
	switch {
	case errors.Is(err, unix.EADDRINUSE):
		return fmt.Errorf("port %d is already in use (binding %s): %w", port, hostPort(bind, port), syscall.EADDRINUSE)
	case errors.Is(err, unix.EACCES):
		start := readSysctlInt("/proc/sys/net/ipv4/ip_unprivileged_port_start")
		if start < 0 {
			start = 1024
		}
		return fmt.Errorf("binding port %d needs privileges (ports below %d need root or CAP_NET_BIND_SERVICE): %w", port, start, syscall.EACCES)
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return fmt.Errorf("cannot bind %s: the address %s is not on any interface of this host: %w", hostPort(bind, port), bind, syscall.EADDRNOTAVAIL)
	}
	return fmt.Errorf("cannot listen on %s: %w", hostPort(bind, port), err)
}

// hostPort names what was bound, for messages: "*:3000" for the wildcard.
func hostPort(bind string, port int) string {
	if bind == "" {
		return "*:" + strconv.Itoa(port)
	}
	return net.JoinHostPort(bind, strconv.Itoa(port))
}

// newListener wraps a listening socket fd, owned from then on (closed on error), and reads
// back its port and inode.
func newListener(fd int, bind string) (*Listener, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fstat", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("getsockname", err)
	}
	port := sockaddrPort(sa)
	// The name shows in the daemon's errors about the file.
	f := os.NewFile(uintptr(fd), "tcp-listener "+hostPort(bind, port))
	return &Listener{File: f, Port: port, Bind: bind, Inode: st.Ino}, nil
}

// sockaddrPort is the port of a TCP socket address; 0 for other kinds.
func sockaddrPort(sa unix.Sockaddr) int {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return 0
}

// Close closes the daemon's copy of the socket. The port is released once no instance holds
// it either.
func (l *Listener) Close() error { return l.File.Close() }

// Dup returns another close-on-exec descriptor of the same socket, for a holder whose lifetime
// differs from the Listener's (closing one leaves the other open).
func (l *Listener) Dup() (*os.File, error) {
	var nfd int
	err := control(l.File, func(fd int) (err error) {
		nfd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
	})
	if err != nil {
		return nil, fmt.Errorf("duplicating the listener of port %d: %w", l.Port, err)
	}
	return os.NewFile(uintptr(nfd), l.File.Name()), nil
}

// Backlog is the number of connections in the listener's accept queue: established by the
// kernel, not yet accepted by any process. For a LISTEN socket TCP_INFO reports that queue in
// tcpi_unacked.
func Backlog(l *Listener) (queued int, err error) {
	err = control(l.File, func(fd int) error {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return os.NewSyscallError("getsockopt TCP_INFO", err)
		}
		queued = int(info.Unacked)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reading the accept queue of port %d: %w", l.Port, err)
	}
	return queued, nil
}

// control runs fn with f's descriptor, keeping f alive meanwhile; unlike f.Fd() it leaves the
// descriptor's blocking mode alone.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var fnErr error
	if err := rc.Control(func(fd uintptr) { fnErr = fn(int(fd)) }); err != nil {
		return err
	}
	return fnErr
}
