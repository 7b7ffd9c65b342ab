package dashboarde2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// The restart, reload and stop buttons act with an admin token. With a read token the daemon
// refuses each (403, as the browser received it), the page says so, and the instance is as it
// was.
func TestButtons(t *testing.T) {
	h := harness.NewHome(t)
	port := harness.FreePorts(t, 1)
	h.OK("start", harness.Echo, "--name", "web", "--port", itoa(port))
	id := h.WaitOnline("web", 1)[0].ID
	w := openWeb(t, h)
	browser := newBrowser(t)
	admin := openTab(t, browser, w, "/?token="+w.admin)
	read := openTab(t, browser, w, "/?token="+w.read)
	for _, tb := range []*tab{admin, read} {
		tb.mustPoll(20*time.Second, "web's row", rowExpr(id)+`.status === 'online'`)
	}

	clicks := map[*tab]map[string]int{admin: {}, read: {}}
	for _, c := range []struct {
		tab    *tab
		action string
		status int64
		// then checks the instance after the answer, against how it was before.
		then func(before, after api.Instance) string
	}{
		{read, "restart", 403, unchanged},
		{read, "reload", 403, unchanged},
		{read, "stop", 403, unchanged},
		{admin, "restart", 200, replaced},
		{admin, "reload", 200, replaced},
		{admin, "stop", 200, func(before, after api.Instance) string {
			if after.Status != "stopped" || after.Pid != 0 || harness.Alive(before.Pid) {
				return "not stopped"
			}
			return ""
		}},
	} {
		who := "admin"
		if c.tab == read {
			who = "read"
		}
		t.Run(who+" "+c.action, func(t *testing.T) {
			tb := c.tab.in(t)
			before := h.APIList()[0]
			// The page shows the instance as it is now, so the button is the live one.
			tb.mustPoll(10*time.Second, "the row up to date", rowExpr(id)+`.pid === `+itoa(before.Pid))
			tb.click(fmt.Sprintf(`#instances tr[data-id="%d"] button[data-action="%s"]`, id, c.action))
			clicks[c.tab][c.action]++
			status := tb.waitResponse("POST", "/v1/"+c.action, clicks[c.tab][c.action])
			if status != c.status {
				t.Errorf("POST /v1/%s answered %d to the page, want %d", c.action, status, c.status)
			}
			want := fmt.Sprintf("%s %d: done", c.action, id)
			if c.status == 403 {
				want = fmt.Sprintf("%s %d was refused (HTTP 403)", c.action, id)
			}
			tb.mustPoll(30*time.Second, "the page's notice", fmt.Sprintf(
				`document.querySelector('#notice').dataset.status === '%d' && document.querySelector('#notice').textContent.startsWith(%s)`,
				c.status, jsonString(want)))
			if c.status == 403 {
				if got := eval[string](tb, `document.querySelector('#notice').textContent`); !strings.Contains(got, "needs an admin token") {
					t.Errorf("the notice does not give the daemon's reason: %q", got)
				}
			}
			// The old process of a reload may still be on its way out when the answer comes.
			var why string
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				after := h.APIList()[0]
				if why = c.then(before, after); why == "" || time.Now().After(deadline) {
					if why != "" {
						t.Errorf("after %s with the %s token: %s: before %+v, after %+v", c.action, who, why, before, after)
					}
					break
				}
			}
		})
	}
}

func unchanged(before, after api.Instance) string {
	if after.Pid != before.Pid || after.Restarts != before.Restarts || after.Status != "online" || !harness.Alive(before.Pid) {
		return "the instance changed"
	}
	return ""
}

func replaced(before, after api.Instance) string {
	if after.Pid == before.Pid || after.Pid == 0 || after.Status != "online" || harness.Alive(before.Pid) {
		return "the instance was not replaced"
	}
	return ""
}
