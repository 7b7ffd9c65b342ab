package dashboarde2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// web is the daemon's web listener of one test, with its two tokens.
type web struct {
	url         string // http://127.0.0.1:PORT
	admin, read string
}

// openWeb opens the web listener of h's daemon on a free loopback port and makes both tokens.
func openWeb(t *testing.T, h *harness.Home) web {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(harness.FreePorts(t, 1))
	h.OK("web", "--addr", addr)
	return web{
		url:   "http://" + addr,
		admin: strings.TrimSpace(h.OK("web", "token")),
		read:  strings.TrimSpace(h.OK("web", "token", "--read-only")),
	}
}

// newBrowser starts a headless Chromium with a user data directory of its own, stopped at
// cleanup; a Chromium process of it still running then fails the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("these tests drive a real Chromium: install Debian's chromium (test.sh and .ci/run do): %v", err)
	}
	dir, err := os.MkdirTemp("", "pmd-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox, // we are root in the tests; Chromium's sandbox refuses to run as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1360, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		stop, cancelStop := context.WithTimeout(ctx, 10*time.Second)
		chromedp.Cancel(stop)
		cancelStop()
		cancel()
		cancelAlloc()
		if left := chromiumLeft(dir, 10*time.Second); len(left) > 0 {
			for _, p := range left {
				syscall.Kill(p, syscall.SIGKILL)
			}
			t.Errorf("Chromium processes left behind: %v", left)
		}
		os.RemoveAll(dir)
	})
	// Start it now, so that a Chromium that cannot start fails here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// chromiumLeft waits up to timeout for the processes started with the user data directory
// dir (Chromium passes it to every child) to go, and returns those still there.
func chromiumLeft(dir string, timeout time.Duration) []int {
	needle := []byte("--user-data-dir=" + dir)
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err == nil && bytes.Contains(cmd, needle) && !harness.Zombie(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tab is one browser tab with the dashboard open, and the requests it made.
type tab struct {
	t   *testing.T
	ctx context.Context
	*recorder
}

// recorder keeps the requests a tab made and the statuses of their answers.
type recorder struct {
	mu        sync.Mutex
	requests  []sentRequest
	responses map[network.RequestID]int64
}

// in is the tab for a subtest: its failures are t's.
func (tb *tab) in(t *testing.T) *tab { return &tab{t: t, ctx: tb.ctx, recorder: tb.recorder} }

type sentRequest struct {
	id            network.RequestID
	method, url   string
	authorization string
}

// openTab opens path of w (e.g. "/?token=..."), in a tab of its own: its own sessionStorage.
func openTab(t *testing.T, browser context.Context, w web, path string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, recorder: &recorder{responses: map[network.RequestID]int64{}}}
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			auth, _ := e.Request.Headers["Authorization"].(string)
			tb.mu.Lock()
			tb.requests = append(tb.requests, sentRequest{e.RequestID, e.Request.Method, e.Request.URL, auth})
			tb.mu.Unlock()
		case *network.EventResponseReceived:
			tb.mu.Lock()
			tb.responses[e.RequestID] = e.Response.Status
			tb.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(w.url+path)); err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	return tb
}

// sent returns the requests the tab made so far.
func (tb *tab) sent() []sentRequest {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]sentRequest(nil), tb.requests...)
}

// waitResponse waits for the answer to the n-th (from 1) request of method to path that the
// tab made, and returns its HTTP status as the browser received it.
func (tb *tab) waitResponse(method, path string, n int) int64 {
	tb.t.Helper()
	var status int64
	harness.Eventually(tb.t, 30*time.Second, fmt.Sprintf("the answer to %s %s #%d", method, path, n), func() bool {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		seen := 0
		for _, r := range tb.requests {
			if r.method == method && strings.HasSuffix(strings.SplitN(r.url, "?", 2)[0], path) {
				seen++
				if seen == n {
					var ok bool
					status, ok = tb.responses[r.id]
					return ok
				}
			}
		}
		return false
	})
	return status
}

// eval evaluates a JavaScript expression in the tab into T.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// poll waits up to timeout for a JavaScript expression to be truthy in the page, checking every
// 10 ms in the page itself, and returns its value.
func poll[T any](tb *tab, timeout time.Duration, what, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, timeout+10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(10*time.Millisecond)))
	if err != nil {
		return v, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

func (tb *tab) mustPoll(timeout time.Duration, what, expr string) {
	tb.t.Helper()
	if _, err := poll[chromedp.Void](tb, timeout, what, expr); err != nil {
		tb.t.Fatalf("%v\npage: %s", err, tb.describe())
	}
}

func (tb *tab) click(sel string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		tb.t.Fatalf("clicking %s: %v", sel, err)
	}
}

// row is one line of the page's instance table, as the page shows it.
type row struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	Pid      int    `json:"pid"` // 0 when the page shows none
	Port     string `json:"port"`
	Restarts int    `json:"restarts"`
}

const readRows = `[...document.querySelectorAll('#instances tbody tr')].map(tr => {
	const text = (c) => tr.querySelector('.' + c).textContent;
	return {id: +text('id'), name: text('name'), status: tr.querySelector('.status').dataset.status,
		pid: parseInt(text('pid')) || 0, port: text('port'), restarts: +text('restarts')};
})`

func (tb *tab) rows() []row {
	tb.t.Helper()
	return eval[[]row](tb, readRows)
}

// rowExpr is a JavaScript expression for the row of instance id ("" while there is none).
func rowExpr(id int) string {
	return fmt.Sprintf(`(() => { const rs = %s; return rs.find(r => r.id === %d) || ''; })()`, readRows, id)
}

// describe is what the page shows, for a failure message.
func (tb *tab) describe() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({url: location.href,
		connection: document.querySelector('#connection').textContent,
		notice: document.querySelector('#notice').textContent,
		log: document.querySelector('#log-tail').textContent.slice(-2000),
		rows: `+readRows+`})`))
	if err != nil {
		return "(cannot read the page: " + err.Error() + ")"
	}
	return v
}

// screenshot writes the whole page to docs/NAME when PMDAEMON_SCREENSHOTS=1 (the pictures of
// docs/dashboard.md).
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	if !shots() {
		return
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	// The picture is as tall as what the page shows, not the window.
	height := eval[int](tb, `Math.ceil(document.body.getBoundingClientRect().bottom) + 24`)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1360, int64(height))); err != nil {
		tb.t.Fatal(err)
	}
	defer chromedp.Do(ctx, chromedp.ResetViewport())
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(harness.ModuleRoot(), "docs", name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("wrote %s (%d KB)", path, len(png)/1024)
}

func itoa(n int) string { return strconv.Itoa(n) }

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
