package sockets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
)

// tcpEntry is one socket of /proc/net/tcp or tcp6.
type tcpEntry struct {
	local, remote netip.AddrPort
	state         uint8  // the kernel's TCP_* state: 1 ESTABLISHED, 10 LISTEN, ...
	inode         uint64 // 0 while no process holds the socket (still in an accept queue, or orphaned)
}

// TCP states as /proc/net/tcp numbers them (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpSynRecv     = 3
	tcpNewSynRecv  = 12 // a request socket: the handshake is not complete (sock_diag only)
)

var errShortLine = errors.New("fewer than 10 fields")

// parseTCPLine parses a socket line of /proc/net/tcp or tcp6:
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
//	 0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 12345 ...
func parseTCPLine(line []byte) (tcpEntry, error) {
	var f [10][]byte
	if splitFields(line, f[:]) < len(f) {
		return tcpEntry{}, errShortLine
	}
	var e tcpEntry
	var err error
	if e.local, err = parseHexAddrPort(f[1]); err != nil {
		return tcpEntry{}, fmt.Errorf("local address %q: %w", f[1], err)
	}
	if e.remote, err = parseHexAddrPort(f[2]); err != nil {
		return tcpEntry{}, fmt.Errorf("remote address %q: %w", f[2], err)
	}
	st, err := strconv.ParseUint(string(f[3]), 16, 8)
	if err != nil {
		return tcpEntry{}, fmt.Errorf("state %q: %w", f[3], err)
	}
	e.state = uint8(st)
	if e.inode, err = strconv.ParseUint(string(f[9]), 10, 64); err != nil {
		return tcpEntry{}, fmt.Errorf("inode %q: %w", f[9], err)
	}
	return e, nil
}

// splitFields fills into with the first len(into) space-separated fields of line, without
// allocating, and returns how many it found.
func splitFields(line []byte, into [][]byte) int {
	n := 0
	for n < len(into) {
		line = bytes.TrimLeft(line, " \t")
		if len(line) == 0 {
			break
		}
		end := bytes.IndexAny(line, " \t")
		if end < 0 {
			end = len(line)
		}
		into[n], line = line[:end], line[end:]
		n++
	}
	return n
}

// localPortIs is the cheap test made on every line before parsing it: whether the local
// address field ends in the port, as ":%04X".
func localPortIs(line []byte, port int) bool {
	var f [2][]byte
	if splitFields(line, f[:]) < 2 {
		return false
	}
	a := f[1]
	if len(a) < 5 || a[len(a)-5] != ':' {
		return false
	}
	p, err := strconv.ParseUint(string(a[len(a)-4:]), 16, 16)
	return err == nil && int(p) == port
}

// parseHexAddrPort parses "0100007F:1F90" (IPv4) or 32 hex digits and a port (IPv6). The
// kernel prints the address as 32-bit words in the host's byte order, the port as a number.
func parseHexAddrPort(s []byte) (netip.AddrPort, error) {
	i := bytes.IndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, errors.New("no ':' before the port")
	}
	hexAddr, hexPort := s[:i], s[i+1:]
	if len(hexPort) != 4 {
		return netip.AddrPort{}, errors.New("the port is not 4 hex digits")
	}
	port, err := strconv.ParseUint(string(hexPort), 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port: %w", err)
	}
	if len(hexAddr) != 8 && len(hexAddr) != 32 {
		return netip.AddrPort{}, fmt.Errorf("the address has %d hex digits, not 8 or 32", len(hexAddr))
	}
	var raw [16]byte
	for w := 0; w < len(hexAddr)/8; w++ {
		v, err := strconv.ParseUint(string(hexAddr[w*8:w*8+8]), 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address: %w", err)
		}
		binary.NativeEndian.PutUint32(raw[w*4:], uint32(v))
	}
	if len(hexAddr) == 8 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[:4])), uint16(port)), nil
	}
	return netip.AddrPortFrom(netip.AddrFrom16(raw), uint16(port)), nil
}

// procNetReader reads a /proc/net/tcp file into a buffer it keeps from one poll to the next.
type procNetReader struct {
	path string
	buf  []byte
}

// find returns the socket whose local port is localPort and whose remote end is remote, if
// the table has it. Only lines with that local port are parsed.
func (r *procNetReader) find(localPort int, remote netip.AddrPort) (tcpEntry, bool, error) {
	if err := r.read(); err != nil {
		return tcpEntry{}, false, err
	}
	rest := r.buf
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[i+1:] // the header
	}
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if !localPortIs(line, localPort) {
			continue
		}
		e, err := parseTCPLine(line)
		if err != nil {
			return tcpEntry{}, false, fmt.Errorf("%s: %w", r.path, err)
		}
		if e.remote.Port() == remote.Port() && e.remote.Addr().Unmap() == remote.Addr().Unmap() {
			return e, true, nil
		}
	}
	return tcpEntry{}, false, nil
}

func (r *procNetReader) read() error {
	f, err := os.Open(r.path)
	if err != nil {
		return err
	}
	defer f.Close()
	r.buf = r.buf[:0]
	for {
		if len(r.buf) == cap(r.buf) {
			r.buf = append(r.buf, 0)[:len(r.buf)]
		}
		n, err := f.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+n]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", r.path, err)
		}
	}
}
