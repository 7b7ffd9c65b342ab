package notify

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SocketName is the file socket's name inside the home.
const SocketName = "notify.sock"

// sunPathMax is sizeof(sockaddr_un.sun_path) on Linux. The path must fit with its NUL: many
// sd_notify clients (libsystemd among them) refuse a NOTIFY_SOCKET that fills it exactly.
const sunPathMax = 108

// receiveBuffer is asked for with SO_RCVBUF(FORCE). For unix datagrams the kernel's real bound on
// a burst is net.unix.max_dgram_qlen (queued datagrams per socket, often 10..512); past it
// senders block, or get EAGAIN if they send non-blocking, so nothing is silently lost. A larger
// buffer still lets queued datagrams carry their attached fds and credentials without the
// socket's memory being the limit.
const receiveBuffer = 1 << 20

// oobSpace holds the credentials plus the most fds one datagram can carry (SCM_MAX_FD): with room
// for all of them the kernel never truncates the control data, so every passed fd reaches us and
// is closed here rather than lingering.
var oobSpace = unix.CmsgSpace(unix.SizeofUcred) + unix.CmsgSpace(253*4)

// Sender is who sent a datagram, from SCM_CREDENTIALS. The kernel fills these in (a process may
// only claim its own ids unless it is privileged), so they identify the sending process.
type Sender struct{ Pid, Uid, Gid int }

// Server receives sd_notify datagrams on one unixgram socket.
type Server struct {
	conn    *net.UnixConn
	address string
	// path and fileID name the file socket, so that Close removes the socket it made and not one
	// a later daemon made at the same path; path is empty for an abstract socket.
	path    string
	fileID  fileID
	dropped atomic.Uint64

	mu      sync.Mutex
	closed  bool
	serving bool
	served  chan struct{} // closed when Serve returns
}

type fileID struct{ dev, ino uint64 }

// Listen opens the notify socket of the daemon whose home is home.
//
// The address is home/notify.sock when that path fits in sun_path, else the abstract socket
// "@pmdaemon-notify-<16 hex digits of sha256(home)>", named from the home so that two daemons with
// different homes never collide and a restarted daemon finds the same name. A socket file left at
// the path by a daemon that was killed is replaced; one a running process still receives on, or
// any file that is not a socket, is an error naming the path and is left alone.
//
// The file socket is mode 0666, like systemd's /run/systemd/notify: apps may run as other users
// than the daemon, connecting needs write permission on the socket, and who may speak is decided
// per datagram from the kernel's credentials, not from the file mode. The home directory's own
// mode still decides who can reach the file at all.
func Listen(home string) (*Server, error) {
	if home == "" {
		return nil, errors.New("notify: empty home directory")
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return nil, fmt.Errorf("notify: home %q: %w", home, err)
	}
	address, isFile := addressFor(abs)
	if isFile {
		if err := clearStaleSocket(address); err != nil {
			return nil, err
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("notify: socket: %w", err)
	}
	s, err := listenOn(fd, address, isFile)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// listenOn sets up and binds fd, a fresh unixgram socket, and owns it: on every return fd is
// closed (after net.FileConn took its own copy, or because something failed).
func listenOn(fd int, address string, isFile bool) (*Server, error) {
	wrapped := false
	defer func() {
		if !wrapped {
			_ = unix.Close(fd)
		}
	}()
	// SO_PASSCRED before bind: no datagram can arrive without credentials attached.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return nil, fmt.Errorf("notify: %s: SO_PASSCRED: %w", address, err)
	}
	// Best effort: FORCE passes rmem_max when the daemon may (CAP_NET_ADMIN); the plain option is
	// capped at rmem_max; with neither the default buffer still works.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, receiveBuffer)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: address}); err != nil {
		if errors.Is(err, unix.EADDRINUSE) && !isFile {
			return nil, fmt.Errorf("notify: abstract socket %s is in use (another daemon with the same home?): %w", address, err)
		}
		return nil, fmt.Errorf("notify: bind %s: %w", address, err)
	}
	s := &Server{address: address, served: make(chan struct{})}
	if isFile {
		s.path = address
		if err := os.Chmod(address, 0o666); err != nil {
			_ = os.Remove(address)
			return nil, fmt.Errorf("notify: %w", err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(address, &st); err != nil {
			_ = os.Remove(address)
			return nil, fmt.Errorf("notify: stat %s: %w", address, err)
		}
		s.fileID = fileID{dev: st.Dev, ino: st.Ino}
	}
	// net.FileConn dups the fd (close-on-exec) and puts it in Go's poller, which is what lets
	// Close interrupt a blocked Serve; the original fd is then ours to close.
	f := os.NewFile(uintptr(fd), address)
	wrapped = true // f owns fd from here
	c, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		s.removeFile()
		return nil, fmt.Errorf("notify: %s: %w", address, err)
	}
	s.conn = c.(*net.UnixConn)
	return s, nil
}

// addressFor is the NOTIFY_SOCKET value for the absolute home, and whether it is a file socket.
func addressFor(home string) (address string, isFile bool) {
	path := filepath.Join(home, SocketName)
	if len(path)+1 <= sunPathMax {
		return path, true
	}
	sum := sha256.Sum256([]byte(home))
	return "@pmdaemon-notify-" + hex.EncodeToString(sum[:8]), false
}

// clearStaleSocket makes path free for bind: nothing there, or a socket file nobody receives on
// (a datagram connect to it is refused), which is then removed.
func clearStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("notify: %s exists and is not a socket (%s); not removing it", path, fi.Mode().Type())
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("notify: %s is in use by a running process (another daemon with the same home?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("notify: checking the old socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("notify: removing the stale socket: %w", err)
	}
	return nil
}

// Address is the value for NOTIFY_SOCKET: an absolute path, or "@name" for an abstract socket.
func (s *Server) Address() string { return s.address }

// Dropped is how many datagrams were received and ignored: without credentials (or from pid 0,
// a process the daemon's pid namespace cannot see), longer than MaxDatagram, or not parsable.
func (s *Server) Dropped() uint64 { return s.dropped.Load() }

// Serve receives datagrams until Close and calls handle for each one that carries credentials and
// parses. handle runs on Serve's goroutine, one datagram at a time: while it runs no datagram is
// read and senders soon block, so it must only record what it was told and return (hand anything
// slow to another goroutine). handle must not call Close, which waits for Serve to return.
// Serve is called at most once; a second call, or a call after Close, returns at once.
func (s *Server) Serve(handle func(Sender, Message)) {
	s.mu.Lock()
	if s.closed || s.serving {
		s.mu.Unlock()
		return
	}
	s.serving = true
	s.mu.Unlock()
	defer close(s.served)

	buf := make([]byte, MaxDatagram)
	oob := make([]byte, oobSpace)
	for {
		n, oobn, flags, _, err := s.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Not expected on a bound datagram socket; counted, and paced so that an error that
			// repeats cannot turn this loop into a busy one.
			s.dropped.Add(1)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		sender, known := takeControl(oob[:oobn])
		if !known || flags&unix.MSG_TRUNC != 0 {
			s.dropped.Add(1)
			continue
		}
		msg, err := Parse(buf[:n])
		if err != nil {
			s.dropped.Add(1)
			continue
		}
		handle(sender, msg)
	}
}

// takeControl reads the sender's credentials from a datagram's control data and closes every fd
// passed with it: pmdaemon keeps no fd store (FDSTORE=1), and an fd kept open would leak one per
// datagram from any local process. Go receives them close-on-exec (MSG_CMSG_CLOEXEC), so none
// reaches a child started in the meantime. It reports false when there are no credentials or
// they name pid 0 (a sender outside the daemon's pid namespace): such a sender matches no
// instance.
func takeControl(oob []byte) (Sender, bool) {
	var sender Sender
	found := false
	// One message at a time, so that the fds of every well-formed message before a malformed
	// one are still closed (the kernel does not send malformed ones; this is belt and braces).
	for rest := oob; len(rest) >= unix.SizeofCmsghdr; {
		hdr, data, next, err := unix.ParseOneSocketControlMessage(rest)
		if err != nil {
			break
		}
		rest = next
		if hdr.Level != unix.SOL_SOCKET {
			continue
		}
		switch hdr.Type {
		case unix.SCM_RIGHTS:
			for ; len(data) >= 4; data = data[4:] {
				_ = unix.Close(int(int32(binary.NativeEndian.Uint32(data))))
			}
		case unix.SCM_CREDENTIALS:
			if found || len(data) < unix.SizeofUcred {
				continue
			}
			m := unix.SocketControlMessage{Header: hdr, Data: data}
			if cred, err := unix.ParseUnixCredentials(&m); err == nil {
				sender = Sender{Pid: int(cred.Pid), Uid: int(cred.Uid), Gid: int(cred.Gid)}
				found = true
			}
		}
	}
	return sender, found && sender.Pid > 0
}

// Close closes the socket, waits for Serve (if it runs) to return, and removes the socket file it
// made. A second Close returns nil.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	serving := s.serving
	s.mu.Unlock()

	err := s.conn.Close()
	if serving {
		<-s.served
	}
	s.removeFile()
	if err != nil {
		return fmt.Errorf("notify: closing %s: %w", s.address, err)
	}
	return nil
}

// removeFile removes the file socket if the file at the path is still the one Listen bound.
func (s *Server) removeFile() {
	if s.path == "" {
		return
	}
	var st unix.Stat_t
	if unix.Lstat(s.path, &st) == nil && (fileID{dev: st.Dev, ino: st.Ino}) == s.fileID {
		_ = os.Remove(s.path)
	}
}
