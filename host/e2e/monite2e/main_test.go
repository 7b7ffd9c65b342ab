// Package monite2e runs `pmdaemon monit` in a real terminal: tmux gives it a pane of a set
// size, send-keys types and capture-pane reads the screen, while a real daemon runs real apps.
package monite2e

import (
	"os"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m))
}
