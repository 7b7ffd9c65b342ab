package supervisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// PM2's IPC channel: what Node's child_process.fork gives a child, and PM2 gives every app it
// forks. The child inherits one end of a socketpair and NODE_CHANNEL_FD naming it; node opens
// it as `process.send` / `process.on('message')`. The wire is one JSON value per line
// (NODE_CHANNEL_SERIALIZATION_MODE=json). The message "ready" (process.send('ready'), PM2's
// wait_ready) makes the process ready as READY=1 on NOTIFY_SOCKET does; the daemon reads and
// drops everything else.
//
// The daemon's end is close-on-exec from its creation, so no other process ever holds it; it
// is read on a goroutine of its own, never by the loop; a line longer than maxIPCLine is
// dropped as it comes, so no input makes the daemon buffer more than that; and the daemon only
// ever writes to it to ask for a shutdown (shutdown_with_message), with a deadline, so a
// process that never reads it loses nothing.

// maxIPCLine bounds one message the daemon reads; a longer line is skipped.
const maxIPCLine = 64 << 10

// ipcWriteTimeout bounds the daemon's one write, the shutdown message: a process that does not
// read its channel is stopped by signal instead.
const ipcWriteTimeout = 100 * time.Millisecond

// ipcChannel is the daemon's end of a process's channel and its reader.
type ipcChannel struct {
	f    *os.File
	done chan struct{} // closed when the reader has returned
	once sync.Once
}

// newIPC makes a socketpair: the daemon's end (non-blocking, for the runtime's poller, so a
// close ends a pending read) and the child's, both close-on-exec until exec hands the child's
// to the process as an ExtraFile.
func newIPC() (ours, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot make the IPC channel: %w", err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("cannot make the IPC channel: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "ipc"), os.NewFile(uintptr(fds[1]), "ipc-child"), nil
}

// ipcEnv is env with the channel's variables set for fd (any inherited ones replaced).
func ipcEnv(env []string, fd int) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "NODE_CHANNEL_FD=") && !strings.HasPrefix(kv, "NODE_CHANNEL_SERIALIZATION_MODE=") {
			out = append(out, kv)
		}
	}
	return append(out, "NODE_CHANNEL_FD="+strconv.Itoa(fd), "NODE_CHANNEL_SERIALIZATION_MODE=json")
}

// readIPC starts reading the channel of process pid: "ready" marks it ready (once; the rest
// is drained and dropped).
func (l *Loop) readIPC(f *os.File, pid int) *ipcChannel {
	c := &ipcChannel{f: f, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		readMessages(f, func(msg []byte) bool {
			if !isReady(msg) {
				return true
			}
			l.ipcReady(pid)
			return true
		})
	}()
	return c
}

// readMessages calls each with every line of r shorter than maxIPCLine, until r ends or each
// returns false. Longer lines are skipped whole.
func readMessages(r io.Reader, each func([]byte) bool) {
	br := bufio.NewReaderSize(r, maxIPCLine)
	skipping := false // inside a line too long to keep
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			skipping = true
			continue
		case err != nil:
			return // EOF, or the channel was closed
		case skipping:
			skipping = false
			continue
		}
		if !each(line) {
			return
		}
	}
}

// isReady reports whether a message is the string "ready".
func isReady(msg []byte) bool {
	msg = bytes.TrimSpace(msg)
	if len(msg) > 32 || len(msg) == 0 || msg[0] != '"' {
		return false
	}
	var s string
	return json.Unmarshal(msg, &s) == nil && s == "ready"
}

// ipcReady marks process pid ready, if it is still the one running.
func (l *Loop) ipcReady(pid int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.Pid != pid || l.st.Ready {
		return
	}
	l.st.Ready = true
	l.wakeLocked()
}

// sendShutdown writes PM2's shutdown message; it reports whether the process was sent it.
func (c *ipcChannel) sendShutdown() bool {
	if c == nil {
		return false
	}
	if err := c.f.SetWriteDeadline(time.Now().Add(ipcWriteTimeout)); err != nil {
		return false
	}
	_, err := c.f.Write([]byte("\"shutdown\"\n"))
	return err == nil
}

// close ends the channel and waits for its reader to return. Safe on nil and more than once.
func (c *ipcChannel) close() {
	if c == nil {
		return
	}
	c.once.Do(func() { c.f.Close() })
	<-c.done
}
