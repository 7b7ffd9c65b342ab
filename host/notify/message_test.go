package notify

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func strPtr(s string) *string { return &s }

func sameMessage(a, b Message) bool {
	if (a.Status == nil) != (b.Status == nil) || (a.Status != nil && *a.Status != *b.Status) {
		return false
	}
	a.Status, b.Status = nil, nil
	return a == b
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Message
	}{
		{"ready", "READY=1", Message{Ready: true}},
		{"status with spaces and '=' in the value", "STATUS=Serving 3 clients: mode=fast",
			Message{Status: strPtr("Serving 3 clients: mode=fast")}},
		{"several lines", "READY=1\nSTATUS=up\nMAINPID=4242",
			Message{Ready: true, Status: strPtr("up"), MainPID: 4242}},
		{"trailing newline", "READY=1\n", Message{Ready: true}},
		{"empty lines skipped", "\nREADY=1\n\nSTOPPING=1\n\n", Message{Ready: true, Stopping: true}},
		{"every flag", "READY=1\nSTOPPING=1\nRELOADING=1\nWATCHDOG=1",
			Message{Ready: true, Stopping: true, Reloading: true, Watchdog: true}},
		{"watchdog trigger", "WATCHDOG=trigger", Message{WatchdogTrigger: true}},
		{"unknown keys ignored", "X_APP_PHASE=2\nFDSTORE=1\nFDNAME=db\nREADY=1", Message{Ready: true}},
		{"flag with another value ignored", "READY=0\nSTOPPING=yes\nWATCHDOG=2", Message{}},
		{"empty status", "STATUS=", Message{Status: strPtr("")}},
		{"last status wins", "STATUS=starting\nSTATUS=ready", Message{Status: strPtr("ready")}},
		{"errno and extend timeout", "ERRNO=2\nEXTEND_TIMEOUT_USEC=5000000",
			Message{Errno: 2, ExtendTimeoutUSec: 5000000}},
		{"invalid numbers are zero", "MAINPID=abc\nERRNO=-1\nEXTEND_TIMEOUT_USEC=-5", Message{}},
		{"pid 0 and negative pid are zero", "MAINPID=0\nMAINPID=-3", Message{}},
		{"pid beyond pid_t is zero", "MAINPID=99999999999", Message{}},
		{"a later invalid MAINPID clears an earlier one", "MAINPID=12\nMAINPID=x", Message{}},
		{"empty datagram", "", Message{}},
		{"utf-8 status", "STATUS=prêt — 準備完了", Message{Status: strPtr("prêt — 準備完了")}},
		{"datagram of exactly the limit", "STATUS=" + strings.Repeat("x", MaxDatagram-7),
			Message{Status: strPtr(strings.Repeat("x", MaxStatus))}},
		{"huge status cut", "STATUS=" + strings.Repeat("a", 1000),
			Message{Status: strPtr(strings.Repeat("a", MaxStatus))}},
		{"status cut before a split 2-byte rune", "STATUS=a" + strings.Repeat("é", 200),
			Message{Status: strPtr("a" + strings.Repeat("é", 127))}},
		{"status cut at a 4-byte rune boundary", "STATUS=" + strings.Repeat("😀", 100),
			Message{Status: strPtr(strings.Repeat("😀", 64))}},
		{"status cut inside a 4-byte rune", "STATUS=ab" + strings.Repeat("😀", 100),
			Message{Status: strPtr("ab" + strings.Repeat("😀", 63))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if !sameMessage(got, tc.want) {
				t.Fatalf("Parse(%q) = %s, want %s", tc.in, describe(got), describe(tc.want))
			}
		})
	}
}

// describe shows a Message with its status by value rather than as a pointer.
func describe(m Message) string {
	status := "<nil>"
	if m.Status != nil {
		status = strconv.Quote(*m.Status)
	}
	m.Status = nil
	return fmt.Sprintf("%+v with status %s", m, status)
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantErrs []string // each must appear in the error
	}{
		{"line without '='", "READY", []string{"line 1", `"READY"`, "no '='"}},
		{"second line without '='", "READY=1\nbogus", []string{"line 2", `"bogus"`}},
		{"line after an empty line is counted", "READY=1\n\nbogus", []string{"line 3"}},
		{"no name", "=1", []string{"line 1", "no name"}},
		{"NUL byte", "READY=1\nSTATUS=a\x00b", []string{"line 2", "NUL", "column 9"}},
		{"NUL alone", "\x00", []string{"line 1", "NUL"}},
		{"too long", "STATUS=" + strings.Repeat("x", MaxDatagram), []string{"4103 bytes", "4096"}},
		{"not UTF-8", "READY=1\nSTATUS=\xff", []string{"line 2", "UTF-8", "0xff", "column 8"}},
		{"truncated rune", "STATUS=\xc3", []string{"line 1", "UTF-8", "0xc3"}},
		{"long bad line quoted short", strings.Repeat("y", 1000), []string{"line 1", `"...`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("Parse(%q) = %s, want an error", tc.in, describe(m))
			}
			for _, want := range tc.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if len(err.Error()) > 200 {
				t.Errorf("error is %d bytes; a hostile line must not be echoed whole", len(err.Error()))
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		in   Message
		want string
	}{
		{"empty", Message{}, ""},
		{"ready and status", Message{Ready: true, Status: strPtr("up")}, "READY=1\nSTATUS=up"},
		{"newline in status becomes a space", Message{Status: strPtr("a\nb")}, "STATUS=a b"},
		{"long status cut", Message{Status: strPtr(strings.Repeat("z", 300))}, "STATUS=" + strings.Repeat("z", MaxStatus)},
		{"numbers", Message{MainPID: 7, Errno: 5, ExtendTimeoutUSec: 9},
			"MAINPID=7\nERRNO=5\nEXTEND_TIMEOUT_USEC=9"},
		{"watchdog both", Message{Watchdog: true, WatchdogTrigger: true}, "WATCHDOG=1\nWATCHDOG=trigger"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.Format(); got != tc.want {
				t.Fatalf("Format() = %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"READY=1", "READY=1\nSTATUS=x=y\n", "WATCHDOG=trigger", "MAINPID=+12\nERRNO=3",
		"EXTEND_TIMEOUT_USEC=18446744073709551615", "STATUS=" + strings.Repeat("é", 200),
		"bogus", "=", "\x00", "\xff", "STATUS=a\n\nREADY=1", "STATUS=\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		if m.Status != nil && (len(*m.Status) > MaxStatus || !utf8.ValidString(*m.Status)) {
			t.Fatalf("Parse(%q): status %q is longer than %d bytes or not UTF-8", b, *m.Status, MaxStatus)
		}
		out := m.Format()
		if len(out) > MaxDatagram {
			t.Fatalf("Format of Parse(%q) is %d bytes, more than a datagram", b, len(out))
		}
		again, err := Parse([]byte(out))
		if err != nil {
			t.Fatalf("Parse(Format(Parse(%q))) = %v; Format wrote %q", b, err, out)
		}
		if !sameMessage(m, again) {
			t.Fatalf("round trip of %q: %s became %s", b, describe(m), describe(again))
		}
	})
}
