package logs

import (
	"encoding/json"
	"sort"
	"strings"
	"time"
)

// Reading the times back: `pmdaemon logs` merges the last lines of several files (instances,
// apps, out and err) into one stream in the order they were written, which it can do for lines
// the log writer stamped (stamp.go).

// LineFormat says how the lines of a log file carry their time.
type LineFormat struct {
	// Layout is the Go layout of the stamp; "" when lines carry no time.
	Layout string
	// JSON lines carry it in "timestamp"; other lines start with it, then ": ".
	JSON bool
}

// maxStamp bounds how far into a line a stamp is looked for.
const maxStamp = 96

// TimeOf reads the time line was stamped with; ok is false for a line without one (written
// before the app was stamped, or by something else).
func (f LineFormat) TimeOf(line string) (t time.Time, ok bool) {
	if f.Layout == "" {
		return time.Time{}, false
	}
	if f.JSON {
		if !strings.HasPrefix(line, "{") {
			return time.Time{}, false
		}
		var j struct {
			Timestamp string `json:"timestamp"`
		}
		if json.Unmarshal([]byte(line), &j) != nil {
			return time.Time{}, false
		}
		t, err := time.ParseInLocation(f.Layout, j.Timestamp, time.Local)
		return t, err == nil
	}
	// The stamp ends at a ": "; a layout may hold one itself, so each is tried in turn.
	for i := 0; i < len(line) && i < maxStamp; {
		j := strings.Index(line[i:], ": ")
		if j < 0 {
			break
		}
		if t, err := time.ParseInLocation(f.Layout, line[:i+j], time.Local); err == nil {
			return t, true
		}
		i += j + 1
	}
	return time.Time{}, false
}

// Entry is one line of one source (a file) in a merge.
type Entry struct {
	Source int
	Text   string
	// Time is when the line was written; zero when no line of its source up to it says.
	Time time.Time
}

// Entries reads the times of the lines of source, each line of a stamped file without a stamp
// of its own (a line of the app's from before it was stamped) taking the time of the line
// before it.
func Entries(source int, lines []string, f LineFormat) []Entry {
	out := make([]Entry, len(lines))
	var last time.Time
	for i, l := range lines {
		if t, ok := f.TimeOf(l); ok {
			last = t
		}
		out[i] = Entry{Source: source, Text: l, Time: last}
	}
	return out
}

// Merge puts the entries of several sources (each in its file's order) into one list in the
// order they were written: by time, lines of one time in source order and within a source in
// file order. Entries without a time come first, source after source, as they are: nothing
// says where they go among the others.
func Merge(sources ...[]Entry) []Entry {
	var all []Entry
	for _, s := range sources {
		all = append(all, s...)
	}
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		switch {
		case a.Time.IsZero() || b.Time.IsZero():
			return a.Time.IsZero() && !b.Time.IsZero()
		case !a.Time.Equal(b.Time):
			return a.Time.Before(b.Time)
		}
		return a.Source < b.Source
	})
	return all
}
