package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"time"
)

// Duration is the one duration format of the wire. It is written as a Go duration string
// ("1.5s", "500ms") and read from such a string or from a whole number of nanoseconds: the
// number is how Go encodes a time.Duration, which is what clients of pmdaemon before 0.2.0
// sent, so an older CLI's durations are read as it meant them (a number read as milliseconds
// would make its 5s kill timeout 58 days). Ecosystem files, unlike the API, take whole
// numbers as milliseconds, as PM2's do (host/config).
type Duration time.Duration

// Std is d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// durationHint is what a bad duration is told to look like.
const durationHint = `a duration is a string such as "1.5s" or "500ms", or a whole number of nanoseconds`

// UnmarshalJSON reads a duration string or a whole number of nanoseconds. A bad value is a
// *json.UnmarshalTypeError, so that the decoder names the field it was found in.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil // as for any other type: left as it was
	}
	bad := func(what string) error {
		return &json.UnmarshalTypeError{Value: what + " (" + durationHint + ")", Type: reflect.TypeFor[Duration]()}
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return bad("string " + string(b))
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return bad(strconv.Quote(s))
		}
		*d = Duration(v)
		return nil
	}
	if len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		ns, err := strconv.ParseInt(string(b), 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			return bad("number " + abbreviate(b) + " is too large")
		}
		if err != nil {
			return bad("number " + abbreviate(b) + " is not a whole number of nanoseconds")
		}
		*d = Duration(ns)
		return nil
	}
	kind := "value"
	switch b[0] {
	case 't', 'f':
		kind = "bool"
	case '[':
		kind = "array"
	case '{':
		kind = "object"
	}
	return bad(kind + " " + abbreviate(b))
}

// abbreviate keeps an error about a big value short.
func abbreviate(b []byte) string {
	if len(b) > 40 {
		return string(b[:37]) + "..."
	}
	return string(b)
}
