package faults

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/host/procfs"
)

// The kill-anywhere test (issue 11, "Done means"): the daemon is SIGKILLed at random instants
// during `start -i 40`, `restart all` of 50 instances, side-by-side and rolling reloads, `run`
// of a file of kaRunApps apps and its own start-up (while it restarts instances that died),
// 100 times in all in cgroup mode and kaFallbackKills times per scenario in process-group mode.
// After each kill the next CLI call starts a new daemon and, once the list has settled:
//
//   - every live app process of the home is a listed instance's pid or a descendant of one
//     (0 unlisted), and in cgroup mode it is in a listed instance's cgroup;
//   - no instance is run by two top-level processes (0 duplicates);
//   - no two rows share a port, and each online instance's port is answered by its listed pid;
//   - every listed online pid is alive, nothing is errored, and exactly one daemon runs;
//   - a reload cut short is complete or rolled back: every instance on the old ports or every
//     one on the new, with `info` giving the live spec of the ports listed.
//
// Then the scenario's precondition is restored and the next kill comes. Each scenario logs its
// figures. PMDAEMON_KILL_SEED=N replays the kill instants of a run (each run logs its seed).

// kaFallbackKills is the number of kills per scenario in process-group mode.
const kaFallbackKills = 5

// kaMaxFailingRounds ends a scenario after that many rounds with findings, so a daemon that
// does not hold the promise fails in minutes, not in an hour; the figures so far are logged.
const kaMaxFailingRounds = 2

// kaOps is one scenario on its home.
type kaOps struct {
	// prepare runs before each operation (nil: nothing to do).
	prepare func()
	// act is the operation: one CLI call, run on another goroutine (so it uses h.Exec only).
	act func() harness.Result
	// check returns the scenario's own findings on the settled rows.
	check func(rows []api.Instance) []string
	// restore brings back the precondition of the next round.
	restore func(rows []api.Instance)
}

type kaScenario struct {
	name  string
	kills int // in cgroup mode
	ops   func(t *testing.T, h *harness.Home) kaOps
}

// The kills are spread by cost: a round of `run` or `restart all` takes the daemon several
// times longer than a reload's.
var kaScenarios = []kaScenario{
	{"start-i-40", 20, kaStart40},
	{"restart-all-50", 15, kaRestartAll50},
	{"side-by-side-reload", 20, kaSideBySideReload},
	{"rolling-reload", 20, kaRollingReload},
	{fmt.Sprintf("run-%d-apps", kaRunApps), 10, kaRun},
	{"daemon-start-up", 15, kaStartUp},
}

func TestKillAnywhere(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PMDAEMON_KILL_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PMDAEMON_KILL_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("kill instants from seed %d (PMDAEMON_KILL_SEED=%d replays them)", seed, seed)
	total := 0
	for _, sc := range kaScenarios {
		total += sc.kills
	}
	if total != 100 {
		t.Fatalf("the scenarios add up to %d kills in cgroup mode, want 100", total)
	}
	for _, mode := range processModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			for _, sc := range kaScenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					kills := sc.kills
					if mode == groupMode {
						kills = kaFallbackKills
					}
					hs := fnv.New64a()
					hs.Write([]byte(mode + "/" + sc.name))
					killAnywhere(t, mode, sc, kills, rand.New(rand.NewPCG(seed, hs.Sum64())))
				})
			}
		})
	}
}

// kaFigures are a scenario's totals.
type kaFigures struct {
	kills, inflight, opFailed, failingRounds int
	unlisted, dupes, ports, other            int
	rounds, recover                          time.Duration // summed: whole rounds, kill to end of audit
}

func killAnywhere(t *testing.T, mode string, sc kaScenario, kills int, rng *rand.Rand) {
	began := time.Now()
	h := modeHome(t, mode)
	// The cgroup checks run when the daemon says it is in cgroup mode; a daemon in the wrong
	// mode has failed the test already, and the rest of the checks still run.
	cg := checkMode(t, h, mode).ProcessMode == cgroupMode
	ops := sc.ops(t, h)

	// The operation once without a kill: it must leave a clean home, and how long it takes
	// (until the list settles) is the window the kill instants are drawn from.
	if ops.prepare != nil {
		ops.prepare()
	}
	begin := time.Now()
	if r := ops.act(); r.Code != 0 {
		t.Fatalf("%s without a kill: exit %d\nstdout: %s\nstderr: %s", sc.name, r.Code, r.Stdout, r.Stderr)
	}
	rows, ok := kaSettle(t, h, 60*time.Second)
	window := time.Since(begin)
	if !ok {
		t.Fatalf("%s without a kill: the list did not settle:\n%s", sc.name, rowsText(rows))
	}
	if f := kaAudit(h, cg, rows, ops.check); !f.clean() {
		t.Fatalf("%s without a kill already fails:\n%s\nlist:\n%s", sc.name, f, rowsText(rows))
	}
	ops.restore(rows)
	t.Logf("%s/%s: the operation takes %s until the list settles; kills fall in [0, %s)", mode, sc.name,
		window.Round(time.Millisecond), window.Round(time.Millisecond))

	var fig kaFigures
	for round := 1; round <= kills; round++ {
		roundBegin := time.Now()
		if ops.prepare != nil {
			ops.prepare()
		}
		delay := time.Duration(rng.Int64N(int64(window)))
		done, inflight, daemon := kaKillDuring(t, h, ops.act, delay)
		fig.kills++
		if inflight {
			fig.inflight++
		}
		killed := time.Now()
		r, rows, f := kaAfter(t, h, cg, done, ops.check)
		fig.recover += time.Since(killed)
		var opErr []string
		if r.Code != 0 {
			fig.opFailed++
			if !strings.HasPrefix(r.Stderr, "Error: ") || strings.Contains(r.Stderr, "panic") {
				opErr = append(opErr, fmt.Sprintf("the interrupted operation failed without a clean error: exit %d, stderr %q", r.Code, r.Stderr))
			}
		}
		f.other = append(f.other, opErr...)
		fig.unlisted += len(f.unlisted)
		fig.dupes += len(f.dupes)
		fig.ports += len(f.ports)
		fig.other += len(f.other)
		if !f.clean() {
			fig.failingRounds++
			t.Errorf("%s round %d: daemon %d SIGKILLed %s into the operation (still running: %v; it ended with exit %d, stderr %q); after the next daemon settled:\n%s\nlist:\n%s",
				sc.name, round, daemon, delay.Round(time.Millisecond), inflight, r.Code, strings.TrimSpace(r.Stderr), f, rowsText(rows))
			kaClearLeftovers(t, f)
			if fig.failingRounds >= kaMaxFailingRounds {
				fig.rounds += time.Since(roundBegin)
				t.Errorf("%s: stopped after %d failing rounds of %d", sc.name, fig.failingRounds, kills)
				break
			}
		}
		ops.restore(rows)
		fig.rounds += time.Since(roundBegin)
	}
	if fig.kills > 0 {
		t.Logf("%s/%s: a round took %s on average, %s of it from the kill to the end of the audit", mode, sc.name,
			(fig.rounds / time.Duration(fig.kills)).Round(time.Millisecond), (fig.recover / time.Duration(fig.kills)).Round(time.Millisecond))
	}
	t.Logf("%s/%s: %d kills (%d while the CLI call was still running, %d calls failed); found %d unlisted app processes, %d duplicated instances, %d port faults, %d other faults; %d of %d rounds failed; %s",
		mode, sc.name, fig.kills, fig.inflight, fig.opFailed, fig.unlisted, fig.dupes, fig.ports, fig.other, fig.failingRounds, fig.kills,
		time.Since(began).Round(time.Second))
}

// kaKillDuring runs act on another goroutine, SIGKILLs the daemon delay after it began (the
// daemon then in daemon.pid, waiting for one to run if none does yet), and returns where act's
// result will come, whether act was still running at the kill, and the killed pid.
func kaKillDuring(t *testing.T, h *harness.Home, act func() harness.Result, delay time.Duration) (<-chan harness.Result, bool, int) {
	t.Helper()
	done := make(chan harness.Result, 1)
	go func() { done <- act() }()
	time.Sleep(delay) // the instant of the fault, drawn at random: not a synchronisation
	pid := liveDaemon(t, h)
	inflight := len(done) == 0
	harness.Sigkill(t, pid)
	harness.WaitDead(t, 10*time.Second, "the SIGKILLed daemon to die", pid)
	return done, inflight, pid
}

// liveDaemon waits until daemon.pid names a live daemon process of h and returns its pid.
func liveDaemon(t *testing.T, h *harness.Home) int {
	t.Helper()
	var pid int
	harness.Eventually(t, 20*time.Second, "a live daemon in daemon.pid", func() bool {
		b, err := os.ReadFile(filepath.Join(h.Dir, "daemon.pid"))
		if err != nil {
			return false
		}
		p, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || !harness.Alive(p) || envOf(p, "PMDAEMON_HOME") != h.Dir {
			return false
		}
		if c, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline"); err != nil || string(c) != harness.Daemon+"\x00daemon\x00" {
			return false
		}
		pid = p
		return true
	})
	return pid
}

// kaAfter makes the next CLI call (which starts a new daemon), collects the interrupted
// operation's result from done, waits for the list to settle and audits the home, polling a few
// seconds for a clean audit (a daemon may still be reaping what it found). It returns the
// operation's result and the last rows and findings.
//
// The next call is made before the interrupted one has returned: a CLI whose daemon died while
// it waited for it to answer (the start-up scenario's `ping`) waits up to 15s for one to answer,
// and returns as soon as the next call's daemon does. It must have returned before the audit,
// which would count it as an unlisted process of the home.
func kaAfter(t *testing.T, h *harness.Home, cg bool, done <-chan harness.Result, check func([]api.Instance) []string) (harness.Result, []api.Instance, kaFindings) {
	t.Helper()
	h.List()
	var r harness.Result
	select {
	case r = <-done:
	case <-time.After(150 * time.Second):
		t.Fatalf("the interrupted operation has not returned 150s after the next CLI call")
	}
	rows, ok := kaSettle(t, h, 30*time.Second)
	var unsettled []string
	if !ok {
		unsettled = append(unsettled, "the list did not settle within 30s")
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		f := kaAudit(h, cg, rows, check)
		if f.clean() || time.Now().After(deadline) {
			f.other = append(unsettled, f.other...)
			return r, rows, f
		}
		time.Sleep(100 * time.Millisecond)
		rows, ok = kaSettle(t, h, 10*time.Second)
		if !ok && len(unsettled) == 0 {
			unsettled = append(unsettled, "the list did not settle again within 10s")
		}
	}
}

// kaSettle polls the list until no instance is starting, stopping or waiting to restart, and no
// app has an instance index twice (a reload in progress). It returns the last list and whether
// it settled before timeout.
func kaSettle(t *testing.T, h *harness.Home, timeout time.Duration) ([]api.Instance, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rows := apiList(t, h)
		if settled(rows) && uniqueIndexes(rows) {
			return rows, true
		}
		if time.Now().After(deadline) {
			return rows, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func uniqueIndexes(rows []api.Instance) bool {
	seen := map[string]bool{}
	for _, r := range rows {
		k := r.Name + "\x00" + strconv.Itoa(r.Index)
		if seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}

// kaFindings is what an audit of a home found wrong.
type kaFindings struct {
	unlisted []int    // app processes that are no listed instance's pid nor a descendant of one
	dupes    []string // instances run by more than one top-level process
	ports    []string // ports shared by rows, or not answered by the listed pid
	other    []string // dead listed pids, errored rows, cgroups, daemons, the scenario's checks
}

func (f kaFindings) clean() bool {
	return len(f.unlisted)+len(f.dupes)+len(f.ports)+len(f.other) == 0
}

func (f kaFindings) String() string {
	var b strings.Builder
	if len(f.unlisted) > 0 {
		fmt.Fprintf(&b, "  %d unlisted app processes:\n", len(f.unlisted))
		for _, p := range f.unlisted {
			fmt.Fprintf(&b, "    %s\n", describeProc(p))
		}
	}
	for _, s := range f.dupes {
		fmt.Fprintf(&b, "  duplicate: %s\n", s)
	}
	for _, s := range f.ports {
		fmt.Fprintf(&b, "  port: %s\n", s)
	}
	for _, s := range f.other {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	return strings.TrimRight(b.String(), "\n")
}

// describeProc says which app process pid is: its app and instance (from its environment),
// parent and command.
func describeProc(pid int) string {
	ppid := 0
	if st, err := procfs.Read(pid); err == nil {
		ppid = st.Ppid
	}
	return fmt.Sprintf("pid %d: %s[%s], parent %d, %s", pid, envOf(pid, "PMDAEMON_APP_NAME"), envOf(pid, "PM2_INSTANCE_ID"), ppid, cmdline(pid))
}

// kaAudit checks one snapshot of the home against rows (see TestKillAnywhere for the rules),
// with the cgroup checks when cg is set.
func kaAudit(h *harness.Home, cg bool, rows []api.Instance, check func([]api.Instance) []string) kaFindings {
	var f kaFindings
	listed := map[int]bool{}
	for _, r := range rows {
		if r.Pid != 0 {
			listed[r.Pid] = true
		}
	}
	procs := sorted(h.AppProcs())
	isApp := map[int]bool{}
	for _, p := range procs {
		isApp[p] = true
	}
	tops := map[string][]int{}
	for _, p := range procs {
		if !descendsFrom(p, listed) {
			f.unlisted = append(f.unlisted, p)
		}
		if st, err := procfs.Read(p); err == nil && !isApp[st.Ppid] {
			k := fmt.Sprintf("%s[%s]", envOf(p, "PMDAEMON_APP_NAME"), envOf(p, "PM2_INSTANCE_ID"))
			tops[k] = append(tops[k], p)
		}
	}
	for k, ps := range tops {
		if len(ps) > 1 {
			f.dupes = append(f.dupes, fmt.Sprintf("%s is run by %d processes %v", k, len(ps), ps))
		}
	}
	slices.Sort(f.dupes)
	if d := duplicates(rows); d != "" {
		f.ports = append(f.ports, "rows share "+d)
	}
	inCgroups := map[int]bool{}
	for _, r := range rows {
		switch r.Status {
		case "online":
			if !harness.Alive(r.Pid) {
				f.other = append(f.other, fmt.Sprintf("%s[%d] is listed online with pid %d, which is not alive", r.Name, r.Index, r.Pid))
				continue
			}
			if p := port(r); p != 0 {
				w, err := getWhoSoon(p)
				switch {
				case err != nil:
					f.ports = append(f.ports, fmt.Sprintf("%s[%d] (pid %d) does not answer on its port %d: %v", r.Name, r.Index, r.Pid, p, err))
				case w.Pid != r.Pid || w.App != r.Name || w.Instance != strconv.Itoa(r.Index):
					f.ports = append(f.ports, fmt.Sprintf("port %d of %s[%d] (pid %d) is answered by pid %d (%s[%s])", p, r.Name, r.Index, r.Pid, w.Pid, w.App, w.Instance))
				}
			}
			if cg {
				if m := inOwnCgroup(r); m != "" {
					f.other = append(f.other, fmt.Sprintf("%s[%d] (pid %d): %s", r.Name, r.Index, r.Pid, m))
				} else if ps, err := cgroupProcs(r.Cgroup); err == nil {
					for _, p := range ps {
						inCgroups[p] = true
					}
				}
			}
		case "stopped":
		default:
			f.other = append(f.other, fmt.Sprintf("%s[%d] is %s: %s", r.Name, r.Index, r.Status, r.Reason))
		}
		// The port of an instance that is not running is answered by no one.
		if p := port(r); r.Status != "online" && p != 0 {
			if w, err := harness.GetWho(p); err == nil {
				f.ports = append(f.ports, fmt.Sprintf("port %d of %s %s[%d] is answered by pid %d (%s[%s])", p, r.Status, r.Name, r.Index, w.Pid, w.App, w.Instance))
			}
		}
	}
	if cg {
		for _, p := range procs {
			if !inCgroups[p] && harness.Alive(p) {
				f.other = append(f.other, fmt.Sprintf("pid %d (%s[%s]) is in no listed instance's cgroup", p, envOf(p, "PMDAEMON_APP_NAME"), envOf(p, "PM2_INSTANCE_ID")))
			}
		}
	}
	if ds := h.DaemonProcs(); len(ds) != 1 {
		f.other = append(f.other, fmt.Sprintf("daemon processes %v, want exactly one", ds))
	}
	if check != nil {
		f.other = append(f.other, check(rows)...)
	}
	return f
}

// descendsFrom reports whether pid or one of its ancestors is in set.
func descendsFrom(pid int, set map[int]bool) bool {
	for range 64 {
		if set[pid] {
			return true
		}
		st, err := procfs.Read(pid)
		if err != nil || st.Ppid <= 1 {
			return false
		}
		pid = st.Ppid
	}
	return false
}

// kaClearLeftovers kills what an audit found unlisted, so that the next round starts clean.
func kaClearLeftovers(t *testing.T, f kaFindings) {
	t.Helper()
	for _, p := range f.unlisted {
		syscall.Kill(p, syscall.SIGKILL)
	}
	harness.WaitDead(t, 10*time.Second, "the unlisted processes to die", f.unlisted...)
}

// kaDeleteAll deletes every app of h and checks that no app process is left.
func kaDeleteAll(t *testing.T, h *harness.Home) {
	t.Helper()
	if len(apiList(t, h)) > 0 {
		h.OK("delete", "all")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := h.AppProcs()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var d []string
			for _, p := range left {
				d = append(d, describeProc(p))
				syscall.Kill(p, syscall.SIGKILL)
			}
			t.Errorf("app processes left 15s after delete all:\n  %s", strings.Join(d, "\n  "))
			harness.WaitDead(t, 10*time.Second, "the left processes to die", left...)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// appShape checks the rows of app name: at most n (exactly n, all online, with exact), each
// index in 0..n-1 once, and a port, where it has one, of base+index (unchecked for base < 0).
func appShape(rows []api.Instance, name string, n, base int, exact bool) []string {
	var out []string
	rs := harness.Rows(rows, name)
	if len(rs) > n || exact && len(rs) != n {
		out = append(out, fmt.Sprintf("%s has %d instances, want %d", name, len(rs), n))
	}
	seen := map[int]bool{}
	for _, r := range rs {
		if r.Index < 0 || r.Index >= n || seen[r.Index] {
			out = append(out, fmt.Sprintf("%s has instance index %d twice or out of 0..%d", name, r.Index, n-1))
		}
		seen[r.Index] = true
		if exact && r.Status != "online" {
			out = append(out, fmt.Sprintf("%s[%d] is %s, want online", name, r.Index, r.Status))
		}
		if p := port(r); base >= 0 && p != 0 && p != base+r.Index {
			out = append(out, fmt.Sprintf("%s[%d] is on port %d, want %d", name, r.Index, p, base+r.Index))
		}
	}
	return out
}

// kaStart40: `start -i 40` on a fixed range. Precondition: no app.
func kaStart40(t *testing.T, h *harness.Home) kaOps {
	base := harness.FreePorts(t, 40)
	return kaOps{
		act: func() harness.Result {
			return h.Exec("start", plainEcho, "--name", "big", "-i", "40", "--port", harness.PortRange(base, base+39))
		},
		check:   func(rows []api.Instance) []string { return appShape(rows, "big", 40, base, false) },
		restore: func([]api.Instance) { kaDeleteAll(t, h) },
	}
}

// kaRestartAll50: `restart all` of five apps of 10 instances. Precondition: all 50 online.
func kaRestartAll50(t *testing.T, h *harness.Home) kaOps {
	bases := make([]int, 5)
	for i := range bases {
		bases[i] = harness.FreePorts(t, 10)
		h.OK("start", plainEcho, "--name", fmt.Sprintf("r%d", i), "-i", "10", "--port", harness.PortRange(bases[i], bases[i]+9))
	}
	allOnline := func(rows []api.Instance) bool {
		for i := range bases {
			if !harness.AllOnline(fmt.Sprintf("r%d", i), 10)(rows) {
				return false
			}
		}
		return len(rows) == 50
	}
	apiWait(t, h, 30*time.Second, "50 instances online", allOnline)
	return kaOps{
		act: func() harness.Result { return h.Exec("restart", "all") },
		check: func(rows []api.Instance) []string {
			var out []string
			for i, b := range bases {
				out = append(out, appShape(rows, fmt.Sprintf("r%d", i), 10, b, true)...)
			}
			return out
		},
		restore: func(rows []api.Instance) {
			if !allOnline(rows) {
				h.OK("restart", "all")
				apiWait(t, h, 30*time.Second, "50 instances online again", allOnline)
			}
		},
	}
}

// kaReload: `reload NAME --port OTHER` of n instances between the fixed ranges starting at
// bases[0] and bases[1], side by side when they do not overlap, rolling when they do.
// Precondition: all n online on one of the ranges.
func kaReload(t *testing.T, h *harness.Home, name string, n int, bases [2]int, minUptime string) kaOps {
	start := func() {
		h.OK("start", plainEcho, "--name", name, "-i", strconv.Itoa(n), "--port", harness.PortRange(bases[0], bases[0]+n-1), "--min-uptime", minUptime)
		apiWait(t, h, 20*time.Second, name+" online", harness.AllOnline(name, n))
	}
	start()
	cur := 0 // the range the app is on
	return kaOps{
		act: func() harness.Result {
			return h.Exec("reload", name, "--port", harness.PortRange(bases[1-cur], bases[1-cur]+n-1))
		},
		check: func(rows []api.Instance) []string {
			at, out := reloadShape(h, rows, name, n, bases[:])
			if at >= 0 {
				cur = at
			}
			return out
		},
		restore: func(rows []api.Instance) {
			if at, out := reloadShape(h, rows, name, n, bases[:]); at < 0 || len(out) > 0 {
				h.Run("delete", name)
				start()
				cur = 0
			}
		},
	}
}

// reloadShape checks that app name has n online instances, all on the fixed range of one of
// bases, and that `info` gives that range as the live spec. It returns the index in bases of
// that range, or -1.
func reloadShape(h *harness.Home, rows []api.Instance, name string, n int, bases []int) (int, []string) {
	out := appShape(rows, name, n, -1, true)
	got := harness.PortsOf(rows, name)
	at := -1
	for i, b := range bases {
		if slices.Equal(got, harness.Seq(b, n)) {
			at = i
		}
	}
	if at < 0 {
		return -1, append(out, fmt.Sprintf("%s is on ports %v: neither all on %s nor all on %s (a reload left half done)",
			name, got, harness.PortRange(bases[0], bases[0]+n-1), harness.PortRange(bases[1], bases[1]+n-1)))
	}
	info := h.Info(name)
	live, err := ports.ParseSpec(info.LivePortSpec)
	if err != nil || live.Kind != ports.Range || !slices.Equal(harness.Seq(live.Start, live.Size()), got) || !slices.Equal(sorted(info.Ports), sorted(got)) {
		out = append(out, fmt.Sprintf("info %s: live spec %q (override %v), ports %v; the instances are listed on %v",
			name, info.LivePortSpec, info.PortOverride, info.Ports, got))
	}
	return at, out
}

// kaSideBySideReload: 10 instances reloaded between two disjoint ranges.
func kaSideBySideReload(t *testing.T, h *harness.Home) kaOps {
	a, b := harness.FreePorts(t, 10), harness.FreePorts(t, 10)
	return kaReload(t, h, "sbs", 10, [2]int{a, b}, "300ms")
}

// kaRollingReload: 6 instances reloaded between a range and the same range shifted by one,
// which is done one instance at a time.
func kaRollingReload(t *testing.T, h *harness.Home) kaOps {
	a := harness.FreePorts(t, 7)
	return kaReload(t, h, "roll", 6, [2]int{a, a + 1}, "200ms")
}

// kaRunApps is the number of apps in the `run` scenario's file. The issue ran 100; a -race
// daemon starts them at about 100 ms each on a loaded 2-core machine, and half as many keep
// the scenario (a file of many apps, the daemon killed part way through) at half the time.
const kaRunApps = 50

// kaRun: `run` of a JSON file of kaRunApps apps, each on its own port. Precondition: no app.
func kaRun(t *testing.T, h *harness.Home) kaOps {
	base := harness.FreePorts(t, kaRunApps)
	type app struct {
		Name   string `json:"name"`
		Script string `json:"script"`
		Port   string `json:"port"`
	}
	var f struct {
		Apps []app `json:"apps"`
	}
	for i := range kaRunApps {
		f.Apps = append(f.Apps, app{fmt.Sprintf("a%03d", i), plainEcho, strconv.Itoa(base + i)})
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "apps.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return kaOps{
		act: func() harness.Result { return h.Exec("run", file) },
		check: func(rows []api.Instance) []string {
			var out []string
			for i := range kaRunApps {
				out = append(out, appShape(rows, fmt.Sprintf("a%03d", i), 1, base+i, false)...)
			}
			return out
		},
		restore: func([]api.Instance) { kaDeleteAll(t, h) },
	}
}

// kaStartUp: the daemon's own start-up while it restarts 20 instances that died meanwhile.
// Before each round the daemon is SIGKILLed and so is every instance; the operation is the
// next CLI call (`ping`), whose daemon is killed while it brings them back.
func kaStartUp(t *testing.T, h *harness.Home) kaOps {
	base := harness.FreePorts(t, 20)
	h.OK("start", plainEcho, "--name", "boot", "-i", "20", "--port", harness.PortRange(base, base+19))
	apiWait(t, h, 20*time.Second, "boot online", harness.AllOnline("boot", 20))
	return kaOps{
		prepare: func() {
			d := liveDaemon(t, h)
			harness.Sigkill(t, d)
			harness.WaitDead(t, 10*time.Second, "the daemon to die", d)
			procs := h.AppProcs()
			for _, p := range procs {
				syscall.Kill(p, syscall.SIGKILL)
			}
			harness.WaitDead(t, 10*time.Second, "every instance to die", procs...)
		},
		act:   func() harness.Result { return h.Exec("ping") },
		check: func(rows []api.Instance) []string { return appShape(rows, "boot", 20, base, true) },
		restore: func(rows []api.Instance) {
			if !harness.AllOnline("boot", 20)(rows) {
				h.OK("restart", "boot")
				apiWait(t, h, 20*time.Second, "boot online again", harness.AllOnline("boot", 20))
			}
		},
	}
}

// getWhoSoon asks the app on port who it is, for up to five seconds while nothing answers:
// an instance is listed online once its process runs, which may be a moment before it has
// bound its port (twenty echo apps started together on a loaded machine).
func getWhoSoon(port int) (harness.Who, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		w, err := harness.GetWho(port)
		if err == nil || time.Now().After(deadline) {
			return w, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
