package sockets

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// diagReply builds one netlink message of typ with seq around body, as the kernel sends it.
func diagReply(typ uint16, seq uint32, body []byte) []byte {
	b := make([]byte, nlmsgHdrLen+len(body))
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint32(b[8:], seq)
	copy(b[nlmsgHdrLen:], body)
	return b
}

// Whatever a datagram holds, reading it as a sock_diag reply never panics.
func FuzzDiagReply(f *testing.F) {
	local := netip.MustParseAddrPort("127.0.0.1:3000")
	remote := netip.MustParseAddrPort("127.0.0.1:40000")
	msg := make([]byte, diagMsgLen)
	msg[0], msg[diagMsgState] = unix.AF_INET, tcpEstablished
	binary.BigEndian.PutUint16(msg[diagMsgID+2:], remote.Port())
	f.Add(diagReply(unix.SOCK_DIAG_BY_FAMILY, 1, msg))
	f.Add(diagReply(unix.NLMSG_ERROR, 1, []byte{0xfe, 0xff, 0xff, 0xff}))
	f.Add(diagReply(unix.SOCK_DIAG_BY_FAMILY, 1, msg[:10]))
	f.Add(append(diagReply(unix.NLMSG_ERROR, 0, []byte{1, 0, 0, 0}), diagReply(unix.SOCK_DIAG_BY_FAMILY, 1, msg)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &diagTable{seq: 1}
		d.parseReply(b, local, remote)
	})
}
