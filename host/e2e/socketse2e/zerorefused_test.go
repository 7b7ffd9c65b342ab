package socketse2e

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// loadWorkers is the load's concurrency: enough that requests are always in flight, few
// enough to leave the two cores of a test machine to the apps and the daemon.
const loadWorkers = 6

// settle is how many requests a phase waits for after its last action: the requests that
// action had in flight are then counted in it, not in the next phase.
const settle = 150

// warmup is how many requests the load makes before the first action: enough that every
// instance has answered some, however unevenly the kernel (or an asyncio server that accepts
// many connections at once) spreads them.
const warmup = 400

// mode is one way of holding the sockets: per instance on a range, or shared on one port.
type mode struct {
	name string
	// flags are the start flags; urls the URLs the load spreads over.
	flags func(t *testing.T) (flags []string, urls []string)
}

const instances = 2

var modes = []mode{
	{"socket", func(t *testing.T) ([]string, []string) {
		base := harness.FreePorts(t, instances)
		var urls []string
		for _, p := range harness.Seq(base, instances) {
			urls = append(urls, url(p))
		}
		return []string{"--socket", "--port", harness.PortRange(base, base+instances-1)}, urls
	}},
	{"shared", func(t *testing.T) ([]string, []string) {
		p := harness.FreePorts(t, 1)
		return []string{"--socket", "shared", "--port", strconv.Itoa(p)}, []string{url(p)}
	}},
}

// For each language and each socket mode, a load that opens a new connection per request
// runs through two reloads, two restarts, an instance's SIGKILL and the daemon's SIGKILL
// followed by a reload under a new daemon. Reloads and restarts refuse and fail nothing; the
// killed instance may fail only the requests it had in flight and refuses none.
func TestZeroRefusedUnderLoad(t *testing.T) {
	for _, a := range apps {
		for _, m := range modes {
			t.Run(a.name+"/"+m.name, func(t *testing.T) {
				runZeroRefused(t, a, m)
			})
		}
	}
}

func runZeroRefused(t *testing.T, a app, m mode) {
	h := harness.NewHome(t)
	const name = "web"
	flags, urls := m.flags(t)
	flags = append(flags, "-i", strconv.Itoa(instances), "--bind", "127.0.0.1")
	h.OK(a.startArgs(t, name, flags...)...)
	rows := h.WaitOnline(name, instances)
	wantSocketMode(t, h, name, m.name)

	l := harness.StartLoad(t, loadWorkers, urls...)
	warm := phase(t, l, "warm-up", func() { l.WaitRequests(warmup) })
	mustNotFail(t, h, "warm-up", warm)
	spread(t, a, m, rows, name, warm)

	for i := 1; i <= 2; i++ {
		s := phase(t, l, fmt.Sprintf("reload %d", i), func() { timed(t, h, "reload", name) })
		mustNotFail(t, h, fmt.Sprintf("reload %d", i), s)
		h.WaitOnline(name, instances)
	}
	for i := 1; i <= 2; i++ {
		s := phase(t, l, fmt.Sprintf("restart %d", i), func() { timed(t, h, "restart", name) })
		mustNotFail(t, h, fmt.Sprintf("restart %d", i), s)
		h.WaitOnline(name, instances)
	}

	// An instance killed with SIGKILL: its socket (per instance) or the shared one stays open in
	// the daemon, so the connections that arrive until its successor accepts wait in the backlog.
	s := phase(t, l, "instance kill -9", func() {
		victim := harness.Rows(h.APIList(), name)[0]
		harness.Sigkill(t, victim.Pid)
		h.WaitAPI(30*time.Second, "the killed instance replaced", func(rows []api.Instance) bool {
			return harness.AllOnline(name, instances)(rows) && !slices.Contains(harness.PidsOf(rows, name), victim.Pid)
		})
	})
	// In flight means reset mid-request, and no more than one per worker: a worker has one
	// request at a time.
	if s.Refused > 0 || s.OK == 0 || s.Failed() != s.Reset || s.Reset > loadWorkers {
		t.Errorf("instance kill -9: want 0 refused and at most %d requests reset in flight: %s\ndaemon.log:\n%s",
			loadWorkers, s, tail(h.DaemonLog(), 30))
	}
	t.Logf("instance kill -9: %d requests failed in flight (allowed), %d refused", s.Failed(), s.Refused)

	// The daemon killed with SIGKILL: the apps keep serving on their copies of the sockets, the
	// next CLI command starts a daemon that takes the instances and their listeners back, and
	// a reload under it still refuses nothing.
	s = phase(t, l, "daemon kill -9, reload", func() {
		// The daemon writes its state at a pace (up to half a second behind): killed before it
		// recorded the replacement of the instance killed above, the next daemon would not know
		// that process, and would kill it as a stray (its requests in flight with it) and start
		// the instance afresh. Taking the instances back is what this phase is about.
		recorded(t, h, name)
		d := theDaemon(t, h)
		harness.Sigkill(t, d)
		harness.WaitDead(t, 10*time.Second, "the daemon to die", d)
		h.WaitList(30*time.Second, "the instances taken back", harness.AllOnline(name, instances))
		timed(t, h, "reload", name)
		h.WaitOnline(name, instances)
	})
	mustNotFail(t, h, "daemon kill -9, reload", s)
	wantSocketMode(t, h, name, m.name)

	total := l.Stop()
	t.Logf("%s/%s whole run: %s", a.name, m.name, total)
}

// phase runs do under the load and returns what the load saw from just before do until
// settle requests after it.
func phase(t *testing.T, l *harness.Load, what string, do func()) harness.LoadStats {
	t.Helper()
	before := l.Now()
	do()
	l.WaitRequests(settle)
	s := l.Now().Since(before)
	t.Logf("%s: %s", what, s)
	return s
}

// timed runs one CLI command and logs how long it took.
func timed(t *testing.T, h *harness.Home, args ...string) {
	t.Helper()
	start := time.Now()
	h.OK(args...)
	t.Logf("pmdaemon %v took %s", args, time.Since(start).Round(time.Millisecond))
}

// mustNotFail fails the test when a phase refused or failed any request, or made none.
func mustNotFail(t *testing.T, h *harness.Home, what string, s harness.LoadStats) {
	t.Helper()
	if s.Failed() > 0 || s.OK == 0 {
		t.Errorf("%s: want 0 refused and 0 failed requests: %s\ndaemon.log:\n%s", what, s, tail(h.DaemonLog(), 30))
	}
}

// spread checks that every instance answered some of the warm-up's requests: with shared
// mode the kernel spreads accept() over the instances on one socket, with a socket per
// instance the load spreads over the ports. For gunicorn the answer names the worker, a child
// of the instance.
func spread(t *testing.T, a app, m mode, rows []api.Instance, name string, s harness.LoadStats) {
	t.Helper()
	per := map[int]int64{} // instance pid -> requests
	for pid, n := range s.ByPid {
		owner := pid
		if a.workerPids {
			owner = harness.Ppid(pid)
		}
		per[owner] += n
	}
	for _, r := range harness.Rows(rows, name) {
		t.Logf("%s/%s: instance %d (pid %d) answered %d of %d requests", a.name, m.name, r.Index, r.Pid, per[r.Pid], s.OK)
		if per[r.Pid] == 0 {
			t.Errorf("%s/%s: instance %d (pid %d) answered no request; by pid: %v", a.name, m.name, r.Index, r.Pid, s.ByPid)
		}
	}
}

// wantSocketMode checks that list --json and info --json say how the app holds its sockets.
func wantSocketMode(t *testing.T, h *harness.Home, name, want string) {
	t.Helper()
	if want == "socket" {
		want = "instance"
	}
	for _, r := range rawList(t, h) {
		if r["name"] == name && r["socket"] != want {
			t.Errorf("list --json row %v of %s: socket %v, want %q", r["id"], name, r["socket"], want)
		}
	}
	for _, r := range rawRows(t, h, name) {
		if r["socket"] != want {
			t.Errorf("info --json instance %v of %s: socket %v, want %q", r["instance"], name, r["socket"], want)
		}
	}
}

// The recipes of docs/sockets.md for uvicorn (`--fd 3`) and puma (LISTEN_FDS natively) run
// as written, two instances on one shared socket, through a reload and a restart under load
// with no refused or failed request.
func TestRecipesUnderLoad(t *testing.T) {
	for _, a := range recipes {
		t.Run(a.name, func(t *testing.T) {
			h := harness.NewHome(t)
			p := harness.FreePorts(t, 1)
			h.OK(a.startArgs(t, "web", "--socket", "shared", "--port", strconv.Itoa(p), "-i", strconv.Itoa(instances), "--bind", "127.0.0.1")...)
			rows := h.WaitOnline("web", instances)
			l := harness.StartLoad(t, loadWorkers, url(p))
			warm := phase(t, l, "warm-up", func() { l.WaitRequests(warmup) })
			mustNotFail(t, h, "warm-up", warm)
			spread(t, a, modes[1], rows, "web", warm)
			for _, verb := range []string{"reload", "restart"} {
				s := phase(t, l, verb, func() { timed(t, h, verb, "web") })
				if a.lossyStop == "" {
					mustNotFail(t, h, verb, s)
				} else if s.Refused > 0 || s.OK == 0 {
					t.Errorf("%s: want 0 refused: %s", verb, s)
				} else {
					t.Logf("%s: %d requests failed and none was refused; %s", verb, s.Failed(), a.lossyStop)
				}
				h.WaitOnline("web", instances)
			}
			t.Logf("%s whole run: %s", a.name, l.Stop())
		})
	}
}
