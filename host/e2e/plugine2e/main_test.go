// Package plugine2e tests plugins end to end: the real daemon, the real reference plugins and
// deliberately broken ones, built once per test run, and a real nginx.
package plugine2e

import (
	"os"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

var reservedRange, nginxUpstream, eventlog, faulty, garbage, badshake string

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m,
		harness.Binary{Path: &reservedRange, Pkg: "./plugins/reserved-range"},
		harness.Binary{Path: &nginxUpstream, Pkg: "./plugins/nginx-upstream"},
		harness.Binary{Path: &eventlog, Pkg: "./examples/plugins/eventlog"},
		harness.Binary{Path: &faulty, Pkg: "./host/e2e/plugine2e/testplugins/faulty"},
		harness.Binary{Path: &garbage, Pkg: "./host/e2e/plugine2e/testplugins/garbage"},
		harness.Binary{Path: &badshake, Pkg: "./host/e2e/plugine2e/testplugins/badshake"},
	))
}
