// Package faults is the fault-injection suite: it runs the real pmdaemon binary and hurts it
// the way production does (kill -9 of the daemon, pid reuse, crash loops, a corrupt or full
// state disk, racing CLIs, apps that ignore SIGTERM, SIGTERM to the daemon) and checks that
// no app is lost, duplicated, orphaned or wrongly signalled.
package faults

import (
	"os"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
