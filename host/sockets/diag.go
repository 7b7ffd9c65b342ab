package sockets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// diagTable looks up one TCP socket by its four addresses with a sock_diag netlink request
// (SOCK_DIAG_BY_FAMILY without NLM_F_DUMP): the kernel answers from its connection hash in
// constant time, where reading /proc/net/tcp walks every bucket of that hash.
type diagTable struct {
	fd  int
	seq uint32
	buf []byte
}

// Sizes and offsets of the kernel's structs (linux/netlink.h, linux/inet_diag.h).
const (
	nlmsgHdrLen    = 16 // struct nlmsghdr
	diagReqLen     = 56 // struct inet_diag_req_v2
	diagMsgLen     = 72 // struct inet_diag_msg
	diagMsgState   = 1  // idiag_state
	diagMsgID      = 4  // id (struct inet_diag_sockid) in the reply
	diagMsgInode   = 68 // idiag_inode
	diagReqIDStart = 8  // id (struct inet_diag_sockid) in the request
)

func openDiagTable() (*diagTable, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, os.NewSyscallError("socket NETLINK_SOCK_DIAG", err)
	}
	// The kernel answers while handling the request, so the reply is already queued when
	// recvfrom runs; the timeout only bounds a probe should that ever not hold.
	tv := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
	}
	return &diagTable{fd: fd, buf: make([]byte, 4096)}, nil
}

func (d *diagTable) close() { unix.Close(d.fd) }

// errDiagNotFound is the kernel's ENOENT for a lookup: no such socket, or no inet_diag
// handler for the family (a kernel without the module); the caller tells them apart.
var errDiagNotFound = errors.New("sock_diag: no such socket")

// lookup returns the TCP socket whose local end is local and remote end remote. Both must be
// of one family; IPv4 finds the IPv6 socket of a dual-stack listener's IPv4 client too.
func (d *diagTable) lookup(local, remote netip.AddrPort) (tcpEntry, error) {
	d.seq++
	req := make([]byte, nlmsgHdrLen+diagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], d.seq)
	r := req[nlmsgHdrLen:]
	r[0] = unix.AF_INET
	if local.Addr().Is6() {
		r[0] = unix.AF_INET6
	}
	r[1] = unix.IPPROTO_TCP
	ne.PutUint32(r[4:], ^uint32(0)) // every state
	id := r[diagReqIDStart:]
	binary.BigEndian.PutUint16(id[0:], local.Port())
	binary.BigEndian.PutUint16(id[2:], remote.Port())
	putDiagAddr(id[4:20], local.Addr())
	putDiagAddr(id[20:36], remote.Addr())
	ne.PutUint32(id[40:], ^uint32(0)) // INET_DIAG_NOCOOKIE: match any socket, not one cookie
	ne.PutUint32(id[44:], ^uint32(0))
	if err := unix.Sendto(d.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return tcpEntry{}, os.NewSyscallError("sendto sock_diag", err)
	}
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err != nil {
			return tcpEntry{}, os.NewSyscallError("recvfrom sock_diag", err)
		}
		e, done, err := d.parseReply(d.buf[:n], local, remote)
		if done || err != nil {
			return e, err
		}
	}
}

// parseReply reads the messages of one datagram; done once the answer to the current request
// was seen (replies to earlier requests, abandoned on an error, are skipped).
func (d *diagTable) parseReply(b []byte, local, remote netip.AddrPort) (e tcpEntry, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		msgLen := int(ne.Uint32(b[0:]))
		if msgLen < nlmsgHdrLen || msgLen > len(b) {
			return tcpEntry{}, true, fmt.Errorf("sock_diag: malformed reply (message length %d of %d bytes)", msgLen, len(b))
		}
		typ, seq, body := ne.Uint16(b[4:]), ne.Uint32(b[8:]), b[nlmsgHdrLen:msgLen]
		b = b[min(len(b), (msgLen+3)&^3):]
		if seq != d.seq {
			continue
		}
		switch typ {
		case unix.NLMSG_ERROR:
			if len(body) < 4 {
				return tcpEntry{}, true, errors.New("sock_diag: short error reply")
			}
			errno := -int32(ne.Uint32(body))
			if errno == int32(unix.ENOENT) {
				return tcpEntry{}, true, errDiagNotFound
			}
			return tcpEntry{}, true, os.NewSyscallError("sock_diag", unix.Errno(errno))
		case unix.SOCK_DIAG_BY_FAMILY:
			if len(body) < diagMsgLen {
				return tcpEntry{}, true, fmt.Errorf("sock_diag: short reply (%d bytes)", len(body))
			}
			e := tcpEntry{
				local:  diagAddrPort(body[0], body[diagMsgID:], body[diagMsgID+4:]),
				remote: diagAddrPort(body[0], body[diagMsgID+2:], body[diagMsgID+20:]),
				state:  body[diagMsgState],
				inode:  uint64(ne.Uint32(body[diagMsgInode:])),
			}
			// With no connection of those addresses the kernel's lookup falls back to the
			// listener of the port: that is not the socket asked for.
			if e.remote.Port() != remote.Port() || e.remote.Addr().Unmap() != remote.Addr().Unmap() {
				return tcpEntry{}, true, errDiagNotFound
			}
			return e, true, nil
		}
	}
	return tcpEntry{}, false, nil
}

// diagAddrPort reads an address and port of an inet_diag_sockid: port (big-endian) at
// port[0:2], address at addr[0:16].
func diagAddrPort(family byte, port, addr []byte) netip.AddrPort {
	p := binary.BigEndian.Uint16(port)
	if family == unix.AF_INET {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr[:4])), p)
	}
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(addr[:16])), p)
}

// putDiagAddr writes an address as inet_diag_sockid holds it: network order, an IPv4 address
// in the first four bytes.
func putDiagAddr(into []byte, a netip.Addr) {
	if a.Is4() {
		v4 := a.As4()
		copy(into, v4[:])
		return
	}
	v6 := a.As16()
	copy(into, v6[:])
}
