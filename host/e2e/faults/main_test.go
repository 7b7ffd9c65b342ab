// Package faults is the fault-injection suite: it runs the real pmdaemon binary and hurts it
// the way production does (kill -9 of the daemon, pid reuse, crash loops, a corrupt or full
// state disk, racing CLIs, apps that ignore SIGTERM, SIGTERM to the daemon) and checks that
// no app is lost, duplicated, orphaned or wrongly signalled.
package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// plainEcho is the echo demo app built without the race detector. The kill-anywhere test
// starts thousands of instances; a -race echo costs many times the CPU and memory to start,
// and the app is not the code under test (the daemon is, and it keeps -race).
var plainEcho string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pmd-plain-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	plainEcho = filepath.Join(dir, "echo")
	cmd := exec.Command("go", "build", "-o", plainEcho, "./examples/apps/echo")
	cmd.Dir = harness.ModuleRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the plain echo app: %v\n%s", err, b)
		return 1
	}
	return harness.Main(m)
}
