// Package depends tests, end to end, PM2's wait_ready protocol (process.send('ready') over
// the IPC channel), listen_timeout, and depends_on: start order, conditions, stop order.
package depends

import (
	"os"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
