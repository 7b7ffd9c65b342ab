package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
)

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KB"},
		{1536, "1.5 KB"},
		{512 << 10, "512.0 KB"},
		{1 << 20, "1.0 MB"},
		{47395635, "45.2 MB"}, // the seed's example
		{1<<30 - 1<<20, "1023.0 MB"},
		{1 << 30, "1.00 GB"},
		{3 << 29, "1.50 GB"},
		{1 << 40, "1024.00 GB"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.in); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatUptime(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{999 * time.Millisecond, "0s"},
		{12 * time.Second, "12s"},
		{59 * time.Second, "59s"},
		{60 * time.Second, "1m 0s"},
		{3*time.Minute + 4*time.Second, "3m 4s"},
		{59*time.Minute + 59*time.Second, "59m 59s"},
		{time.Hour, "1h 0m"},
		{2*time.Hour + 15*time.Minute + 30*time.Second, "2h 15m"},
		{23*time.Hour + 59*time.Minute, "23h 59m"},
		{24 * time.Hour, "1d 0h"},
		{51*time.Hour + 10*time.Minute, "2d 3h"},
	}
	for _, tt := range tests {
		if got := FormatUptime(tt.in); got != tt.want {
			t.Errorf("FormatUptime(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStatusLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"online", "🟢 Online"},
		{"stopped", "⚪ Stopped"},
		{"errored", "🔴 Errored"},
		{"waiting-restart", "🟡 Waiting restart"},
		{"starting", "🟡 Starting"},
		{"stopping", "🟡 Stopping"},
		{"launching", "launching"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := StatusLabel(tt.in); got != tt.want {
			t.Errorf("StatusLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// cells splits a table line drawn with light box characters into trimmed cells.
func cells(line string) []string {
	parts := strings.Split(line, "│")
	if len(parts) < 3 {
		return nil
	}
	var out []string
	for _, p := range parts[1 : len(parts)-1] {
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

// The table is the same on a terminal and off one but for the status: with its colour dot
// and a capital on a terminal, as the daemon names it elsewhere.
func TestRenderList(t *testing.T) {
	port := 3000
	rows := []api.Instance{
		{ID: 0, Name: "web-cluster", Status: "online", Pid: 1234, Port: &port, CPU: 2.5, Memory: 47395635,
			UptimeMS: (2*time.Hour + 15*time.Minute).Milliseconds(), Restarts: 0},
		{ID: 7, Name: "worker", Status: "stopped", Pid: 0, Port: nil, CPU: 0, Memory: 0, UptimeMS: 5000, Restarts: 3},
	}
	for _, tt := range []struct {
		fancy    bool
		statuses []string
	}{
		{true, []string{"🟢 Online", "⚪ Stopped"}},
		{false, []string{"online", "stopped"}},
	} {
		var buf bytes.Buffer
		if err := RenderList(&buf, rows, tt.fancy); err != nil {
			t.Fatal(err)
		}
		var table [][]string
		for _, line := range strings.Split(buf.String(), "\n") {
			if c := cells(line); c != nil {
				table = append(table, c)
			}
		}
		if len(table) != 3 {
			t.Fatalf("want a header and 2 rows, got %d lines with cells:\n%s", len(table), buf.String())
		}
		wantHeader := []string{"ID", "Name", "Status", "PID", "Port", "CPU (%)", "Memory", "Uptime", "Restarts"}
		if !reflect.DeepEqual(table[0], wantHeader) {
			t.Fatalf("header = %q, want %q\n%s", table[0], wantHeader, buf.String())
		}
		if !reflect.DeepEqual(ListHeader, wantHeader) {
			t.Fatalf("ListHeader = %q", ListHeader)
		}
		want := [][]string{
			{"0", "web-cluster", tt.statuses[0], "1234", "3000", "2.5", "45.2 MB", "2h 15m", "0"},
			{"7", "worker", tt.statuses[1], "-", "-", "0.0", "0 B", "-", "3"},
		}
		for i, w := range want {
			if !reflect.DeepEqual(table[i+1], w) {
				t.Errorf("fancy %v: row %d = %q, want %q\n%s", tt.fancy, i, table[i+1], w, buf.String())
			}
		}
	}
}

func TestRenderListEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderList(&buf, nil, false); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"ID", "Name", "Status", "PID", "Port", "CPU (%)", "Memory", "Uptime", "Restarts"} {
		if !strings.Contains(buf.String(), h) {
			t.Errorf("empty list output lacks %q:\n%s", h, buf.String())
		}
	}
}
