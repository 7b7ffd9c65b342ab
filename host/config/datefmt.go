package config

import (
	"fmt"
	"strings"
	"time"
)

// PM2's log_date_format is a moment.js (dayjs) format. pmdaemon's log writer formats times
// with Go's time package, so a format is translated once, when the app is read, into a Go
// layout; a token that has no Go equivalent is an error then, not a garbled log line later.

// DefaultLogDateFormat is the format `time: true` stamps lines with. PM2's is
// "YYYY-MM-DDTHH:mm:ss"; pmdaemon adds milliseconds and the zone, so that lines of instances
// that write within the same second, or across a change of daylight saving time, still merge
// in the order they were written.
const DefaultLogDateFormat = "YYYY-MM-DDTHH:mm:ss.SSSZ"

// momentTokens are the moment.js tokens with a Go layout equivalent.
var momentTokens = map[string]string{
	"YYYY": "2006", "YY": "06",
	"MMMM": "January", "MMM": "Jan", "MM": "01", "M": "1",
	"DDDD": "002", "DD": "02", "D": "2",
	"dddd": "Monday", "ddd": "Mon",
	"HH": "15", "hh": "03", "h": "3",
	"mm": "04", "m": "4",
	"ss": "05", "s": "5",
	"SSS": "000", "SS": "00", "S": "0", // after a '.' or ',' (see below)
	"A": "PM", "a": "pm",
	"Z": "-07:00", "ZZ": "-0700",
}

// momentUnsupported are moment.js tokens Go cannot format, with what to use instead.
var momentUnsupported = map[string]string{
	"H": "HH", "k": "HH", "kk": "HH", "Do": "D", "X": "a date", "x": "a date",
	"Q": "MM", "w": "a date", "ww": "a date", "W": "a date", "WW": "a date",
	"E": "ddd", "e": "ddd", "d": "ddd", "dd": "ddd", "gggg": "YYYY", "GGGG": "YYYY",
	"DDD": "DDDD", "SSSS": "SSS", "z": "Z", "zz": "Z", "N": "a date", "NN": "a date",
}

// MomentLayout translates a moment.js date format into a Go time layout. Runs of one letter
// are tokens (YYYY, MM, DD, HH, mm, ss, SSS, Z, ...); "T" alone and text in [brackets] are
// literal; other characters are kept as they are. A token Go cannot format, an unknown one,
// fractional seconds not right after "." or ",", or literal text Go would read as a date field
// (a digit, "Jan", "Mon", "PM", "MST") is an error saying which.
func MomentLayout(format string) (string, error) {
	if strings.TrimSpace(format) == "" {
		return "", fmt.Errorf("must not be empty")
	}
	var b strings.Builder
	rs := []rune(format)
	for i := 0; i < len(rs); {
		c := rs[i]
		switch {
		case c == '[':
			end := i + 1
			for end < len(rs) && rs[end] != ']' {
				end++
			}
			if end == len(rs) {
				return "", fmt.Errorf("%q: a [ without its ]", format)
			}
			lit := string(rs[i+1 : end])
			if err := literalSafe(lit); err != nil {
				return "", fmt.Errorf("%q: %v", format, err)
			}
			b.WriteString(lit)
			i = end + 1
		case isLetter(c):
			j := i
			for j < len(rs) && rs[j] == c {
				j++
			}
			tok := string(rs[i:j])
			if tok == "D" && j < len(rs) && rs[j] == 'o' {
				tok, j = "Do", j+1
			}
			i = j
			if tok == "T" {
				b.WriteString("T")
				continue
			}
			layout, ok := momentTokens[tok]
			if !ok {
				if instead, known := momentUnsupported[tok]; known {
					return "", fmt.Errorf("%q: token %s cannot be written by pmdaemon; use %s", format, tok, instead)
				}
				return "", fmt.Errorf("%q: unknown token %s (known: YYYY YY MMMM MMM MM M DDDD DD D dddd ddd HH hh h mm m ss s SSS SS S A a Z ZZ, [literal text])", format, tok)
			}
			if tok[0] == 'S' {
				s := b.String()
				if s == "" || (s[len(s)-1] != '.' && s[len(s)-1] != ',') {
					return "", fmt.Errorf("%q: fractional seconds (%s) must follow \".\" or \",\", as in ss.SSS", format, tok)
				}
			}
			b.WriteString(layout)
		case c >= '0' && c <= '9':
			return "", fmt.Errorf("%q: a digit outside [brackets] would be read as a date field", format)
		default:
			b.WriteRune(c)
			i++
		}
	}
	layout := b.String()
	// A layout that cannot read back what it wrote would give lines `logs` cannot order.
	ref := time.Date(2024, 11, 5, 21, 4, 5, 678_000_000, time.Local)
	if _, err := time.ParseInLocation(layout, ref.Format(layout), time.Local); err != nil {
		return "", fmt.Errorf("%q: its times cannot be read back (%v)", format, err)
	}
	return layout, nil
}

func isLetter(c rune) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// literalSafe refuses literal text that Go's layout would take for a field.
func literalSafe(lit string) error {
	for _, w := range []string{"Jan", "Mon", "MST", "PM", "pm"} {
		if strings.Contains(lit, w) {
			return fmt.Errorf("literal text %q holds %q, which a Go layout reads as a date field", lit, w)
		}
	}
	if strings.ContainsAny(lit, "0123456789") {
		return fmt.Errorf("literal text %q holds a digit, which a Go layout reads as a date field", lit)
	}
	return nil
}

// LogTimeLayout is the Go layout the app's log lines are stamped with, "" when they are not:
// log_date_format when set (as PM2, which stamps lines whenever it is set), else the default
// with `time: true`, and for log_type "json" (whose lines always carry a timestamp) PM2's
// ISO 8601 in UTC with milliseconds. The format was checked by Validate.
func (a *App) LogTimeLayout() string {
	switch {
	case a.LogDateFormat != "":
		l, _ := MomentLayout(a.LogDateFormat)
		return l
	case a.Time:
		l, _ := MomentLayout(DefaultLogDateFormat)
		return l
	case a.LogType == LogTypeJSON:
		return ISOLayout
	}
	return ""
}

// ISOLayout is JavaScript's Date.toISOString(), which PM2's JSON log lines carry by default;
// the writer formats it in UTC.
const ISOLayout = "2006-01-02T15:04:05.000Z07:00"

// Log types: raw lines (PM2's default) or one JSON object a line.
const (
	LogTypeRaw  = "raw"
	LogTypeJSON = "json"
)

// StampsLogs reports whether the app's output goes through pmdaemon's log writer (lines
// stamped or turned into JSON, or copied into a combined log_file) rather than straight into
// its files.
func (a *App) StampsLogs() bool {
	return a.LogTimeLayout() != "" || a.LogType == LogTypeJSON || a.LogFile != ""
}
