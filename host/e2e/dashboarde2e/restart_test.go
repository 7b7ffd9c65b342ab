package dashboarde2e

import (
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// A restart made with the CLI shows in the open page within a second of the CLI's return,
// without a reload: the event stream tells the page, which fetches the list again. The one
// timing bound here is the issue's own requirement; the time taken is logged.
func TestCLIRestartShowsWithinASecond(t *testing.T) {
	h := harness.NewHome(t)
	port := harness.FreePorts(t, 1)
	h.OK("start", harness.Echo, "--name", "web", "--port", itoa(port))
	before := h.WaitOnline("web", 1)[0]
	w := openWeb(t, h)
	browser := newBrowser(t)
	tb := openTab(t, browser, w, "/?token="+w.read)
	tb.mustPoll(20*time.Second, "the page live with web's pid", `document.querySelector('#connection').dataset.state === 'live' && `+
		rowExpr(before.ID)+`.pid === `+itoa(before.Pid))
	// A mark in this document: a reload would make a new one without it.
	eval[bool](tb, `window.pmdaemonTestMark = true`)

	for round := 1; round <= 2; round++ {
		old := h.APIList()[0]
		start := time.Now()
		h.OK("restart", "web")
		returned := time.Now()
		now := h.APIList()[0]
		if now.Pid == old.Pid || now.Restarts != old.Restarts+1 {
			t.Fatalf("round %d: the daemon lists %+v after the restart of %+v", round, now, old)
		}
		// The page must show the daemon's new pid and count within a second of the CLI's return.
		_, err := poll[bool](tb, time.Until(returned.Add(time.Second)), "the new pid in the page",
			rowExpr(now.ID)+`.pid === `+itoa(now.Pid)+` && `+rowExpr(now.ID)+`.restarts === `+itoa(now.Restarts))
		seen := time.Since(returned)
		if err != nil {
			t.Fatalf("round %d: the page did not show pid %d, restarts %d within 1s of the CLI's return (%v): %v\npage: %s",
				round, now.Pid, now.Restarts, seen, err, tb.describe())
		}
		t.Logf("round %d: the CLI's restart took %v; the page showed the new pid %v after it returned", round, returned.Sub(start), seen)
	}
	if !eval[bool](tb, `window.pmdaemonTestMark === true`) {
		t.Error("the page was loaded again")
	}
}
