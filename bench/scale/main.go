// Command scale measures pmdaemon with very many instances: start N (default 10,000) instances
// of `/bin/sleep`, time until all are online, time whole `list` and `list --json` processes,
// read the daemon's RSS, restart all, and kill. With -linearity it also measures what starting
// 500 apps costs beside 0, 1500 and 4000 running ones, in wall time and in the daemon's CPU
// time (the figure a shared, loaded machine disturbs least).
//
//	go run ./bench/scale -n 10000
//	go run ./bench/scale -n 0 -linearity
//
// Every daemon runs in its own home under a temp dir; on every exit (end, error, SIGINT,
// SIGTERM, SIGHUP) the bench runs `pmdaemon kill`, then SIGKILLs any process whose environment
// names the temp dir, then removes it. docs/performance.md has the figures and what they need
// (RLIMIT_NOFILE: one descriptor an instance and 768 for the daemon, which the bench raises as root; pid_max).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// idleWindow is how long the daemon's idle CPU is measured (resolution: one 10 ms tick).
const idleWindow = 20 * time.Second

// appsPerFile stays under the ecosystem file's limit of 1024 apps.
const appsPerFile = 1000

type options struct {
	n         int
	bin       string
	linearity bool
	listRuns  int
	settle    time.Duration
	timeout   time.Duration
	keep      bool
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 10000, "instances of the scale run (0 skips it)")
	flag.StringVar(&o.bin, "bin", "", "pmdaemon binary to measure, its pmdaemond beside it (default: build ./cmd/pmdaemon and ./cmd/pmdaemond)")
	flag.BoolVar(&o.linearity, "linearity", false, "also measure starting 500 apps beside 0, 1500 and 4000")
	flag.IntVar(&o.listRuns, "list-runs", 10, "whole list processes timed per form; the figure is their median")
	flag.DurationVar(&o.settle, "settle", 5*time.Second, "pause before reading RSS")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "longest wait for all instances online")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (homes, logs)")
	flag.Parse()
	if o.n < 0 || o.listRuns < 1 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: scale [-n N] [-linearity] [-bin PATH] [-list-runs N] [-settle D] [-timeout D] [-keep]")
		os.Exit(2)
	}
	os.Exit(realMain(o))
}

func realMain(o options) int {
	tmp, err := os.MkdirTemp("", "pmdaemon-scale-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: temp dir: %v\n", err)
		return 1
	}
	b := &bench{opts: o, tmp: tmp}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	defer b.cleanup()
	if err := b.run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 1
	}
	return 0
}

type bench struct {
	opts  options
	tmp   string
	bin   string
	homes []string
}

func (b *bench) run(ctx context.Context) error {
	if err := b.checkLimits(); err != nil {
		return err
	}
	b.bin = b.opts.bin
	if b.bin == "" {
		b.bin = filepath.Join(b.tmp, "pmdaemon")
		// The CLI and, beside it, the daemon binary it starts.
		out, err := exec.CommandContext(ctx, "go", "build", "-o", b.tmp+"/", "./cmd/pmdaemon", "./cmd/pmdaemond").CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build ./cmd/pmdaemon ./cmd/pmdaemond (run from the repository): %v: %s", err, out)
		}
	}
	fmt.Printf("machine: %d CPUs, load %s, %s\n", runtime.NumCPU(), loadAvg(), b.bin)
	if b.opts.n > 0 {
		if err := b.scale(ctx, b.opts.n); err != nil {
			return err
		}
	}
	if b.opts.linearity {
		return b.linearity(ctx)
	}
	return nil
}

// checkLimits raises RLIMIT_NOFILE (the CLI and the daemon it starts inherit it) to what n
// instances need, the hard limit too where the bench may (root), and says whether n instances
// fit in it and in pid_max.
func (b *bench) checkLimits() error {
	need := b.opts.n + 100
	if b.opts.linearity {
		need = max(need, 4600)
	}
	// The daemon refuses a start that would take it past one descriptor an instance of
	// /bin/sleep (its pidfd) plus 768 of its own and for spawns and checks in progress.
	instances := b.opts.n
	if b.opts.linearity {
		instances = max(instances, 4500)
	}
	want := uint64(instances + 1024)
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if rl.Max < want {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return fmt.Errorf("RLIMIT_NOFILE hard limit is %d; %d instances need %d (the daemon budgets one descriptor an instance of /bin/sleep, and 768 of its own) and raising it failed: %w; raise it (ulimit -Hn as root, or LimitNOFILE=)", rl.Max, instances, want, err)
		}
		rl = raised
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE to its hard limit %d: %w", rl.Max, err)
	}
	pm, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return fmt.Errorf("reading pid_max: %w", err)
	}
	if m, _ := strconv.Atoi(strings.TrimSpace(string(pm))); m < need+2000 {
		return fmt.Errorf("kernel.pid_max is %d; %d instances need it above %d", m, need, need+2000)
	}
	return nil
}

// daemon is one home with its daemon.
type daemon struct {
	b    *bench
	home string
	next int // the next app number, for unique names
}

func (b *bench) newDaemon(name string) (*daemon, error) {
	home := filepath.Join(b.tmp, name)
	b.homes = append(b.homes, home)
	d := &daemon{b: b, home: home}
	if _, err := d.cli("ping"); err != nil {
		return nil, err
	}
	return d, nil
}

// cli runs one pmdaemon command to its end and returns its stdout.
func (d *daemon) cli(args ...string) ([]byte, error) {
	cmd := exec.Command(d.b.bin, args...)
	cmd.Env = append(os.Environ(), "PMDAEMON_HOME="+d.home)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("pmdaemon %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// startApps writes n sleep apps in ecosystem files of appsPerFile and runs them.
func (d *daemon) startApps(n int) error {
	type app struct {
		Name      string   `json:"name"`
		Script    string   `json:"script"`
		Args      []string `json:"args"`
		Instances int      `json:"instances"`
	}
	for n > 0 {
		k := min(n, appsPerFile)
		apps := make([]app, k)
		for i := range apps {
			apps[i] = app{Name: "s" + strconv.Itoa(d.next), Script: "/bin/sleep", Args: []string{"3600"}, Instances: 1}
			d.next++
		}
		data, err := json.Marshal(map[string]any{"apps": apps})
		if err != nil {
			return err
		}
		file := filepath.Join(d.home, fmt.Sprintf("apps-%d.json", d.next))
		if err := os.WriteFile(file, data, 0o600); err != nil {
			return err
		}
		if _, err := d.cli("run", file); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

type instance struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Pid    int    `json:"pid"`
}

// apiClient makes requests to the daemon's API on its socket.
func (d *daemon) apiClient() *http.Client {
	socket := filepath.Join(d.home, "daemon.sock")
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "unix", socket)
	}}}
}

// list asks the daemon's API directly (GET /v1/list), as the cheapest poll there is.
func (d *daemon) list(ctx context.Context) ([]instance, error) {
	client := d.apiClient()
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://pmdaemon/v1/list", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/list: %s: %s", resp.Status, body)
	}
	var rows []instance
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, fmt.Errorf("GET /v1/list: %w", err)
	}
	return rows, nil
}

// waitOnline polls until want instances are online with live pids, each a pid other than
// the one old gives for its name (old is nil, or the pids before a restart: compared per name,
// as a pid of the old set may well be reused by another instance's new process).
func (d *daemon) waitOnline(ctx context.Context, want int, old map[string]int) error {
	deadline := time.Now().Add(d.b.opts.timeout)
	last := ""
	for {
		rows, err := d.list(ctx)
		if err == nil {
			online := 0
			for _, r := range rows {
				if r.Status == "online" && r.Pid > 0 && r.Pid != old[r.Name] {
					online++
				}
			}
			if online == want && len(rows) == want {
				return nil
			}
			last = fmt.Sprintf("%d of %d instances online (want %d)", online, len(rows), want)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not all online after %s: %s", d.b.opts.timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(max(100*time.Millisecond, time.Duration(want)*time.Millisecond/20)):
			// A list makes the daemon measure every instance (at most once a second): with
			// 10,000 a poll every 500 ms, not to measure the poll instead of the daemon.
		}
	}
}

func (d *daemon) pid() (int, error) {
	b, err := os.ReadFile(filepath.Join(d.home, "daemon.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// cpu is the daemon's user + system time so far.
func (d *daemon) cpu() (time.Duration, error) {
	pid, err := d.pid()
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(ut+st) * tick, nil
}

// status returns a /proc/PID/status field of the daemon ("VmRSS", "Threads").
func (d *daemon) status(field string) (string, error) {
	pid, err := d.pid()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// timed starts n apps and returns the time until all want are online and the daemon's CPU.
func (d *daemon) timed(ctx context.Context, n, want int) (wall, cpu time.Duration, err error) {
	// Following before the start, so that no event is missed (events.go says why not a list).
	watch, err := d.watchStarts(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer watch.close()
	names := make([]string, n)
	for i := range names {
		names[i] = "s" + strconv.Itoa(d.next+i) // as startApps names them
	}
	c0, err := d.cpu()
	if err != nil {
		return 0, 0, err
	}
	began := time.Now()
	if err := d.startApps(n); err != nil {
		return 0, 0, err
	}
	if err := watch.wait(ctx, names, d.b.opts.timeout); err != nil {
		return 0, 0, err
	}
	wall = time.Since(began)
	c1, err := d.cpu()
	if err != nil {
		return 0, 0, err
	}
	// Checked once, outside the measure: every instance online with a pid.
	return wall, c1 - c0, d.waitOnline(ctx, want, nil)
}

func (b *bench) scale(ctx context.Context, n int) error {
	d, err := b.newDaemon("scale")
	if err != nil {
		return err
	}
	wall, cpu, err := d.timed(ctx, n, n)
	if err != nil {
		return fmt.Errorf("starting %d: %w", n, err)
	}
	fmt.Printf("start %d → all online: %s (daemon CPU %s, %.2f ms wall per app)\n", n, wall.Round(time.Millisecond), cpu, ms(wall)/float64(n))
	for _, form := range [][]string{{"list"}, {"list", "--json"}} {
		var ts []time.Duration
		for range b.opts.listRuns {
			t0 := time.Now()
			if _, err := d.cli(form...); err != nil {
				return err
			}
			ts = append(ts, time.Since(t0))
		}
		slices.Sort(ts)
		fmt.Printf("%s with %d instances: median %.1f ms (min %.1f, max %.1f, %d runs)\n",
			strings.Join(form, " "), n, ms(ts[len(ts)/2]), ms(ts[0]), ms(ts[len(ts)-1]), len(ts))
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(b.opts.settle):
	}
	rss, err := d.status("VmRSS")
	if err != nil {
		return err
	}
	threads, _ := d.status("Threads")
	pid, _ := d.pid()
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	fmt.Printf("daemon with %d instances: VmRSS %s, %s threads, %d open descriptors\n", n, rss, threads, len(fds))
	idle0, err := d.cpu()
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(idleWindow):
	}
	idle1, _ := d.cpu()
	fmt.Printf("daemon CPU idle with %d instances: %.2f %% of a core over %s\n", n, 100*float64(idle1-idle0)/float64(idleWindow), idleWindow)
	rows, err := d.list(ctx)
	if err != nil {
		return err
	}
	old := map[string]int{}
	for _, r := range rows {
		old[r.Name] = r.Pid
	}
	c0, _ := d.cpu()
	t0 := time.Now()
	if _, err := d.cli("restart", "all"); err != nil {
		return err
	}
	if err := d.waitOnline(ctx, n, old); err != nil {
		return fmt.Errorf("restart all: %w", err)
	}
	c1, _ := d.cpu()
	fmt.Printf("restart all %d → all online with new pids: %s (daemon CPU %s)\n", n, time.Since(t0).Round(time.Millisecond), c1-c0)
	t0 = time.Now()
	if _, err := d.cli("kill"); err != nil {
		return err
	}
	fmt.Printf("kill with %d instances: %s\n", n, time.Since(t0).Round(time.Millisecond))
	if left := b.leftovers(); len(left) > 0 {
		return fmt.Errorf("after kill, %d processes of the bench are still alive (pids %v...)", len(left), left[:min(5, len(left))])
	}
	return nil
}

// linearity measures the cost of starting 500 apps beside 0, 1500 and 4000 running.
func (b *bench) linearity(ctx context.Context) error {
	d, err := b.newDaemon("linearity")
	if err != nil {
		return err
	}
	const batch = 500
	running := 0
	var alone time.Duration
	var aloneCPU time.Duration
	for _, beside := range []int{0, 1500, 4000} {
		if beside > running {
			if err := d.startApps(beside - running); err != nil {
				return err
			}
			if err := d.waitOnline(ctx, beside, nil); err != nil {
				return err
			}
			running = beside
		}
		wall, cpu, err := d.timed(ctx, batch, running+batch)
		if err != nil {
			return fmt.Errorf("500 beside %d: %w", beside, err)
		}
		running += batch
		if beside == 0 {
			alone, aloneCPU = wall, cpu
		}
		fmt.Printf("start 500 beside %4d running: %8s wall (%.2fx alone), daemon CPU %8s (%.2fx alone)\n",
			beside, wall.Round(time.Millisecond), float64(wall)/float64(alone), cpu, float64(cpu)/float64(max(aloneCPU, 10*time.Millisecond)))
	}
	_, err = d.cli("kill")
	return err
}

// leftovers are the pids of processes whose environment names the temp dir (the daemon and
// the apps it started inherit PMDAEMON_HOME).
func (b *bench) leftovers() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && strings.Contains(string(env), b.tmp) {
			out = append(out, pid)
		}
	}
	return out
}

// cleanup kills the daemons (which stop their apps), then anything left, then removes the
// temp dir.
func (b *bench) cleanup() {
	for _, home := range b.homes {
		if _, err := os.Stat(filepath.Join(home, "daemon.pid")); err != nil {
			continue
		}
		cmd := exec.Command(b.bin, "kill")
		cmd.Env = append(os.Environ(), "PMDAEMON_HOME="+home)
		cmd.Run()
	}
	for range 3 {
		left := b.leftovers()
		if len(left) == 0 {
			break
		}
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond) // let the kernel reap them before looking again
	}
	if b.opts.keep {
		fmt.Printf("kept %s\n", b.tmp)
		return
	}
	os.RemoveAll(b.tmp)
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
