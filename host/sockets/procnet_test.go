package sockets

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Lines as a little-endian host's kernel prints them parse into the addresses they stand for;
// malformed lines are errors naming the field.
func TestParseTCPLine(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the sample lines are a little-endian host's; TestServerSideLookupFindsRealSockets covers this host")
	}
	tests := []struct {
		name    string
		line    string
		want    tcpEntry
		wantErr string
	}{
		{
			name: "IPv4 listener",
			line: "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 00000000b3e469b4 100 0 0 10 0",
			want: tcpEntry{local: netip.MustParseAddrPort("127.0.0.1:8080"), remote: netip.MustParseAddrPort("0.0.0.0:0"), state: 10, inode: 12345},
		},
		{
			name: "IPv6 connection in an accept queue",
			line: "   1: 00000000000000000000000001000000:0BB8 00000000000000000000000001000000:D446 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000029f0a379",
			want: tcpEntry{local: netip.MustParseAddrPort("[::1]:3000"), remote: netip.MustParseAddrPort("[::1]:54342"), state: 1, inode: 0},
		},
		{
			name: "IPv4-mapped TIME_WAIT",
			line: "   0: 0000000000000000FFFF00000100007F:AD2D 0000000000000000FFFF00000100007F:D446 06 00000000:00000000 03:00000738 00000000     0        0 0 3 0000000029f0a379",
			want: tcpEntry{local: netip.MustParseAddrPort("[::ffff:127.0.0.1]:44333"), remote: netip.MustParseAddrPort("[::ffff:127.0.0.1]:54342"), state: 6},
		},
		{name: "the header", line: "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", wantErr: "local address"},
		{name: "short", line: "   0: 0100007F:1F90 00000000:0000 0A", wantErr: "fewer than 10 fields"},
		{name: "empty", line: "", wantErr: "fewer than 10 fields"},
		{name: "no port", line: "0: 0100007F 00000000:0000 0A 0 0 0 0 0 1", wantErr: `local address "0100007F": no ':'`},
		{name: "odd address", line: "0: 0100007:1F90 00000000:0000 0A 0 0 0 0 0 1", wantErr: "7 hex digits"},
		{name: "bad hex", line: "0: 0100007G:1F90 00000000:0000 0A 0 0 0 0 0 1", wantErr: "local address"},
		{name: "bad remote port", line: "0: 0100007F:1F90 00000000:00 0A 0 0 0 0 0 1", wantErr: "remote address"},
		{name: "bad state", line: "0: 0100007F:1F90 00000000:0000 0X 0 0 0 0 0 1", wantErr: `state "0X"`},
		{name: "bad inode", line: "0: 0100007F:1F90 00000000:0000 0A 0 0 0 0 0 -1", wantErr: `inode "-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTCPLine([]byte(tt.line))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseTCPLine = %+v, %v; want an error saying %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseTCPLine = %+v, %v; want %+v", got, err, tt.want)
			}
			if !localPortIs([]byte(tt.line), int(tt.want.local.Port())) || localPortIs([]byte(tt.line), int(tt.want.local.Port())+1) {
				t.Fatalf("localPortIs disagrees with the parsed port %d", tt.want.local.Port())
			}
		})
	}
}

// Both ways of finding the server side of a connection give the kernel's own entries: first
// in the accept queue (inode 0), then accepted (the inode of the accepted socket). The
// sock_diag lookup is tested apart, so that a fallback to /proc/net cannot hide it failing.
func TestServerSideLookupFindsRealSockets(t *testing.T) {
	type lookupFunc func(local, remote netip.AddrPort) (tcpEntry, bool, error)
	methods := []struct {
		name string
		open func(t *testing.T, family int) lookupFunc
	}{
		{"sock_diag", func(t *testing.T, _ int) lookupFunc {
			d, err := openDiagTable()
			if err != nil {
				t.Fatalf("sock_diag: %v", err)
			}
			t.Cleanup(d.close)
			return func(local, remote netip.AddrPort) (tcpEntry, bool, error) {
				e, err := d.lookup(local, remote)
				return e, err == nil, err
			}
		}},
		{"/proc/net", func(t *testing.T, family int) lookupFunc {
			table := &procNetReader{path: "/proc/net/tcp"}
			if family == unix.AF_INET6 {
				table.path = "/proc/net/tcp6"
			}
			return func(local, remote netip.AddrPort) (tcpEntry, bool, error) {
				return table.find(int(local.Port()), remote)
			}
		}},
	}
	for _, m := range methods {
		for _, bind := range []string{"127.0.0.1", "::1", ""} {
			t.Run(fmt.Sprintf("%s %q", m.name, bind), func(t *testing.T) {
				needIPv6(t, bind)
				l := listen(t, bind, 0)
				addr, family, dual, err := listenerAddr(l)
				if err != nil {
					t.Fatal(err)
				}
				lookup := m.open(t, family)
				client, err := net.Dial("tcp", probeTarget(addr, dual, l.Port))
				if err != nil {
					t.Fatal(err)
				}
				defer client.Close()
				local := client.RemoteAddr().(*net.TCPAddr).AddrPort()
				remote := client.LocalAddr().(*net.TCPAddr).AddrPort()
				var queued tcpEntry
				eventually(t, "the queued connection", func() bool {
					var found bool
					queued, found, err = lookup(local, remote)
					return found && queued.state == tcpEstablished
				})
				if queued.inode != 0 {
					t.Fatalf("a connection no process accepted has inode %d, want 0", queued.inode)
				}
				ln, err := net.FileListener(l.File)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				server, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				defer server.Close()
				accepted, found, err := lookup(local, remote)
				if err != nil || !found || accepted.inode == 0 {
					t.Fatalf("after accept: %+v found=%v err=%v; want the accepted socket with an inode", accepted, found, err)
				}
				if got, err := findSocketFD(os.Getpid(), accepted.inode); err != nil || got < 0 {
					t.Fatalf("the accepted socket's inode %d is not among this process's fds (%d, %v)", accepted.inode, got, err)
				}
				absent := netip.AddrPortFrom(remote.Addr(), 1)
				if e, found, _ := lookup(local, absent); found {
					t.Fatalf("a connection from %v that was never made was found: %+v", absent, e)
				}
			})
		}
	}
}

// Whatever a line holds, parsing it never panics, and a parsed line's port agrees with the
// cheap filter.
func FuzzParseTCPLine(f *testing.F) {
	for _, seed := range []string{
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 00000000b3e469b4 100 0 0 10 0",
		"   0: 0000000000000000FFFF00000100007F:AD2D 0000000000000000FFFF00000100007F:D446 06 00000000:00000000 03:00000738 00000000     0        0 0 3 0000000029f0a379",
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
		"",
		": : : : : : : : : :",
		"0: :1F90 :0 0 0 0 0 0 0 0",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := parseTCPLine(line)
		if err == nil && !localPortIs(line, int(e.local.Port())) {
			t.Fatalf("parsed local port %d, but localPortIs says no for %q", e.local.Port(), line)
		}
	})
}
