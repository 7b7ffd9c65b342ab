// Package webe2e runs the real binary's web listener: tokens over TCP, the CLI's web and
// events commands, a real Prometheus scraping the daemon, and a thousand event streams at
// once while apps crash.
package webe2e

import (
	"os"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
