package dashboarde2e

import (
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// When the daemon is replaced (`pmdaemon update`: its connections close, the next daemon opens
// the same listener), the open page reconnects by itself, says so meanwhile, and follows the
// new daemon's events: a restart after it still shows without a reload.
func TestReconnectsToTheNextDaemon(t *testing.T) {
	h := harness.NewHome(t)
	h.OK("start", harness.Echo, "--name", "web", "--port", itoa(harness.FreePorts(t, 1)))
	h.WaitOnline("web", 1)
	w := openWeb(t, h)
	browser := newBrowser(t)
	tb := openTab(t, browser, w, "/?token="+w.read)
	tb.mustPoll(20*time.Second, "the page live", `document.querySelector('#connection').dataset.state === 'live'`)
	// Every state the badge goes through from now on, and a mark a reload would lose.
	eval[bool](tb, `(() => {
		const conn = document.querySelector('#connection');
		window.pmdaemonTestStates = [];
		new MutationObserver(() => pmdaemonTestStates.push(conn.textContent)).observe(conn, {childList: true, characterData: true, subtree: true});
		return window.pmdaemonTestMark = true;
	})()`)

	old := h.DaemonPid()
	h.OK("update", "--binary", harness.Bin)
	if h.DaemonPid() == old {
		t.Fatal("the daemon was not replaced")
	}
	tb.mustPoll(30*time.Second, "the page live again after reconnecting", `pmdaemonTestStates.includes('reconnecting') &&
		document.querySelector('#connection').dataset.state === 'live'`)

	h.OK("restart", "web")
	now := h.APIList()[0]
	tb.mustPoll(10*time.Second, "the restart after the reconnection", rowExpr(now.ID)+`.pid === `+itoa(now.Pid))
	if !eval[bool](tb, `window.pmdaemonTestMark === true`) {
		t.Error("the page was loaded again")
	}
}
