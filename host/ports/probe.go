package ports

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Prober tells whether the OS would let a program listen on a port.
type Prober interface {
	// Probe returns nil when the port is free, ErrInUse when something outside the registry
	// holds it, an ErrPrivileged error when this user may not bind it, or another error that
	// should reach the user as it is.
	Probe(port int) error
}

// ErrInUse marks a port bound by some process.
var ErrInUse = errors.New("in use")

// ErrPrivileged marks a port the daemon's user may not bind (EACCES): below the kernel's
// net.ipv4.ip_unprivileged_port_start without root or CAP_NET_BIND_SERVICE. An auto: range
// skips such ports; a fixed port reports it (PrivilegedError).
var ErrPrivileged = errors.New("needs privileges")

// PrivilegedError is a port the OS refused to let us bind: permission denied.
type PrivilegedError struct{ Port int }

func (e *PrivilegedError) Error() string {
	if start := unprivilegedStart(); e.Port < start {
		return fmt.Sprintf("Port %d cannot be used: permission denied (it needs privileges: ports below %d need root or CAP_NET_BIND_SERVICE)", e.Port, start)
	}
	return fmt.Sprintf("Port %d cannot be used: permission denied (the system does not let this user bind it)", e.Port)
}

func (e *PrivilegedError) Is(target error) bool { return target == ErrPrivileged }

// unprivilegedStart is the first port any user may bind (1024 unless the system says else).
func unprivilegedStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

// OSProber binds a TCP socket on 0.0.0.0 and, where the host has IPv6, on [::] (v6-only, so
// the two checks are independent). SO_REUSEADDR is set as servers do, so a port in TIME_WAIT
// counts as free, while a port with a listener on any address does not.
type OSProber struct{}

func (OSProber) Probe(port int) error {
	if err := bindProbe(syscall.AF_INET, port); err != nil {
		return err
	}
	err := bindProbe(syscall.AF_INET6, port)
	if errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL) {
		return nil // no IPv6 on this host
	}
	return err
}

func bindProbe(family, port int) error {
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return err
	}
	var sa syscall.Sockaddr
	if family == syscall.AF_INET6 {
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1); err != nil {
			return err
		}
		sa = &syscall.SockaddrInet6{Port: port}
	} else {
		sa = &syscall.SockaddrInet4{Port: port}
	}
	err = syscall.Bind(fd, sa)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EADDRINUSE):
		return ErrInUse
	case errors.Is(err, syscall.EACCES):
		return &PrivilegedError{Port: port}
	default:
		return err
	}
}
