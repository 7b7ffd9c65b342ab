package lifecycle

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Bad input fails with a non-zero exit, "Error: " on stderr naming the flag or value, and
// starts nothing.
func TestInputErrorsNameTheFlagAndStartNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	h := harness.NewHome(t)
	cases := []struct {
		name     string
		args     []string
		mention  []string
		needUser bool // root reads any directory
	}{
		{"unknown command", []string{"frobnicate"}, []string{"unknown command", "frobnicate"}, false},
		{"missing script", []string{"start", "./nope.sh", "--cwd", dir}, []string{"./nope.sh", "not found"}, false},
		{"missing script no cwd", []string{"start", "./nope.sh"}, []string{"./nope.sh", "not found"}, false},
		{"nonexistent cwd", []string{"start", "sleep 1000", "--cwd", filepath.Join(dir, "absent")}, []string{filepath.Join(dir, "absent")}, false},
		{"cwd is a file", []string{"start", "sleep 1000", "--cwd", file}, []string{file, "not a directory"}, false},
		{"unreadable cwd", []string{"start", "sleep 1000", "--cwd", locked}, []string{locked}, true},
		{"instances -1", []string{"start", "sleep 1000", "--instances", "-1"}, []string{"--instances", "-1"}, false},
		{"instances abc", []string{"start", "sleep 1000", "--instances", "abc"}, []string{"--instances", "abc"}, false},
		{"instances 0", []string{"start", "sleep 1000", "--instances", "0"}, []string{"--instances", "0"}, false},
		{"kill-timeout xyz", []string{"start", "sleep 1000", "--kill-timeout", "xyz"}, []string{"--kill-timeout", "xyz"}, false},
		{"min-uptime -5s", []string{"start", "sleep 1000", "--min-uptime", "-5s"}, []string{"--min-uptime", "-5s"}, false},
		{"max-memory 12Q", []string{"start", "sleep 1000", "--max-memory", "12Q"}, []string{"--max-memory", "12Q"}, false},
		{"env without =", []string{"start", "sleep 1000", "--env", "NOEQUALS"}, []string{"--env", "NOEQUALS"}, false},
		{"unknown flag", []string{"start", "sleep 1000", "--frobnicate"}, []string{"--frobnicate"}, false},
		{"stop without target", []string{"stop"}, []string{"TARGET"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needUser && os.Geteuid() == 0 {
				t.Skip("root can read a mode 000 directory")
			}
			r := h.Run(tc.args...)
			if r.Code == 0 {
				t.Fatalf("pmdaemon %q succeeded:\n%s", tc.args, r.Stdout)
			}
			harness.ErrLike(t, r.Stderr, tc.mention...)
		})
	}
	if rows := h.List(); len(rows) != 0 {
		t.Errorf("bad input started something: %+v", rows)
	}
	if ps := h.AppProcs(); len(ps) != 0 {
		t.Errorf("app processes after bad input: %v", ps)
	}
}
