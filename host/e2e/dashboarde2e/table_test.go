package dashboarde2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// startApps starts the echo app as "web" (2 instances on a port range) and "api" (1 instance),
// and waits for them to be online.
func startApps(t *testing.T, h *harness.Home) (webBase, apiPort int) {
	t.Helper()
	webBase = harness.FreePorts(t, 2)
	apiPort = harness.FreePorts(t, 1)
	h.OK("start", harness.Echo, "--name", "web", "-i", "2", "--port", fmt.Sprintf("%d-%d", webBase, webBase+1))
	h.OK("start", harness.Echo, "--name", "api", "--port", fmt.Sprint(apiPort))
	h.WaitOnline("web", 2)
	h.WaitOnline("api", 1)
	return webBase, apiPort
}

// sameRows reports whether the page's table shows what the daemon lists: the same instances
// with the same names, statuses, pids, ports and restart counts.
func sameRows(page []row, list []api.Instance) bool {
	if len(page) != len(list) {
		return false
	}
	for i, r := range list {
		port := "–"
		if r.Port != nil {
			port = fmt.Sprint(*r.Port)
		}
		want := row{ID: r.ID, Name: r.Name, Status: r.Status, Pid: r.Pid, Port: port, Restarts: r.Restarts}
		if page[i] != want {
			return false
		}
	}
	return true
}

// The page opened with ?token= shows the daemon's instances as its list has them, takes the
// token out of the address, keeps it in the tab's sessionStorage, and sends it only in the
// Authorization header of the requests that follow: no later URL carries it.
func TestTableShowsApps(t *testing.T) {
	h := harness.NewHome(t)
	webBase, _ := startApps(t, h)
	w := openWeb(t, h)
	browser := newBrowser(t)
	tb := openTab(t, browser, w, "/?token="+w.admin)

	tb.mustPoll(20*time.Second, "the events stream live", `document.querySelector('#connection').dataset.state === 'live'`)
	harness.Eventually(t, 20*time.Second, "the table to match the daemon's list", func() bool {
		return sameRows(tb.rows(), h.APIList())
	})
	if got := eval[string](tb, `document.querySelector('#summary').textContent`); got != "2 apps, 3 instances, 3 online" {
		t.Errorf("summary %q", got)
	}

	if href := eval[string](tb, `location.href`); strings.Contains(href, "token") || strings.Contains(href, w.admin) {
		t.Errorf("the address still holds the token: %s", href)
	}
	if got := eval[string](tb, `sessionStorage.getItem('pmdaemon.token')`); got != w.admin {
		t.Errorf("sessionStorage holds %q, want the admin token", got)
	}
	sent := tb.sent()
	var paths []string
	for i, r := range sent {
		if i > 0 && strings.Contains(r.url, w.admin) {
			t.Errorf("request %d (%s %s) carries the token in its URL", i, r.method, r.url)
		}
		if strings.Contains(r.url, "/v1/") {
			paths = append(paths, strings.TrimPrefix(strings.SplitN(r.url, "?", 2)[0], w.url))
			if r.authorization != "Bearer "+w.admin {
				t.Errorf("%s %s: Authorization %q, want the bearer token", r.method, r.url, r.authorization)
			}
		}
	}
	for _, p := range []string{"/v1/events", "/v1/list"} {
		if !slices.Contains(paths, p) {
			t.Errorf("the page did not request %s; it requested %v", p, paths)
		}
	}

	// Reloaded, the page finds the token in sessionStorage (the address has none now).
	if err := chromedp.Do(tb.ctx, chromedp.Reload()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	tb.mustPoll(20*time.Second, "the table after a reload", `document.querySelectorAll('#instances tbody tr').length === 3 &&
		document.querySelector('#connection').dataset.state === 'live'`)

	// The sparklines are drawn from the periodic list fetches, one sample a fetch.
	tb.mustPoll(30*time.Second, "sparklines of 3 samples", `document.querySelectorAll('svg.spark polyline').length === 6 &&
		[...document.querySelectorAll('svg.spark polyline')].every(p => p.getAttribute('points').split(' ').length >= 3)`)
	if shots() {
		// A few periodic samples, under some requests to web, so that the sparklines have
		// something to draw.
		load := harness.StartLoad(t, 2, fmt.Sprintf("http://127.0.0.1:%d/", webBase), fmt.Sprintf("http://127.0.0.1:%d/", webBase+1))
		defer load.Stop()
		tb.mustPoll(40*time.Second, "sparklines of 10 samples", `[...document.querySelectorAll('svg.spark polyline')].every(p => p.getAttribute('points').split(' ').length >= 10)`)
		tb.screenshot("dashboard-table.png")
	}
}

// A page opened without a token says how to get one, and one opened with a wrong token says
// the daemon refused it (401).
func TestTokenMissingOrWrong(t *testing.T) {
	h := harness.NewHome(t)
	w := openWeb(t, h)
	browser := newBrowser(t)

	none := openTab(t, browser, w, "/")
	none.mustPoll(20*time.Second, "the no-token help", `!document.querySelector('#need-token').hidden &&
		document.querySelector('#connection').textContent === 'no token'`)

	wrong := openTab(t, browser, w, "/?token=not-a-token")
	wrong.mustPoll(20*time.Second, "the 401 notice", `document.querySelector('#notice').dataset.status === '401'`)
	if st := wrong.waitResponse("GET", "/v1/list", 1); st != 401 {
		t.Errorf("GET /v1/list with a wrong token: %d, want 401", st)
	}
}
