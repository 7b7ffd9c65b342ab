package sockets

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// A second bind of a held port fails with EADDRINUSE, whichever addresses the two ask for when
// they overlap: that failure is the daemon's port conflict check. Addresses that do not overlap
// both bind.
func TestListenSecondBinderConflicts(t *testing.T) {
	tests := []struct {
		name          string
		first, second string
		conflict      bool
	}{
		{"IPv4 loopback twice", "127.0.0.1", "127.0.0.1", true},
		{"IPv6 loopback twice", "::1", "::1", true},
		{"wildcard twice", "", "", true},
		{"wildcard then IPv4 loopback", "", "127.0.0.1", true},
		{"wildcard then IPv6 loopback", "", "::1", true},
		{"IPv4 any then wildcard", "0.0.0.0", "", true},
		{"IPv4 loopback then IPv6 loopback", "127.0.0.1", "::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needIPv6(t, tt.first, tt.second)
			l := listen(t, tt.first, 0)
			second, err := Listen(tt.second, l.Port)
			if !tt.conflict {
				if err != nil {
					t.Fatalf("Listen(%q, %d) beside %q: %v", tt.second, l.Port, tt.first, err)
				}
				second.Close()
				return
			}
			if err == nil {
				second.Close()
				t.Fatalf("Listen(%q, %d) beside %q succeeded; want EADDRINUSE", tt.second, l.Port, tt.first)
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("error %v does not wrap EADDRINUSE", err)
			}
			if want := fmt.Sprintf("port %d is already in use", l.Port); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		})
	}
}

// A new listener is what the daemon hands over: a listening TCP socket on the asked address,
// close-on-exec in the daemon, blocking, with its port and inode filled in.
func TestListenMakesABlockingCloexecListener(t *testing.T) {
	tests := []struct {
		bind     string
		wantAddr string // the bound address getsockname reports
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"::1", "::1"},
		{"0.0.0.0", "0.0.0.0"},
		{"", "::"},
		{"::ffff:127.0.0.1", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.bind), func(t *testing.T) {
			needIPv6(t, tt.bind, tt.wantAddr)
			l := listen(t, tt.bind, 0)
			if l.Port <= 0 || l.Bind != tt.bind {
				t.Fatalf("Listener{Port: %d, Bind: %q}, want a port and bind %q", l.Port, l.Bind, tt.bind)
			}
			want, err := parseBind(tt.bind)
			if err != nil {
				t.Fatal(err)
			}
			err = control(l.File, func(fd int) error {
				// The flags first: nothing may have touched the descriptor before.
				flFlags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
				if err != nil || flFlags&unix.O_NONBLOCK != 0 {
					return fmt.Errorf("file flags %#x (%v), want blocking", flFlags, err)
				}
				fdFlags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
				if err != nil || fdFlags&unix.FD_CLOEXEC == 0 {
					return fmt.Errorf("fd flags %#x (%v), want FD_CLOEXEC", fdFlags, err)
				}
				var st unix.Stat_t
				if err := unix.Fstat(fd, &st); err != nil || st.Ino != l.Inode || l.Inode == 0 {
					return fmt.Errorf("Inode = %d, fstat says %d (%v)", l.Inode, st.Ino, err)
				}
				return checkListening(fd, l.Port, tt.bind, want)
			})
			if err != nil {
				t.Fatal(err)
			}
			addr, _, _, err := listenerAddr(l)
			if err != nil || addr.String() != tt.wantAddr {
				t.Fatalf("bound to %v (%v), want %s", addr, err, tt.wantAddr)
			}
		})
	}
}

// The wildcard takes IPv4 and IPv6 clients on one socket, so that "" means every address as
// it does for other servers.
func TestListenWildcardIsDualStack(t *testing.T) {
	needIPv6(t, "::1")
	l := listen(t, "", 0)
	for _, host := range []string{"127.0.0.1", "::1"} {
		conn, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(l.Port)))
		if err != nil {
			t.Fatalf("connecting to the wildcard listener over %s: %v", host, err)
		}
		conn.Close()
	}
}

// Bad input is refused with an error naming what is wrong.
func TestListenRejectsBadInput(t *testing.T) {
	tests := []struct {
		bind    string
		port    int
		wantErr string
		wantIs  error
	}{
		{"nope", 0, `bind address "nope" is not an IP address`, nil},
		{"localhost", 0, `bind address "localhost" is not an IP address`, nil},
		{"127.0.0.1:80", 0, `bind address "127.0.0.1:80" is not an IP address`, nil},
		{"", -1, "port -1 is out of range", nil},
		{"", 65536, "port 65536 is out of range", nil},
		{"fe80::1%nosuchif0", 0, `no network interface "nosuchif0"`, nil},
		// 192.0.2.0/24 is documentation space: no interface of a test host has it.
		{"192.0.2.1", 0, "the address 192.0.2.1 is not on any interface", syscall.EADDRNOTAVAIL},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q:%d", tt.bind, tt.port), func(t *testing.T) {
			l, err := Listen(tt.bind, tt.port)
			if err == nil {
				l.Close()
				t.Fatalf("Listen(%q, %d) succeeded; want an error", tt.bind, tt.port)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not say %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
		})
	}
}

// A port whose earlier listener closed while a connection of it sat in TIME_WAIT binds again
// at once (SO_REUSEADDR), as a restarted server's port must.
func TestListenRebindsOverTimeWait(t *testing.T) {
	for _, bind := range []string{"127.0.0.1", ""} {
		t.Run(fmt.Sprintf("%q", bind), func(t *testing.T) {
			first, err := Listen(bind, 0)
			if err != nil {
				t.Fatal(err)
			}
			port := first.Port
			ln, err := net.FileListener(first.File)
			if err != nil {
				t.Fatal(err)
			}
			client, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				t.Fatal(err)
			}
			server, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			// The side that closes first keeps TIME_WAIT: here the server, on the port.
			server.Close()
			buf := make([]byte, 1)
			client.Read(buf) // the server's FIN
			client.Close()
			ln.Close()
			first.Close()
			table := &procNetReader{path: "/proc/net/tcp6"}
			if bind == "127.0.0.1" {
				table.path = "/proc/net/tcp"
			}
			clientAddr := client.LocalAddr().(*net.TCPAddr).AddrPort()
			eventually(t, "the server side of the connection in TIME_WAIT", func() bool {
				e, found, err := table.find(port, clientAddr)
				return err == nil && found && e.state == 6 // TCP_TIME_WAIT
			})
			again, err := Listen(bind, port)
			if err != nil {
				t.Fatalf("rebinding port %d over TIME_WAIT: %v", port, err)
			}
			again.Close()
		})
	}
}

// Adopt takes only a listening TCP socket on the expected port and address, and says what is
// wrong with anything else.
func TestAdoptChecksTheSocket(t *testing.T) {
	l := listen(t, "127.0.0.1", 0)
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	connFile, err := conn.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer connFile.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udpFile, err := udp.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer udpFile.Close()
	regular, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	dup := func() *os.File {
		f, err := l.Dup()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}

	tests := []struct {
		name    string
		file    *os.File
		port    int
		bind    string
		wantErr string // "" for success
	}{
		{"the listener", dup(), l.Port, "127.0.0.1", ""},
		{"the listener on another port", dup(), l.Port + 1, "127.0.0.1", fmt.Sprintf("it listens on port %d, not %d", l.Port, l.Port+1)},
		{"the listener as the wildcard", dup(), l.Port, "", "it listens on 127.0.0.1 only, not on every address"},
		{"the listener as another address", dup(), l.Port, "127.0.0.2", "it listens on 127.0.0.1, not 127.0.0.2"},
		{"a connected TCP socket", connFile, l.Port, "127.0.0.1", "the TCP socket is not listening"},
		{"a UDP socket", udpFile, l.Port, "127.0.0.1", "it is not a TCP socket"},
		{"a regular file", regular, l.Port, "127.0.0.1", "it is not a socket"},
		{"a bad bind", dup(), l.Port, "nope", `bind address "nope" is not an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Adopt(tt.file, tt.port, tt.bind)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Adopt: %v", err)
				}
				if got.Inode != l.Inode || got.Port != l.Port || got.File != tt.file {
					t.Fatalf("Adopt = %+v, want inode %d port %d", got, l.Inode, l.Port)
				}
				return
			}
			if err == nil {
				t.Fatalf("Adopt succeeded; want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not say %q", err, tt.wantErr)
			}
		})
	}
}

// Without the right to bind a low port, Listen says so and what gives the right. As root the
// test runs Listen as nobody.
func TestListenPrivilegedPort(t *testing.T) {
	start := readSysctlInt("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if start <= 1 {
		t.Skipf("this kernel lets every user bind any port (ip_unprivileged_port_start=%d), so EACCES cannot happen", start)
	}
	port := start - 1
	var out string
	if os.Getuid() == 0 {
		out = runAsNobody(t, "listen", "BIND=127.0.0.1", "PORT="+strconv.Itoa(port))
	} else {
		_, err := Listen("127.0.0.1", port)
		out = fmt.Sprintf("error: %v\neacces: %v\n", err, errors.Is(err, syscall.EACCES))
	}
	want := fmt.Sprintf("binding port %d needs privileges (ports below %d need root or CAP_NET_BIND_SERVICE)", port, start)
	if !strings.Contains(out, want) || !strings.Contains(out, "eacces: true") {
		t.Fatalf("as nobody, Listen(127.0.0.1, %d) printed:\n%s\nwant %q wrapping EACCES", port, out, want)
	}
}
