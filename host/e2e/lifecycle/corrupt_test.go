package lifecycle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// A state file that cannot be read back is moved aside with its bytes intact, the user is told
// where it went, and the daemon starts and works.
func TestCorruptStateFileMovedAside(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"empty":     "",
		"truncated": `{"version": 1, "next_id": 3, "apps": [{"config": {"name": "web"`,
		"garbage":   "\x00\xff not json at all",
		"version":   `{"version": 99, "next_id": 0, "apps": []}`,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := harness.NewHome(t)
			if err := os.MkdirAll(h.Dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(h.Dir, "state.json"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			r := h.Run("list", "--json")
			if r.Code != 0 {
				t.Fatalf("list failed: %s", r.Stderr)
			}
			if !strings.Contains(r.Stderr, "Warning: state file") || !strings.Contains(r.Stderr, "corrupt") {
				t.Errorf("stderr does not report the corrupt state file: %q", r.Stderr)
			}
			aside, _ := filepath.Glob(filepath.Join(h.Dir, "state.json.corrupt-*"))
			if len(aside) != 1 {
				t.Fatalf("want one aside file, got %v", aside)
			}
			if !strings.Contains(r.Stderr, aside[0]) {
				t.Errorf("stderr does not name the aside file %s: %q", aside[0], r.Stderr)
			}
			if b, _ := os.ReadFile(aside[0]); string(b) != content {
				t.Errorf("aside file holds %q, want the original bytes %q", b, content)
			}
			// The daemon works, and writes a good state file again.
			h.OK("start", "sleep 100000", "--name", "after")
			if got := len(h.List()); got != 1 {
				t.Errorf("list has %d rows, want 1", got)
			}
		})
	}
}
