package faults

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// realState has a daemon write a real state file (two apps, one of them with two instances),
// stops it with `kill`, and returns the file's bytes.
func realState(t *testing.T, h *harness.Home) []byte {
	t.Helper()
	h.OK("start", "sleep 1000", "--name", "web", "--instances", "2", "--env", "A=1")
	h.OK("start", "sleep 1000", "--name", "worker")
	h.OK("kill")
	b, err := os.ReadFile(filepath.Join(h.Dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"web"`)) || !bytes.HasSuffix(b, []byte("}\n")) {
		t.Fatalf("unexpected real state file:\n%s", b)
	}
	return b
}

// A state file that cannot be read back, in the ways lifecycle's
// TestCorruptStateFileMovedAside does not try: a real file cut anywhere, padded with the zeros
// a crash can leave, from a newer pmdaemon, valid JSON of the wrong shape, or breaking the
// file's own rules. Each is moved aside byte for byte, the CLI's warning and the daemon log
// name the aside file, and the daemon starts with no apps, works, and writes a good state file
// that the next daemon reads.
func TestCorruptStateFileVariants(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// make returns the content to plant, given a real state file (nil: no real one needed).
		make func(real []byte) []byte
		real bool
	}{
		{name: "whitespace", make: func([]byte) []byte { return []byte(" \n\t\n") }},
		{name: "real_cut_in_half", real: true, make: func(r []byte) []byte { return r[:len(r)/2] }},
		{name: "real_cut_at_first_instance", real: true, make: func(r []byte) []byte {
			return r[:bytes.Index(r, []byte(`"instances"`))+len(`"instances": [`)]
		}},
		{name: "real_missing_last_brace", real: true, make: func(r []byte) []byte { return r[:len(r)-2] }},
		{name: "real_zero_padded", real: true, make: func(r []byte) []byte { return append(r[:len(r):len(r)], make([]byte, 4096)...) }},
		{name: "all_zeros", real: true, make: func(r []byte) []byte { return make([]byte, len(r)) }},
		{name: "real_future_version", real: true, make: func(r []byte) []byte {
			return bytes.Replace(r, []byte(`"version":1,`), []byte(`"version":2,`), 1)
		}},
		{name: "real_unknown_field", real: true, make: func(r []byte) []byte {
			return bytes.Replace(r, []byte(`"version":1,`), []byte(`"version":1,"from_the_future":true,`), 1)
		}},
		{name: "real_trailing_data", real: true, make: func(r []byte) []byte { return append(r[:len(r):len(r)], "{}\n"...) }},
		{name: "real_doubled", real: true, make: func(r []byte) []byte { return append(r[:len(r):len(r)], r...) }},
		{name: "json_array", make: func([]byte) []byte { return []byte("[]\n") }},
		{name: "json_null", make: func([]byte) []byte { return []byte("null\n") }},
		{name: "json_string", make: func([]byte) []byte { return []byte(`"state"`) }},
		{name: "apps_not_a_list", make: func([]byte) []byte { return []byte(`{"version": 1, "next_id": 0, "apps": {}}`) }},
		{name: "instances_not_a_list", make: func([]byte) []byte {
			return []byte(`{"version": 1, "next_id": 1, "apps": [{"config": {"name": "x", "script": "sleep"}, "instances": "none"}]}`)
		}},
		{name: "duplicate_names", make: func([]byte) []byte {
			return []byte(`{"version": 1, "next_id": 2, "apps": [
				{"config": {"name": "x", "script": "sleep 1000"}, "instances": [{"id": 0}]},
				{"config": {"name": "x", "script": "sleep 1000"}, "instances": [{"id": 1}]}]}`)
		}},
		{name: "id_beyond_next_id", make: func([]byte) []byte {
			return []byte(`{"version": 1, "next_id": 0, "apps": [{"config": {"name": "x", "script": "sleep 1000"}, "instances": [{"id": 0}]}]}`)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := harness.NewHome(t)
			var real []byte
			if tc.real {
				real = realState(t, h)
			} else if err := os.MkdirAll(h.Dir, 0o700); err != nil {
				t.Fatal(err)
			}
			content := tc.make(real)
			statePath := filepath.Join(h.Dir, "state.json")
			if err := os.WriteFile(statePath, content, 0o600); err != nil {
				t.Fatal(err)
			}
			r := h.Run("list", "--json")
			if r.Code != 0 {
				t.Fatalf("list with a corrupt state file: exit %d, stderr %q", r.Code, r.Stderr)
			}
			if strings.TrimSpace(r.Stdout) != "[]" {
				t.Errorf("list after a corrupt state file: %s, want no apps", r.Stdout)
			}
			aside, _ := filepath.Glob(statePath + ".corrupt-*")
			if len(aside) != 1 {
				t.Fatalf("want one aside file, got %v (stderr %q)", aside, r.Stderr)
			}
			if !strings.HasPrefix(r.Stderr, "Warning: ") || !strings.Contains(r.Stderr, aside[0]) {
				t.Errorf("stderr does not warn naming the aside file %s: %q", aside[0], r.Stderr)
			}
			if got, _ := os.ReadFile(aside[0]); !bytes.Equal(got, content) {
				t.Errorf("the aside file holds %d bytes %q, want the original %d bytes", len(got), trim(got), len(content))
			}
			if log := h.DaemonLog(); !strings.Contains(log, aside[0]) {
				t.Errorf("daemon.log does not name the aside file %s:\n%s", aside[0], log)
			}
			if ps := h.AppProcs(); len(ps) != 0 {
				t.Errorf("app processes after a corrupt state file: %v", ps)
			}
			// It works, writes a good file, and the next daemon reads it without complaint.
			h.OK("start", "sleep 1000", "--name", "after")
			h.WaitList(10*time.Second, "after online", harness.AllOnline("after", 1))
			h.OK("kill")
			r = h.Run("list", "--json")
			if r.Code != 0 || strings.Contains(r.Stderr, "Warning") {
				t.Errorf("the next daemon: exit %d, stderr %q", r.Code, r.Stderr)
			}
			rows := h.WaitList(10*time.Second, "after back online", harness.AllOnline("after", 1))
			if len(rows) != 1 {
				t.Errorf("rows after the daemon restart: %+v", rows)
			}
			if again, _ := filepath.Glob(statePath + ".corrupt-*"); len(again) != 1 {
				t.Errorf("aside files after the next daemon: %v", again)
			}
			if got, _ := os.ReadFile(aside[0]); !bytes.Equal(got, content) {
				t.Errorf("the aside file changed after the next daemon")
			}
		})
	}
}

func trim(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
