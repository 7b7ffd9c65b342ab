package dashboarde2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// The app page (#app=NAME) shows the configured and the live ports, each instance's health and
// cgroup, and a live tail of the app's logs. A restart with a port override (CLI) shows there
// without a reload: the live ports change, the configured ones stay, and the new instances'
// log lines arrive in the tail.
func TestAppPage(t *testing.T) {
	h := harness.NewHome(t)
	base := harness.FreePorts(t, 2)
	configured := fmt.Sprintf("%d-%d", base, base+1)
	h.OK("start", harness.Echo, "--name", "web", "-i", "2", "--port", configured,
		"--health-url", "http://127.0.0.1:{port}/health", "--health-interval", "200ms")
	rows := h.WaitAPI(30*time.Second, "web online and healthy", allHealthy("web", 2))
	w := openWeb(t, h)
	browser := newBrowser(t)
	tb := openTab(t, browser, w, "/?token="+w.read+"#app=web")
	eval[bool](tb, `window.pmdaemonTestMark = true`)

	tb.mustPoll(20*time.Second, "the app page of web", `!document.querySelector('#app').hidden &&
		document.querySelector('#app-name').textContent === 'web' &&
		document.querySelectorAll('#app-instances tbody tr').length === 2 &&
		document.querySelector('#log-state').dataset.state === 'live'`)
	if got := text(tb, "#app-ports-configured"); got != configured {
		t.Errorf("configured ports %q, want %q", got, configured)
	}
	if got := text(tb, "#app-ports-live"); got != fmt.Sprintf("%s → %d, %d", configured, base, base+1) {
		t.Errorf("live ports %q", got)
	}
	for _, r := range rows {
		cgroup := r.Cgroup
		if cgroup == "" {
			cgroup = "(process group)"
		}
		tb.mustPoll(10*time.Second, fmt.Sprintf("instance %d healthy, its cgroup shown", r.ID), fmt.Sprintf(
			`(() => { const tr = document.querySelector('#app-instances tr[data-id="%d"]');
			return tr && tr.querySelector('.health').textContent === 'healthy' && tr.querySelector('.cgroup').textContent === %s; })()`,
			r.ID, jsonString(cgroup)))
	}
	// The tail: the last lines of each log, with the app and the instance id.
	for i, r := range rows {
		tb.mustPoll(10*time.Second, "instance's start line in the tail", logHas(fmt.Sprintf("web[%d] ", r.ID), fmt.Sprintf("instance %d of web listening on 127.0.0.1:%d", i, base+i)))
	}
	tb.screenshot("dashboard-app.png")

	moved := harness.FreePorts(t, 2)
	h.OK("restart", "web", "--port", fmt.Sprintf("%d-%d", moved, moved+1))
	tb.mustPoll(10*time.Second, "the override on the page", fmt.Sprintf(
		`document.querySelector('#app-ports-live').textContent.startsWith(%s) &&
		document.querySelector('#app-ports-live .override') !== null`, jsonString(fmt.Sprintf("%d-%d → %d, %d", moved, moved+1, moved, moved+1))))
	if got := text(tb, "#app-ports-configured"); got != configured {
		t.Errorf("configured ports after the override %q, want %q", got, configured)
	}
	for i := range 2 {
		tb.mustPoll(10*time.Second, "the new instance's line in the tail", logHas("web[", fmt.Sprintf("instance %d of web listening on 127.0.0.1:%d", i, moved+i)))
	}
	if !eval[bool](tb, `window.pmdaemonTestMark === true`) {
		t.Error("the page was loaded again")
	}
	for i, r := range tb.sent() {
		if i > 0 && strings.Contains(r.url, w.read) {
			t.Errorf("request %d (%s %s) carries the token in its URL", i, r.method, r.url)
		}
	}
	tb.screenshot("dashboard-app-override.png")
}

func text(tb *tab, sel string) string {
	tb.t.Helper()
	return eval[string](tb, fmt.Sprintf(`document.querySelector(%s).textContent`, jsonString(sel)))
}

// logHas is true when a line of the tail has source label src (its start) and holds s.
func logHas(src, s string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#log-tail div')].some(d =>
		d.querySelector('.src').textContent.startsWith(%s) && d.textContent.includes(%s))`, jsonString(src), jsonString(s))
}

func allHealthy(name string, n int) func([]api.Instance) bool {
	return func(rows []api.Instance) bool {
		rs := harness.Rows(rows, name)
		if len(rs) != n {
			return false
		}
		for _, r := range rs {
			if r.Status != "online" || r.Health != "healthy" {
				return false
			}
		}
		return true
	}
}
