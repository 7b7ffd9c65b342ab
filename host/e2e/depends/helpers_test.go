package depends

import (
	"os"
	"os/exec"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Shared with the other e2e packages (host/e2e/harness).
var (
	js    = harness.JSON
	write = harness.WriteFile
)

// needNode fails the test when node is missing: test.sh installs it.
func needNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: these tests run real node apps (test.sh installs it)")
	}
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// row is the only instance of app name in rows, or fails.
func row(t *testing.T, rows []api.Instance, name string) api.Instance {
	t.Helper()
	rs := harness.Rows(rows, name)
	if len(rs) != 1 {
		t.Fatalf("%s has %d instances listed, want 1: %+v", name, len(rs), rows)
	}
	return rs[0]
}
