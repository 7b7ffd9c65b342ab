// Package dashboarde2e tests the web dashboard in a real headless Chromium driven over the
// DevTools protocol (chromedp), against the real daemon running real apps: the table, its
// updates from the event stream, the buttons with admin and read tokens, the app page, and
// the token kept out of URLs. With PMDAEMON_SCREENSHOTS=1 it also writes the screenshots of
// docs/dashboard.md.
package dashboarde2e

import (
	"os"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
