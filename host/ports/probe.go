package ports

import (
	"errors"
	"fmt"
	"syscall"
)

// Prober tells whether the OS would let a program listen on a port.
type Prober interface {
	// Probe returns nil when the port is free, ErrInUse when something outside the registry
	// holds it, or another error (permission) that should reach the user as it is.
	Probe(port int) error
}

// ErrInUse marks a port bound by some process.
var ErrInUse = errors.New("in use")

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
		return fmt.Errorf("Port %d cannot be used: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)", port)
	default:
		return err
	}
}
