package socketse2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// `--ready notify` makes an instance ready when it sends READY=1 over $NOTIFY_SOCKET, from
// any language: the Go app sends it itself, gunicorn does so natively. Its STATUS= line shows
// in info. (Node's dgram module has no unix datagram sockets: the Node app is not here.)
func TestNotifyReadiness(t *testing.T) {
	t.Parallel()
	tests := []struct {
		app        app
		env        []string
		wantStatus string
	}{
		{apps[0], []string{"NOTIFY_READY=1", "NOTIFY_STATUS=warmed up"}, "warmed up"},
		{apps[2], nil, "Gunicorn arbiter booted"},
	}
	for _, tc := range tests {
		t.Run(tc.app.name, func(t *testing.T) {
			h := harness.NewHome(t)
			p := harness.FreePorts(t, 1)
			flags := []string{"--port", strconv.Itoa(p), "--socket", "--bind", "127.0.0.1", "--ready", "notify"}
			for _, e := range tc.env {
				flags = append(flags, "--env", e)
			}
			h.OK(tc.app.startArgs(t, "ready", flags...)...)
			h.WaitOnline("ready", 1)
			var status any
			harness.Eventually(t, 10*time.Second, "info to show the app's STATUS= line", func() bool {
				rows := rawRows(t, h, "ready")
				if len(rows) == 1 {
					status = rows[0]["status_text"]
				}
				return status == tc.wantStatus
			})
			if _, err := harness.Get(url(p)); err != nil {
				t.Errorf("the ready app does not answer on its socket: %v", err)
			}
		})
	}
}

// With `--ready notify`, an app that never sends READY=1 is never ready, though it serves: a
// start or a restart that waits for readiness fails, naming what was missing.
func TestNotifyReadinessWithoutReadyIsNotReady(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	p := harness.FreePorts(t, 1)
	stderr := h.Fail("start", harness.Echo, "--name", "mute", "--port", strconv.Itoa(p), "--socket", "--bind", "127.0.0.1",
		"--ready", "notify", "--wait-ready", "--wait-timeout", "2s")
	harness.ErrLike(t, stderr, "mute", "READY=1", "NOTIFY_SOCKET")
	if _, err := harness.Get(url(p)); err != nil {
		t.Errorf("the app should serve on its socket all the same: %v", err)
	}
	harness.ErrLike(t, h.Fail("restart", "mute", "--wait-ready", "--wait-timeout", "2s"), "mute", "READY=1")
}

// `--watchdog`: an app that pings WATCHDOG=1 more often than the watchdog interval keeps
// running; one that never pings is restarted, with a reason that says so.
func TestWatchdog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		env         []string
		wantRestart bool
	}{
		{"pinging", []string{"NOTIFY_WATCHDOG_EVERY=200ms"}, false},
		{"silent", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := harness.NewHome(t)
			p := harness.FreePorts(t, 1)
			args := []string{"start", harness.Echo, "--name", "dog", "--port", strconv.Itoa(p), "--socket", "--bind", "127.0.0.1", "--watchdog", "1500ms"}
			for _, e := range tc.env {
				args = append(args, "--env", e)
			}
			h.OK(args...)
			first := h.WaitOnline("dog", 1)[0]
			if !tc.wantRestart {
				harness.HoldsFor(t, h.API(), 4*time.Second, "a pinging app under a 1.5 s watchdog", func(rows []api.Instance) string {
					for _, r := range harness.Rows(rows, "dog") {
						if r.Restarts > 0 || r.Pid != first.Pid {
							return fmt.Sprintf("restarted (%d restarts, pid %d, was %d; reason %q)", r.Restarts, r.Pid, first.Pid, r.Reason)
						}
					}
					return ""
				})
				return
			}
			rows := h.WaitAPI(15*time.Second, "the silent app restarted by the watchdog", func(rows []api.Instance) bool {
				rs := harness.Rows(rows, "dog")
				return len(rs) == 1 && rs[0].Restarts > 0
			})
			r := harness.Rows(rows, "dog")[0]
			t.Logf("restarted by the watchdog: reason %q", r.Reason)
			if !strings.Contains(strings.ToLower(r.Reason), "watchdog") {
				t.Errorf("the restart's reason %q does not mention the watchdog", r.Reason)
			}
		})
	}
}
