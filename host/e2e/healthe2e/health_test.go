package healthe2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

const wait = 20 * time.Second

func row(t *testing.T, h *harness.Home, name string) api.Instance {
	t.Helper()
	rs := harness.Rows(h.List(), name)
	if len(rs) != 1 {
		t.Fatalf("%s has %d rows", name, len(rs))
	}
	return rs[0]
}

// An instance whose HTTP check fails `retries` times in a row turns unhealthy and is
// restarted, with the reason; it is healthy again once the check passes.
func TestUnhealthyInstanceIsRestarted(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	sick := filepath.Join(t.TempDir(), "sick")
	port := harness.FreePorts(t, 1)
	h.OK("start", harness.Echo, "--name", "web", "--port", strconv.Itoa(port), "--env", "HEALTH_FAIL_FILE="+sick,
		"--health-url", "http://127.0.0.1:{port}/health", "--health-interval", "200ms", "--health-retries", "3", "--wait-ready")
	r := row(t, h, "web")
	if r.Health != "healthy" || r.Status != "online" {
		t.Fatalf("after start --wait-ready: status %s health %q, want online and healthy", r.Status, r.Health)
	}
	if !strings.Contains(h.OK("list"), "online (healthy)") { // plain labels: the output is not a terminal
		t.Error("list does not show the health")
	}
	firstPid := r.Pid
	os.WriteFile(sick, nil, 0o644)
	h.WaitList(wait, "a restart for health", func(rs []api.Instance) bool {
		r := harness.Rows(rs, "web")[0]
		return r.Restarts >= 1 && r.Pid != firstPid && r.Pid > 0
	})
	info := h.OK("info", "web")
	for _, want := range []string{"unhealthy: 3 consecutive failed checks", "HTTP 503", "health check:", "GET http://127.0.0.1:{port}/health every 200ms"} {
		if !strings.Contains(info, want) {
			t.Errorf("info lacks %q:\n%s", want, info)
		}
	}
	os.Remove(sick)
	h.WaitList(wait, "healthy again", func(rs []api.Instance) bool {
		return harness.Rows(rs, "web")[0].Health == "healthy"
	})
}

// With restart off, an unhealthy instance is reported and left running.
func TestUnhealthyReportOnly(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	sick := filepath.Join(t.TempDir(), "sick")
	// A command check: healthy while the file does not exist.
	h.OK("start", "sleep 1000", "--name", "worker", "--health-script", "test ! -e "+sick,
		"--health-interval", "100ms", "--health-retries", "2", "--no-health-restart", "--wait-ready")
	r := row(t, h, "worker")
	os.WriteFile(sick, nil, 0o644)
	h.WaitList(wait, "unhealthy", func(rs []api.Instance) bool {
		return harness.Rows(rs, "worker")[0].Health == "unhealthy"
	})
	after := row(t, h, "worker")
	if after.Pid != r.Pid || after.Restarts != 0 || after.Status != "online" {
		t.Fatalf("a report-only check restarted the instance: before %+v after %+v", r, after)
	}
	if !strings.Contains(after.HealthError, "exit status 1") {
		t.Errorf("health error %q does not say how the check failed", after.HealthError)
	}
}

// --wait-ready answers only once every instance is healthy: right after it returns, every
// instance answers, though each takes a second to start listening.
func TestWaitReadyWaitsForHealthy(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	base := harness.FreePorts(t, 3)
	start := time.Now()
	h.OK("start", harness.Echo, "--name", "slow", "-i", "3", "--port", fmt.Sprintf("%d-%d", base, base+2),
		"--env", "START_DELAY=1s", "--health-url", "http://127.0.0.1:{port}/health", "--wait-ready")
	took := time.Since(start)
	for i := 0; i < 3; i++ {
		if _, err := harness.GetWho(base + i); err != nil {
			t.Errorf("instance %d does not answer right after start --wait-ready returned: %v", i, err)
		}
	}
	if took < time.Second {
		t.Errorf("start --wait-ready returned after %s, before the app could listen (1s)", took)
	}
	// A restart with --wait-ready waits the same way.
	h.OK("restart", "slow", "--wait-ready")
	for i := 0; i < 3; i++ {
		if _, err := harness.GetWho(base + i); err != nil {
			t.Errorf("instance %d does not answer right after restart --wait-ready returned: %v", i, err)
		}
	}
}

// Readiness that does not come is a clear error after --wait-timeout; the instances keep
// running. Without a health check, readiness is min_uptime, and an app that dies sooner fails.
func TestWaitReadyFailures(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	sick := filepath.Join(t.TempDir(), "sick")
	os.WriteFile(sick, nil, 0o644)
	port := harness.FreePorts(t, 1)
	stderr := h.Fail("start", harness.Echo, "--name", "never", "--port", strconv.Itoa(port), "--env", "HEALTH_FAIL_FILE="+sick,
		"--health-url", "http://127.0.0.1:{port}/health", "--wait-ready", "--wait-timeout", "1s", "--no-health-restart")
	harness.ErrLike(t, stderr, "never started but is not ready", "was not healthy within 1s", "HTTP 503", "keep running")
	if r := row(t, h, "never"); r.Status != "online" {
		t.Errorf("status %s; the instance should keep running", r.Status)
	}
	stderr = h.Fail("start", "sh -c 'sleep 0.3; exit 3'", "--name", "dies", "--min-uptime", "2s", "--wait-ready")
	harness.ErrLike(t, stderr, "dies started but is not ready", "did not stay up")
	for _, bad := range [][]string{
		{"--health-url", "http://example.com/health"},
		{"--health-url", "http://127.0.0.1:{port}/"},
		{"--health-script", "true", "--health-interval", "0"},
		{"--health-script", "true", "--health-timeout", "-2s"},
		{"--health-script", "true", "--health-retries", "0"},
		{"--health-retries", "2"},
		{"--wait-timeout", "0"},
		{"--log-max-size", "12Q"},
		{"--log-keep", "0"},
	} {
		stderr := h.Fail(append([]string{"start", "sleep 100", "--name", "bad"}, bad...)...)
		if !strings.HasPrefix(stderr, "Error: ") || strings.Count(stderr, "\n") > 1 {
			t.Errorf("start %v: stderr %q, want one clear error line", bad, stderr)
		}
	}
	if len(harness.Rows(h.List(), "bad")) != 0 {
		t.Error("a refused start created the app")
	}
}

// A rolling reload on the same ports, one instance at a time, each replaced only once its
// successor is healthy: through nginx (which retries the next upstream on a refused
// connection), no request fails.
func TestReloadUnderLoadFailsNoRequest(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	base := harness.FreePorts(t, 4)
	upstreams := filepath.Join(t.TempDir(), "upstreams.conf")
	var b strings.Builder
	b.WriteString("upstream web_backend {\n")
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&b, "    server 127.0.0.1:%d max_fails=0;\n", base+i)
	}
	b.WriteString("}\n")
	os.WriteFile(upstreams, []byte(b.String()), 0o644)
	n := harness.StartNginx(t, upstreams)
	h.OK("start", harness.Echo, "--name", "web", "-i", "4", "--port", fmt.Sprintf("%d-%d", base, base+3),
		"--env", "START_DELAY=300ms", "--health-url", "http://127.0.0.1:{port}/health", "--wait-ready")
	before := harness.PidsOf(h.List(), "web")
	n.ReachAll(t, harness.Seq(base, 4))
	stop := n.Load(4)
	h.OK("reload", "web")
	res := stop()
	after := harness.PidsOf(h.List(), "web")
	for i := range before {
		if before[i] == after[i] {
			t.Errorf("instance %d was not replaced (pid %d)", i, after[i])
		}
	}
	if res.Failed > 0 {
		t.Errorf("%d of %d requests failed during the reload; first: %v", res.Failed, res.Total, res.Failures)
	}
	if res.Total < 50 {
		t.Errorf("only %d requests during the reload", res.Total)
	}
	t.Logf("%d requests through nginx during the reload, %d failed", res.Total, res.Failed)
}

// A stop does not wait for a health check in flight: the check is abandoned.
func TestStopDoesNotWaitForAHealthCheck(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 1000", "--name", "slowcheck", "--health-script", "sleep 30", "--health-timeout", "15s", "--kill-timeout", "1s")
	h.WaitList(wait, "the first check under way", func(rs []api.Instance) bool {
		r := harness.Rows(rs, "slowcheck")
		return len(r) == 1 && r[0].Health == "checking"
	})
	start := time.Now()
	h.OK("stop", "slowcheck")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stop took %s: it waited for the health check (timeout 15s)", took)
	}
}

// A stop that comes while an unhealthy instance is being replaced does not start a new
// process only to stop it.
func TestStopDuringAHealthRestart(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	started := filepath.Join(dir, "starts")
	script := harness.WriteScript(t, dir, "app.sh", "#!/bin/sh\necho x >> "+started+"\ntrap '' TERM\nwhile :; do sleep 0.1; done\n")
	h.OK("start", script, "--name", "sick", "--health-script", "false", "--health-interval", "100ms",
		"--health-retries", "1", "--min-uptime", "100ms", "--kill-timeout", "8s")
	h.WaitList(wait, "the health restart under way", func(rs []api.Instance) bool {
		r := harness.Rows(rs, "sick")
		return len(r) == 1 && r[0].Status == "stopping"
	})
	h.OK("stop", "sick")
	r := row(t, h, "sick")
	if r.Status != "stopped" || r.Pid != 0 {
		t.Fatalf("after stop: %+v", r)
	}
	b, _ := os.ReadFile(started)
	if n := strings.Count(string(b), "x"); n != 1 {
		t.Errorf("the app was started %d times; the stop during its health restart started another", n)
	}
}
