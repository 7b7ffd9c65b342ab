// Package pm2compat runs files of the PM2 corpus (host/config/testdata/pm2) under a real PM2 7
// and under pmdaemon, and checks that both run the same apps: names, instance counts, the
// environment of each instance and the ports that answer.
package pm2compat

import (
	"os"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
