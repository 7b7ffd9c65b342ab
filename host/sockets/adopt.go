package sockets

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// Adopt wraps a socket that came from elsewhere (Recover, or an fd a caller kept) as the
// Listener of bind:port, after checking that it is one: a listening TCP socket bound to that
// port and, for an explicit bind, that address. On success the Listener owns f; on error f is
// left open and stays the caller's.
func Adopt(f *os.File, port int, bind string) (*Listener, error) {
	want, err := parseBind(bind)
	if err != nil {
		return nil, err
	}
	var inode uint64
	err = control(f, func(fd int) error {
		if err := checkListening(fd, port, bind, want); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return os.NewSyscallError("fstat", err)
		}
		inode = st.Ino
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("adopting %s as the listener of %s: %w", f.Name(), hostPort(bind, port), err)
	}
	return &Listener{File: f, Port: port, Bind: bind, Inode: inode}, nil
}

// checkListening tells what, if anything, keeps fd from being the listener of bind:port.
func checkListening(fd, port int, bind string, want netip.Addr) error {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if errors.Is(err, unix.ENOTSOCK) {
		return fmt.Errorf("it is not a socket")
	}
	if err != nil {
		return os.NewSyscallError("getsockopt SO_TYPE", err)
	}
	proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_PROTOCOL", err)
	}
	if typ != unix.SOCK_STREAM || proto != unix.IPPROTO_TCP {
		return fmt.Errorf("it is not a TCP socket (type %d, protocol %d)", typ, proto)
	}
	listening, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_ACCEPTCONN", err)
	}
	if listening != 1 {
		return fmt.Errorf("the TCP socket is not listening")
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return os.NewSyscallError("getsockname", err)
	}
	got := sockaddrAddr(sa)
	if p := sockaddrPort(sa); p != port {
		return fmt.Errorf("it listens on port %d, not %d", p, port)
	}
	switch {
	case bind == "" && !got.IsUnspecified():
		return fmt.Errorf("it listens on %s only, not on every address", got)
	case bind != "" && got.Unmap() != want.Unmap().WithZone(""):
		return fmt.Errorf("it listens on %s, not %s", got, bind)
	}
	return nil
}

// sockaddrAddr is the IP of a TCP socket address, without zone (the kernel reports the zone
// as a number, the user may have named the interface).
func sockaddrAddr(sa unix.Sockaddr) netip.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr)
	}
	return netip.Addr{}
}
