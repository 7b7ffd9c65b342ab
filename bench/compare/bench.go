package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// metric is one row of the results.
type metric struct {
	Key, Group, Label, Unit string
}

// groups are the names --only accepts, in the order sessions run them.
var groups = []string{"cold", "list", "rss", "ecosystem", "cpu", "restart", "crash", "resurrect", "http", "reload"}

func metrics(c config) []metric {
	n, b := strconv.Itoa(c.N), strconv.Itoa(c.Big)
	var ms []metric
	add := func(key, group, label, unit string) { ms = append(ms, metric{key, group, label, unit}) }
	add("cold_start", "cold", "cold daemon start + first answer (ping), ms", "ms")
	add("list_0", "list", "CLI list --json / jlist, 0 apps, ms", "ms")
	add("list_n", "list", "CLI list --json / jlist, "+n+" apps, ms", "ms")
	add("rss_0", "rss", "daemon RSS, 0 apps, MB", "MB")
	add("rss_n", "rss", "daemon RSS, "+n+" apps, MB", "MB")
	if c.Big > 0 {
		add("rss_big", "rss", "daemon RSS, "+b+" apps, MB", "MB")
	}
	add("ecosystem_n", "ecosystem", "start "+n+"-app ecosystem → all online, ms", "ms")
	if c.Big > 0 {
		// Measured as the set-up of the large RSS metric, so it belongs to the rss group.
		add("ecosystem_big", "rss", "start "+b+"-app ecosystem → all online, ms", "ms")
	}
	add("restart_all_n", "restart", "restart all ("+n+" apps) → all online with new pids, ms", "ms")
	add("crash_proc", "crash", "kill -9 → new app process alive (/proc), ms", "ms")
	add("crash_list", "crash", "kill -9 → list shows the new pid, ms", "ms")
	add("skr_save", "resurrect", "save ("+n+" apps), ms", "ms")
	add("skr_kill", "resurrect", "kill ("+n+" apps), ms", "ms")
	add("skr_resurrect", "resurrect", "resurrect → all "+n+" online, ms", "ms")
	add("skr_total", "resurrect", "save + kill + resurrect → all online, ms", "ms")
	add("idle_cpu_n", "cpu", "daemon CPU, idle "+c.Idle.String()+", "+n+" apps, % of a core", "%")
	add("http_ready", "http", "start "+strconv.Itoa(c.HTTPInstances)+" HTTP instances on ports → all answer, ms", "ms")
	return ms
}

// bench holds the figures of every run.
type bench struct {
	cfg     config
	tmp     string
	echoBin string
	// nodeApp is the reload metric's app; when it is "", nodeMissing says why.
	nodeApp, nodeMissing string
	hz                   float64
	log                  io.Writer

	mu      sync.Mutex
	results map[string]map[string][]float64 // metric key → manager name → one value per run
	errs    []string
}

func (b *bench) want(group string) bool { return len(b.cfg.Only) == 0 || b.cfg.Only[group] }

func (b *bench) record(m *manager, run int, key string, v float64, unit string) {
	b.recordFor(m.Name, 8, run, key, v, unit)
}

// recordFor records v under key for who (a manager, or a setup of the reload metric) and logs
// it with who padded to width.
func (b *bench) recordFor(who string, width, run int, key string, v float64, unit string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.results[key] == nil {
		b.results[key] = map[string][]float64{}
	}
	b.results[key][who] = append(b.results[key][who], v)
	fmt.Fprintf(b.log, "  run %d %-*s %-14s %s %s\n", run+1, width, who, key, formatValue(v, unit), unit)
}

func (b *bench) fail(m *manager, run int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	msg := fmt.Sprintf("run %d %s: %v", run+1, m.Name, err)
	b.errs = append(b.errs, msg)
	fmt.Fprintf(b.log, "  ERROR %s\n", msg)
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// sleepCtx sleeps d unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sleepers is an ecosystem of n apps of one instance of /bin/sleep each.
func sleepers(prefix string, n int) []appSpec {
	apps := make([]appSpec, n)
	w := len(strconv.Itoa(n))
	for i := range apps {
		apps[i] = appSpec{Name: fmt.Sprintf("%s-%0*d", prefix, w, i), Script: "/bin/sleep", Args: []string{"100000"}, Instances: 1}
	}
	return apps
}

// pollInterval is the pause between two list calls while waiting for a state.
const pollInterval = 10 * time.Millisecond

// waitOnline polls the manager's list until it shows n instances online with live pids, none
// of them in old.
func (b *bench) waitOnline(ctx context.Context, m *manager, n int, old map[int]bool) ([]proc, error) {
	deadline := time.Now().Add(time.Minute + time.Duration(n)*300*time.Millisecond)
	for {
		procs, err := m.list(ctx)
		if err == nil && onlineCheck(procs, n, old, alive) {
			return procs, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			on := 0
			for _, p := range procs {
				if p.Status == "online" && !old[p.Pid] && alive(p.Pid) {
					on++
				}
			}
			return nil, fmt.Errorf("%d of %d instances online (of %d listed) at the deadline; last list error: %v", on, n, len(procs), err)
		}
		time.Sleep(pollInterval)
	}
}

// waitEmpty polls until the list is empty.
func (b *bench) waitEmpty(ctx context.Context, m *manager) error {
	deadline := time.Now().Add(time.Minute)
	for {
		procs, err := m.list(ctx)
		if err == nil && len(procs) == 0 {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("list not empty after delete all (%d left, err %v)", len(procs), err)
		}
		time.Sleep(pollInterval)
	}
}

// listLatency is the median wall-clock time of ListCalls list calls, each checked to show n rows.
func (b *bench) listLatency(ctx context.Context, m *manager, n int) (float64, error) {
	var ds []float64
	for i := 0; i < b.cfg.ListCalls; i++ {
		t := time.Now()
		out, err := m.run(ctx, m.listArgs...)
		d := msSince(t)
		if err != nil {
			return 0, err
		}
		procs, err := m.parseList(out)
		if err != nil {
			return 0, err
		}
		if len(procs) != n {
			return 0, fmt.Errorf("list shows %d rows, want %d", len(procs), n)
		}
		ds = append(ds, d)
	}
	return median(ds), nil
}

// session runs every wanted metric once on m. It leaves no app and no daemon behind.
func (b *bench) session(ctx context.Context, m *manager, run int) (err error) {
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if m.daemonPid() != 0 {
			if e := m.deleteAll(c); e != nil && err == nil {
				err = e
			}
		}
		if e := m.stopDaemon(c); e != nil && err == nil {
			err = e
		}
	}()
	if err := m.stopDaemon(ctx); err != nil {
		return err
	}
	for _, f := range m.resetFiles {
		os.Remove(filepath.Join(m.Home, f))
	}
	cfg := b.cfg

	// Cold start: no daemon, an existing (warmed-up) home, time to the first answer.
	t := time.Now()
	if _, err := m.run(ctx, "ping"); err != nil {
		return err
	}
	if b.want("cold") {
		b.record(m, run, "cold_start", msSince(t), "ms")
	}
	dpid := m.daemonPid()
	if dpid == 0 {
		return errors.New("no live daemon pid after ping (" + m.PidFile + ")")
	}
	if b.want("list") {
		v, err := b.listLatency(ctx, m, 0)
		if err != nil {
			return err
		}
		b.record(m, run, "list_0", v, "ms")
	}
	if b.want("rss") {
		if err := sleepCtx(ctx, cfg.Settle); err != nil {
			return err
		}
		v, err := rssMB(dpid)
		if err != nil {
			return err
		}
		b.record(m, run, "rss_0", v, "MB")
		fmt.Fprintf(b.log, "    (daemon pid %d: %d threads)\n", dpid, threads(dpid))
	}

	// A failed part is reported and the session goes on with the next one, from no apps.
	part := func(f func() error) {
		if err := f(); err != nil {
			b.fail(m, run, err)
			if ctx.Err() == nil {
				m.deleteAll(ctx)
			}
		}
	}
	if b.want("list") || b.want("rss") || b.want("ecosystem") || b.want("cpu") || b.want("restart") || b.want("crash") || b.want("resurrect") {
		part(func() error { return b.fleet(ctx, m, run, dpid) })
	}
	if b.want("http") {
		part(func() error { return b.httpReady(ctx, m, run) })
	}
	if b.want("reload") {
		for _, s := range reloadSetups {
			if s.Manager == m.Name {
				part(func() error { return b.reloadUnderLoad(ctx, m, run, s) })
			}
		}
	}
	if b.want("rss") && cfg.Big > 0 {
		part(func() error { return b.bigFleet(ctx, m, run) })
	}
	return ctx.Err()
}

// fleet runs the metrics taken with N sleep apps.
func (b *bench) fleet(ctx context.Context, m *manager, run, dpid int) error {
	cfg := b.cfg
	path, err := m.writeEcosystem(b.tmp, "fleet", sleepers("app", cfg.N))
	if err != nil {
		return err
	}
	t := time.Now()
	if _, err := m.run(ctx, m.startArgs(path)...); err != nil {
		return err
	}
	procs, err := b.waitOnline(ctx, m, cfg.N, nil)
	if err != nil {
		return fmt.Errorf("ecosystem of %d: %w", cfg.N, err)
	}
	if b.want("ecosystem") {
		b.record(m, run, "ecosystem_n", msSince(t), "ms")
	}
	stableAt := time.Now()

	if b.want("list") {
		v, err := b.listLatency(ctx, m, cfg.N)
		if err != nil {
			return err
		}
		b.record(m, run, "list_n", v, "ms")
	}
	if b.want("rss") || b.want("cpu") {
		if err := sleepCtx(ctx, cfg.Settle); err != nil {
			return err
		}
	}
	if b.want("rss") {
		v, err := rssMB(dpid)
		if err != nil {
			return err
		}
		b.record(m, run, "rss_n", v, "MB")
		fmt.Fprintf(b.log, "    (daemon pid %d: %d threads)\n", dpid, threads(dpid))
	}
	if b.want("cpu") {
		t0, err := cpuTicks(dpid)
		if err != nil {
			return err
		}
		w := time.Now()
		if err := sleepCtx(ctx, cfg.Idle); err != nil {
			return err
		}
		t1, err := cpuTicks(dpid)
		if err != nil {
			return err
		}
		b.record(m, run, "idle_cpu_n", cpuPercent(t1-t0, b.hz, time.Since(w).Seconds()), "%")
	}
	if b.want("restart") {
		t := time.Now()
		if _, err := m.run(ctx, "restart", "all"); err != nil {
			return err
		}
		procs, err = b.waitOnline(ctx, m, cfg.N, pidSet(procs))
		if err != nil {
			return fmt.Errorf("restart all: %w", err)
		}
		b.record(m, run, "restart_all_n", msSince(t), "ms")
		stableAt = time.Now()
	}
	if b.want("crash") {
		// Both managers count a run shorter than min_uptime (1 s by default) as unstable and may
		// delay its restart: kill only instances that have been up for longer.
		if err := sleepCtx(ctx, time.Until(stableAt.Add(1500*time.Millisecond))); err != nil {
			return err
		}
		sort.Slice(procs, func(i, j int) bool { return procs[i].Name < procs[j].Name })
		k := min(cfg.CrashKills, len(procs))
		var pv, lv []float64
		for i := 0; i < k; i++ {
			target := procs[i*len(procs)/k]
			p, l, err := b.crashOnce(ctx, m, target, dpid)
			if err != nil {
				return fmt.Errorf("crash of %s pid %d: %w", target.Name, target.Pid, err)
			}
			pv, lv = append(pv, p), append(lv, l)
		}
		b.record(m, run, "crash_proc", median(pv), "ms")
		b.record(m, run, "crash_list", median(lv), "ms")
		if procs, err = m.list(ctx); err != nil {
			return err
		}
	}
	if b.want("resurrect") {
		t0 := time.Now()
		if _, err := m.run(ctx, "save"); err != nil {
			return err
		}
		save := msSince(t0)
		t1 := time.Now()
		if _, err := m.run(ctx, "kill"); err != nil {
			return err
		}
		kill := msSince(t1)
		// Not timed: make sure the old daemon is gone before resurrect (both CLIs wait already).
		for deadline := time.Now().Add(30 * time.Second); alive(dpid) && time.Now().Before(deadline); {
			time.Sleep(2 * time.Millisecond)
		}
		t2 := time.Now()
		if _, err := m.run(ctx, "resurrect"); err != nil {
			return err
		}
		if _, err := b.waitOnline(ctx, m, cfg.N, pidSet(procs)); err != nil {
			return fmt.Errorf("resurrect: %w", err)
		}
		res := msSince(t2)
		b.record(m, run, "skr_save", save, "ms")
		b.record(m, run, "skr_kill", kill, "ms")
		b.record(m, run, "skr_resurrect", res, "ms")
		b.record(m, run, "skr_total", save+kill+res, "ms")
	}
	if err := m.deleteAll(ctx); err != nil {
		return err
	}
	return b.waitEmpty(ctx, m)
}

// crashProcPoll is the pause between two /proc scans of the crash metric, crashPoll the one
// between two list calls and two rounds of HTTP requests.
const (
	crashProcPoll = time.Millisecond
	crashPoll     = 2 * time.Millisecond
)

// crashOnce SIGKILLs target and returns the time until a new sleep child of the daemon is
// alive (seen in /proc, independent of the CLI's speed) and until list shows the new pid.
func (b *bench) crashOnce(ctx context.Context, m *manager, target proc, dpid int) (procMS, listMS float64, err error) {
	before := liveChildren(dpid, "sleep")
	if !before[target.Pid] {
		return 0, 0, fmt.Errorf("pid %d is not a live sleep child of daemon %d", target.Pid, dpid)
	}
	known := pidSnapshot()
	t0 := time.Now()
	if err := syscall.Kill(target.Pid, syscall.SIGKILL); err != nil {
		return 0, 0, err
	}
	deadline := t0.Add(30 * time.Second)
	newPid := 0
	for {
		if newPid = newChild(dpid, "sleep", known); newPid != 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, 0, errors.New("no new process within 30s")
		}
		time.Sleep(crashProcPoll)
	}
	procMS = msSince(t0)
	for {
		procs, err := m.list(ctx)
		if err == nil {
			for _, p := range procs {
				if p.Name == target.Name && p.ID == target.ID && p.Pid == newPid && p.Status == "online" {
					return procMS, msSince(t0), nil
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, 0, fmt.Errorf("list never showed new pid %d (last error %v)", newPid, err)
		}
		time.Sleep(crashPoll)
	}
}

// httpReady starts HTTPInstances instances of the echo app on consecutive ports and times
// until each port answers HTTP 200.
func (b *bench) httpReady(ctx context.Context, m *manager, run int) error {
	if b.echoBin == "" {
		return errors.New("no echo app binary")
	}
	base := b.cfg.PortBase
	if m.Name == "PM2" {
		base += 1000
	}
	k := b.cfg.HTTPInstances
	base, err := freeBlock(base, k)
	if err != nil {
		return err
	}
	path, err := m.writeEcosystem(b.tmp, "http", []appSpec{{Name: "web", Script: b.echoBin, Instances: k, PortBase: base}})
	if err != nil {
		return err
	}
	t := time.Now()
	if _, err := m.run(ctx, m.startArgs(path)...); err != nil {
		return err
	}
	if err := waitAnswering(ctx, portRange(base, k), time.Minute); err != nil {
		return fmt.Errorf("http: %w", err)
	}
	b.record(m, run, "http_ready", msSince(t), "ms")
	if err := m.deleteAll(ctx); err != nil {
		return err
	}
	return b.waitEmpty(ctx, m)
}

// portRange is the k ports from base on.
func portRange(base, k int) []int {
	ports := make([]int, k)
	for i := range ports {
		ports[i] = base + i
	}
	return ports
}

// waitAnswering polls every port of ports with GET / until each has answered HTTP 200 once,
// for at most timeout.
func waitAnswering(ctx context.Context, ports []int, timeout time.Duration) error {
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	ready := map[int]bool{}
	deadline := time.Now().Add(timeout)
	for {
		for _, p := range ports {
			if ready[p] {
				continue
			}
			resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(p) + "/")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ready[p] = true
				}
			}
		}
		if len(ready) == len(ports) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d ports answering after %v", len(ready), len(ports), timeout)
		}
		time.Sleep(crashPoll)
	}
}

// freeBlock returns the first of k consecutive free ports on 127.0.0.1, trying base, base+100,
// ... (another program, or a client's ephemeral port, may hold one of them).
func freeBlock(base, k int) (int, error) {
	for try := 0; try < 20; try++ {
		b := base + try*100
		free := true
		for p := b; p < b+k && free; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return b, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports from %d on (use --port-base)", k, base)
}

// bigFleet measures the daemon's memory with Big apps.
func (b *bench) bigFleet(ctx context.Context, m *manager, run int) error {
	path, err := m.writeEcosystem(b.tmp, "big", sleepers("big", b.cfg.Big))
	if err != nil {
		return err
	}
	t := time.Now()
	if _, err := m.run(ctx, m.startArgs(path)...); err != nil {
		return err
	}
	if _, err := b.waitOnline(ctx, m, b.cfg.Big, nil); err != nil {
		return fmt.Errorf("ecosystem of %d: %w", b.cfg.Big, err)
	}
	b.record(m, run, "ecosystem_big", msSince(t), "ms")
	if err := sleepCtx(ctx, b.cfg.Settle); err != nil {
		return err
	}
	dpid := m.daemonPid()
	v, err := rssMB(dpid)
	if err != nil {
		return err
	}
	b.record(m, run, "rss_big", v, "MB")
	fmt.Fprintf(b.log, "    (daemon pid %d: %d threads)\n", dpid, threads(dpid))
	if err := m.deleteAll(ctx); err != nil {
		return err
	}
	return b.waitEmpty(ctx, m)
}
