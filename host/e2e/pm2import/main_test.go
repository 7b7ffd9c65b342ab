// Package pm2import tests, with the real binary, what a PM2 user moving to pmdaemon meets:
// `pmdaemon import pm2` of a real PM2 7's list, namespaces as targets, and pid files.
package pm2import

import (
	"os"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
