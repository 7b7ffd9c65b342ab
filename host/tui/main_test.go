package tui

import (
	"os"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// The model's tests drive a real daemon (the harness builds pmdaemon once per run): the list,
// the actions and the logs are the daemon's and the apps', not stand-ins.
func TestMain(m *testing.M) {
	os.Exit(harness.Main(m))
}
