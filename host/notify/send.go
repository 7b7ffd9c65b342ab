package notify

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// sendTimeout bounds how long Send waits for room in the daemon's queue, so a test app whose
// daemon is stuck fails instead of hanging.
const sendTimeout = 10 * time.Second

// Send sends msg as one datagram to addr, a NOTIFY_SOCKET value (an absolute path, or "@name" for
// an abstract socket), from this process: the receiver sees this process's credentials. It is for
// tests and for test apps written in Go; apps use their language's sd_notify library.
func Send(addr, msg string) error {
	if !strings.HasPrefix(addr, "/") && !strings.HasPrefix(addr, "@") {
		return fmt.Errorf("notify: NOTIFY_SOCKET %q is neither an absolute path nor an @abstract name", addr)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("notify: sending to %s: %w", addr, err)
	}
	return nil
}
