package faults

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// A daemon killed between creating the temp file of a state or dump write and renaming it
// leaves that file behind; one per crash piled up. The next daemon removes them at start (it
// holds the lock, so no write of its own is in progress), and only them: a symlink or a
// directory of the same name, and whatever a symlink points to, are left alone.
func TestStaleTempFilesRemovedAtStart(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 1000", "--name", "web")
	h.WaitList(10*time.Second, "web online", harness.AllOnline("web", 1))
	sigkillDaemon(t, h, oneDaemon(t, h))

	outside := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(outside, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := []string{".state.json.tmp-2718281828", ".state.json.tmp-31415", ".dump.json.tmp-1618033"}
	for _, name := range stale {
		if err := os.WriteFile(filepath.Join(h.Dir, name), []byte(`{"version": 1, "apps": [`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kept := []string{".state.json.tmp-404", ".state.json.tmp-405", ".state.json.tmp-x"}
	if err := os.Symlink(outside, filepath.Join(h.Dir, kept[0])); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(h.Dir, kept[1]), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.Dir, kept[2]), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	h.WaitList(10*time.Second, "web taken back", harness.AllOnline("web", 1))
	for _, name := range stale {
		if _, err := os.Lstat(filepath.Join(h.Dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after the daemon started (%v)", name, err)
		}
		if log := h.DaemonLog(); !strings.Contains(log, "removed "+filepath.Join(h.Dir, name)) {
			t.Errorf("daemon.log does not say it removed %s:\n%s", name, log)
		}
	}
	for _, name := range kept {
		if _, err := os.Lstat(filepath.Join(h.Dir, name)); err != nil {
			t.Errorf("%s was removed: %v", name, err)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep me" {
		t.Errorf("the symlink's target: %q, %v", b, err)
	}
}
