// Package bench measures the real binary: CLI latency and daemon memory. Run with
//
//	go test -run '^$' -bench . -benchtime 50x ./host/e2e/bench/
//
// Figures are reported per benchmark (ms/list, MB idle, MB with 100 instances).
package bench

import (
	"os"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
