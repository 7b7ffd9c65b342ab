// Package notify is the daemon's side of systemd's sd_notify protocol: every instance is given
// NOTIFY_SOCKET, and the app sends datagrams of newline-separated KEY=VALUE assignments to it
// (READY=1 when it serves, STATUS=... for `info`, STOPPING=1, WATCHDOG=1 pings). Apps in any
// language already speak it through libsystemd, python-systemd, sd-notify crates and the like,
// which is why pmdaemon uses it rather than a protocol of its own.
//
// Who sent a datagram is taken from the kernel (SCM_CREDENTIALS), never from its content, so
// the caller can match it against the pids of its instances; the socket is writable by any
// local process, and a datagram that is not from one of them must simply be ignored.
package notify

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDatagram is the largest datagram accepted. systemd accepts the same (PIPE_BUF); a status
// line and a few flags need far less, and a bound keeps a hostile sender cheap to refuse.
const MaxDatagram = 4096

// MaxStatus is how many bytes of STATUS= are kept. `info` shows it on one line, and each
// instance keeps its latest status in memory, so a longer one is cut rather than stored.
const MaxStatus = 256

// Message is what one datagram said. Unknown keys are ignored, as sd_notify allows; a known key
// with a value it does not define (READY=2, MAINPID=abc) is ignored the same way, as systemd does,
// so that an app systemd accepts is never refused here.
type Message struct {
	Ready     bool // READY=1: the app has started and serves
	Stopping  bool // STOPPING=1: the app is shutting down on its own
	Reloading bool // RELOADING=1: the app reloads its configuration; READY=1 follows
	Watchdog  bool // WATCHDOG=1: a keep-alive ping for the instance's watchdog
	// WatchdogTrigger is WATCHDOG=trigger: the app asks to be treated as failed and restarted.
	WatchdogTrigger bool
	// Status is STATUS=..., nil when absent; at most MaxStatus bytes, cut on a rune boundary.
	Status *string
	// MainPID is MAINPID=, the app's main process when it is not the one pmdaemon started;
	// 0 when absent or not a positive pid.
	MainPID int
	// Errno is ERRNO=, an errno the app reports it failed with; 0 when absent or invalid.
	Errno int
	// ExtendTimeoutUSec is EXTEND_TIMEOUT_USEC=, the app asking for more time to start or stop;
	// 0 when absent or invalid.
	ExtendTimeoutUSec uint64
}

// Parse reads one datagram. It fails on what cannot be an sd_notify message: more than
// MaxDatagram bytes, a NUL byte, bytes that are not UTF-8, a non-empty line without '=' or with
// nothing before it. The error names the line (counted from 1) and what is wrong with it. Empty
// lines, including the one after a trailing newline, are skipped.
func Parse(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxDatagram {
		return m, fmt.Errorf("notify: datagram is %d bytes, more than the %d allowed", len(b), MaxDatagram)
	}
	for lineNo, line := range strings.Split(string(b), "\n") {
		lineNo++
		if line == "" {
			continue
		}
		if i := strings.IndexByte(line, 0); i >= 0 {
			return Message{}, fmt.Errorf("notify: line %d: NUL byte at column %d", lineNo, i+1)
		}
		if !utf8.ValidString(line) {
			at := invalidUTF8At(line)
			return Message{}, fmt.Errorf("notify: line %d: not UTF-8 text (bad byte 0x%02x at column %d)", lineNo, line[at], at+1)
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return Message{}, fmt.Errorf("notify: line %d: %s has no '=' (want KEY=VALUE)", lineNo, quoteShort(line))
		}
		if key == "" {
			return Message{}, fmt.Errorf("notify: line %d: %s has no name before '='", lineNo, quoteShort(line))
		}
		m.assign(key, value)
	}
	return m, nil
}

// assign records one KEY=VALUE; a later assignment of the same key wins, as in systemd.
func (m *Message) assign(key, value string) {
	switch key {
	case "READY":
		if value == "1" {
			m.Ready = true
		}
	case "STOPPING":
		if value == "1" {
			m.Stopping = true
		}
	case "RELOADING":
		if value == "1" {
			m.Reloading = true
		}
	case "WATCHDOG":
		switch value {
		case "1":
			m.Watchdog = true
		case "trigger":
			m.WatchdogTrigger = true
		}
	case "STATUS":
		s := cutStatus(value)
		m.Status = &s
	case "MAINPID":
		m.MainPID = 0
		if n, err := strconv.ParseInt(value, 10, 32); err == nil && n > 0 {
			m.MainPID = int(n)
		}
	case "ERRNO":
		m.Errno = 0
		if n, err := strconv.ParseInt(value, 10, 32); err == nil && n >= 0 {
			m.Errno = int(n)
		}
	case "EXTEND_TIMEOUT_USEC":
		m.ExtendTimeoutUSec = 0
		if n, err := strconv.ParseUint(value, 10, 64); err == nil {
			m.ExtendTimeoutUSec = n
		}
	}
}

// Format writes m as a datagram Parse reads back to m. It is for test apps and tools written in
// Go; a newline in Status would start a new assignment, so it is written as a space, and a Status
// longer than MaxStatus is cut as Parse would cut it.
func (m Message) Format() string {
	var lines []string
	flag := func(set bool, line string) {
		if set {
			lines = append(lines, line)
		}
	}
	flag(m.Ready, "READY=1")
	flag(m.Stopping, "STOPPING=1")
	flag(m.Reloading, "RELOADING=1")
	flag(m.Watchdog, "WATCHDOG=1")
	flag(m.WatchdogTrigger, "WATCHDOG=trigger")
	if m.Status != nil {
		lines = append(lines, "STATUS="+cutStatus(strings.ReplaceAll(*m.Status, "\n", " ")))
	}
	flag(m.MainPID > 0, "MAINPID="+strconv.Itoa(m.MainPID))
	flag(m.Errno > 0, "ERRNO="+strconv.Itoa(m.Errno))
	flag(m.ExtendTimeoutUSec > 0, "EXTEND_TIMEOUT_USEC="+strconv.FormatUint(m.ExtendTimeoutUSec, 10))
	return strings.Join(lines, "\n")
}

// cutStatus keeps at most MaxStatus bytes of s without splitting a UTF-8 sequence, so the kept
// status is still valid text.
func cutStatus(s string) string {
	if len(s) <= MaxStatus {
		return s
	}
	end := MaxStatus
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end]
}

// invalidUTF8At is the byte offset of the first byte of s that does not start a valid rune;
// s must not be valid UTF-8 (for valid s it answers 0 rather than fail: it only feeds an error
// message, and a datagram must never crash the daemon).
func invalidUTF8At(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return 0
}

// quoteShort quotes a line for an error message, cut so that a hostile 4 KiB line does not end
// up whole in the daemon's log.
func quoteShort(line string) string {
	const keep = 40
	if len(line) <= keep {
		return strconv.Quote(line)
	}
	end := keep
	for end > 0 && !utf8.RuneStart(line[end]) {
		end--
	}
	return strconv.Quote(line[:end]) + "..."
}
