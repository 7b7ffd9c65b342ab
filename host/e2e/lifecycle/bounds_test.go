package lifecycle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// The API refuses more instances than config.MaxInstances (20000 once spawned 20000 processes
// and ran the daemon out of file descriptors), more apps than config.MaxApps in one start-many
// request, and an instances override past the cap, whoever sends the request. Nothing starts
// and the daemon goes on answering.
func TestAPIRefusesTooManyInstancesAndApps(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 1000", "--name", "ok")

	code, body := rawAPI(t, h, "POST", "/v1/start", startBody(t, "many", "sleep 1000", 20000))
	if want := `app "many": instances 20000 is too many (at most 1024)`; code != http.StatusBadRequest || apiError(t, body) != want {
		t.Errorf("start with 20000 instances: %d %s; want 400 %q", code, body, want)
	}

	var apps []any
	for i := range 1025 {
		var a map[string]any
		json.Unmarshal(startBody(t, fmt.Sprintf("app-%d", i), "sleep 1000", 1), &a)
		apps = append(apps, a)
	}
	many, _ := json.Marshal(map[string]any{"apps": apps})
	code, body = rawAPI(t, h, "POST", "/v1/start-many", many)
	if want := "a start-many request has 1025 apps; the limit is 1024 (split the ecosystem file)"; code != http.StatusBadRequest || apiError(t, body) != want {
		t.Errorf("start-many of 1025 apps: %d %s; want 400 %q", code, body, want)
	}

	for _, verb := range []string{"restart", "reload"} {
		code, body = rawAPI(t, h, "POST", "/v1/"+verb, []byte(`{"target": "ok", "instances": 20000}`))
		if want := "instances 20000 is too many (at most 1024)"; code != http.StatusBadRequest || apiError(t, body) != want {
			t.Errorf("%s --instances 20000: %d %s; want 400 %q", verb, code, body, want)
		}
	}
	harness.ErrLike(t, h.Fail("restart", "ok", "--instances", "20000"), "instances 20000 is too many (at most 1024)")

	h.OK("ping")
	rows := h.List()
	if len(rows) != 1 || rows[0].Name != "ok" {
		t.Fatalf("after the refused requests the list is %+v, want only ok", rows)
	}
	if procs := h.AppProcs(); len(procs) != 1 {
		t.Fatalf("%d app processes, want 1: %v", len(procs), procs)
	}
}

// The daemon refuses instances its own open-file limit cannot hold, naming the limit, instead
// of spawning until accept() and pidfd_open fail.
func TestAPIRefusesWhatTheOpenFileLimitCannotHold(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("ping")
	pid := h.DaemonPid()
	// 804 descriptors: 768 kept for the daemon and for spawns and checks in progress, one
	// (a pidfd) per instance of a plain app, so 36 instances.
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 804, Max: 804}, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	harness.ErrLike(t, h.Fail("start", "sleep 1000", "--name", "big", "-i", "40"),
		"the daemon would supervise 40 instances (0 now, 40 by this request)",
		"holding 40 file descriptors", "open-file limit of 804 (RLIMIT_NOFILE)", "at most 36 descriptors", "ulimit -n")
	// With wait_ready an instance holds the daemon's end of PM2's IPC channel too: two each.
	harness.ErrLike(t, h.Fail("start", "sleep 1000", "--name", "ready", "-i", "19", "--wait-ready"),
		"the daemon would supervise 19 instances (0 now, 19 by this request) holding 38 file descriptors", "at most 36 descriptors")
	h.OK("start", "sleep 1000", "--name", "half", "-i", "20")
	harness.ErrLike(t, h.Fail("start", "sleep 1000", "--name", "more", "-i", "20"),
		"the daemon would supervise 40 instances (20 now, 20 by this request)")
	harness.ErrLike(t, h.Fail("restart", "half", "--instances", "37"), "the daemon would supervise 37 instances")
	h.OK("start", "sleep 1000", "--name", "rest", "-i", "16")
	rows := h.WaitList(20*time.Second, "36 instances online", func(rows []api.Instance) bool {
		return harness.AllOnline("half", 20)(rows) && harness.AllOnline("rest", 16)(rows)
	})
	if len(rows) != 36 {
		t.Fatalf("%d rows, want 36", len(rows))
	}
}

// A running instance holds one of the daemon's descriptors (its pidfd), an instance with a log
// writer two (the writer's pidfd too): 10,000 instances fit in an open-file limit of 20,000.
// The daemon's descriptors are counted once the instances run and their spawns are done.
func TestRunningInstancesHoldOneDescriptorEach(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := harness.NewHome(t)
	h.OK("ping")
	pid := h.DaemonPid()
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	idle := fds()
	h.OK("start", "sleep 1000", "--name", "plain", "-i", "40")
	h.WaitList(20*time.Second, "40 online", harness.AllOnline("plain", 40))
	plain := fds() - idle
	if plain < 40-4 || plain > 40+8 { // the idle count may include a client's connection
		t.Errorf("40 running instances: the daemon holds %d more descriptors than idle (%d); want 40 and at most a few more", plain, idle)
	}
	h.OK("run", harness.WriteFile(t, dir, "stamped.json", `{"name": "stamped", "script": "sleep", "args": "1000", "instances": 20, "time": true}`))
	h.WaitList(20*time.Second, "20 stamped online", harness.AllOnline("stamped", 20))
	stamped := fds() - idle - plain
	if stamped < 40-4 || stamped > 40+8 {
		t.Errorf("20 instances with log writers: %d more descriptors; want 40 (two each) and at most a few more", stamped)
	}
	// The pidfds go with the instances.
	h.OK("delete", "all")
	harness.Eventually(t, 20*time.Second, "the daemon back to its idle descriptors", func() bool { return fds() <= idle+8 })
}

// A request body over config.MaxRequestBody is answered 413 with a message saying so, and the
// daemon goes on answering; a body under the limit is read and checked as usual.
func TestAPIRequestBodyBound(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("ping")
	huge := []byte(`{"app": {"name": "x", "script": "` + strings.Repeat("a", 5<<20) + `"}}`)
	code, body := rawAPI(t, h, "POST", "/v1/start", huge)
	want := "request body is larger than 4 MiB, the daemon's limit for one request"
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(apiError(t, body), want) {
		t.Errorf("5 MiB body: %d %s; want 413 with %q", code, body, want)
	}
	code, body = rawAPI(t, h, "POST", "/v1/start", startBody(t, "x", "sleep "+strings.Repeat("1", 3<<20), 1))
	want = `app "x": word 2 of script and args is 3145728 bytes; Linux refuses an argument of 128 KiB or more`
	if code != http.StatusBadRequest || apiError(t, body) != want {
		t.Errorf("3 MiB script: %d %.300s; want 400 %q", code, body, want)
	}
	h.OK("ping")
	h.OK("start", "sleep 1000", "--name", "after")
	if rows := h.List(); len(rows) != 1 {
		t.Fatalf("list %+v, want only after", rows)
	}
}

// procStatusKB reads a field of /proc/PID/status in kB.
func procStatusKB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// A health script that prints 400 MB is read through a bounded buffer: the check completes
// (its first line is in the error) and the daemon's peak RSS stays below 100 MB (it went to
// 1.6 GB when the output was kept whole).
func TestHealthScriptOutputIsBounded(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("ping")
	pid := h.DaemonPid()
	h.OK("start", "sleep 1000", "--name", "loud", "--health-script", "sh -c 'yes health | head -c 400000000; exit 1'",
		"--health-interval", "1s", "--health-timeout", "60s", "--no-health-restart")
	const want = `check "sh -c yes health | head -c 400000000; exit 1": exit status 1: health`
	var last string
	harness.Eventually(t, 120*time.Second, "a completed check of 400 MB of output", func() bool {
		rows := h.Info("loud").Instances
		if len(rows) == 1 {
			last = rows[0].HealthError
		}
		return last == want
	})
	hwm, rss := procStatusKB(t, pid, "VmHWM"), procStatusKB(t, pid, "VmRSS")
	t.Logf("daemon after a 400 MB check: VmHWM %d kB, VmRSS %d kB", hwm, rss)
	if hwm > 100<<10 {
		t.Errorf("the daemon's peak RSS reached %d MB reading a check's output, want under 100 MB", hwm>>10)
	}
}

// nonLoopbackIPv4 is an address of this machine off loopback, or "".
func nonLoopbackIPv4() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return ""
}

// An HTTP health check does not follow a redirect: the probe off loopback is never made, and
// the 3xx is a failed check that says where it pointed.
func TestHealthCheckDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	// Where the redirect points: a server of this machine on a non-loopback address (counting
	// its requests), or, without such an address, a TEST-NET one nothing answers on.
	var offHits atomic.Int32
	location := "http://192.0.2.1:9/healthz"
	if ip := nonLoopbackIPv4(); ip != "" {
		off := harness.Listen(t, "tcp4", ip+":0")
		go http.Serve(off, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { offHits.Add(1) }))
		location = "http://" + off.Addr().String() + "/healthz"
	}
	var hits atomic.Int32
	redir := harness.Listen(t, "tcp4", "127.0.0.1:0")
	go http.Serve(redir, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, location, http.StatusFound)
	}))
	h.OK("start", "sleep 1000", "--name", "redir", "--health-url", "http://"+redir.Addr().String()+"/health",
		"--health-interval", "200ms", "--no-health-restart")
	want := fmt.Sprintf("GET http://%s/health: HTTP 302, redirected to %s; a health check does not follow redirects", redir.Addr(), location)
	var last api.Instance
	harness.Eventually(t, 30*time.Second, "the redirect reported as a failed check", func() bool {
		if rows := h.Info("redir").Instances; len(rows) == 1 {
			last = rows[0]
		}
		return last.HealthError == want && last.Health == "unhealthy"
	})
	if n := offHits.Load(); n != 0 {
		t.Errorf("the redirect was followed off loopback %d times", n)
	}
	if hits.Load() == 0 {
		t.Error("the redirecting server was never asked")
	}
}

// `--min-uptime 0` with a command that exits at once no longer restarts it as fast as it can
// (1,400 times a second at 70 % of a core, never errored): a run under 1 s is unstable whatever
// min_uptime says and unstable restarts wait 100 ms, so the loop ends errored after
// max_restarts with the daemon's CPU low.
func TestMinUptimeZeroCrashLoopEndsErrored(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("ping")
	pid, hz := h.DaemonPid(), harness.ClockTicks(t)
	ticks0, t0 := harness.CPUTicks(t, pid), time.Now()
	h.OK("start", "true", "--name", "spin", "--min-uptime", "0")
	var row api.Instance
	deadline := time.Now().Add(60 * time.Second)
	for row.Status != "errored" {
		if time.Now().After(deadline) {
			t.Fatalf("after %s the crash loop is not errored: %+v", time.Since(t0), row)
		}
		time.Sleep(200 * time.Millisecond) // polling pace, so the test's own calls cost the daemon little
		if rows := harness.Rows(h.List(), "spin"); len(rows) == 1 {
			row = rows[0]
		}
	}
	took, ticks := time.Since(t0), harness.CPUTicks(t, pid)-ticks0
	cpu := float64(ticks) / float64(hz) / took.Seconds()
	t.Logf("errored after %s, %d restarts; daemon CPU %.1f%% of a core", took, row.Restarts, 100*cpu)
	if cpu > 0.30 {
		t.Errorf("the daemon used %.0f%% of a core during the crash loop, want under 30%%", 100*cpu)
	}
	if row.Restarts != 15 {
		t.Errorf("restarts = %d, want max_restarts 15", row.Restarts)
	}
	if want := "exited 16 times within 1s of starting (min_uptime 0s; a run under 1s is never stable); gave up after max_restarts 15"; row.Reason != want {
		t.Errorf("reason %q, want %q", row.Reason, want)
	}
	// 16 runs with 15 pauses of at least 100 ms between them.
	if took < 1500*time.Millisecond {
		t.Errorf("15 restarts took %s, less than 15 × 100 ms", took)
	}
	harness.HoldsFor(t, h.API(), time.Second, "the errored loop", func(rows []api.Instance) string {
		if r := harness.Rows(rows, "spin"); len(r) != 1 || r[0].Status != "errored" || r[0].Restarts != 15 {
			return fmt.Sprintf("spin is %+v", r)
		}
		return ""
	})
}

// A health check interval under 100 ms runs checks every 100 ms, not in a busy loop of
// processes: a check that appends a line to a file wrote at most one line per 100 ms.
func TestHealthIntervalFloor(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	count := dir + "/checks"
	h.OK("start", "sleep 1000", "--name", "eager", "--health-script", "sh -c 'echo x >> "+count+"'",
		"--health-interval", "1ms", "--cwd", dir)
	lines := func() int {
		b, _ := os.ReadFile(count)
		return bytes.Count(b, []byte("\n"))
	}
	harness.Eventually(t, 20*time.Second, "the first checks", func() bool { return lines() >= 2 })
	n0, t0 := lines(), time.Now()
	// Wait until 10 more checks ran, and see how long they took.
	harness.Eventually(t, 20*time.Second, "10 more checks", func() bool { return lines() >= n0+10 })
	n, took := lines()-n0, time.Since(t0)
	if max := int(took/(100*time.Millisecond)) + 1; n > max {
		t.Errorf("%d checks ran in %s with --health-interval 1ms, more than one per 100 ms (%d)", n, took, max)
	}
	if rows := h.Info("eager").Instances; len(rows) != 1 || rows[0].Health != "healthy" {
		t.Errorf("eager is %+v, want healthy", rows)
	}
}
