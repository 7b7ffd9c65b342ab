// Package healthe2e tests health checks and readiness end to end: the real daemon, the echo
// app's /health endpoint flipped by a file, and a reload under load through a real nginx.
package healthe2e

import (
	"os"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
