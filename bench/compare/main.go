// Command compare benchmarks pmdaemon against PM2 on the same machine, in the same run, on the
// same workload, and prints a table of medians and ratios. Run it from the repository:
//
//	go run ./bench/compare            # full run (10+ minutes)
//	go run ./bench/compare --quick    # smoke run (about 2 minutes)
//
// See bench/README.md for what each metric measures.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

type config struct {
	Runs          int
	Quick         bool
	Only          map[string]bool
	JSONPath      string
	Markdown      bool
	PM2Version    string
	PM2Path       string
	NoPM2         bool
	PMDaemonPath  string
	N, Big        int
	Idle, Settle  time.Duration
	ListCalls     int
	CrashKills    int
	HTTPInstances int
	PortBase      int
	Keep          bool
	Repo          string
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.IntVar(&c.Runs, "runs", 5, "runs per metric and manager (A/B interleaved)")
	fs.BoolVar(&c.Quick, "quick", false, "smoke run: 10 apps instead of 100, no 1000-app run, 5s idle window")
	only := fs.String("only", "", "comma-separated metric groups: "+strings.Join(groups, ","))
	fs.StringVar(&c.JSONPath, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&c.Markdown, "markdown", false, "also print the table as Markdown")
	fs.StringVar(&c.PM2Version, "pm2-version", "latest", "PM2 version to install from npm")
	fs.StringVar(&c.PM2Path, "pm2", "", "use this pm2 binary instead of installing one")
	fs.BoolVar(&c.NoPM2, "no-pm2", false, "benchmark pmdaemon only")
	fs.StringVar(&c.PMDaemonPath, "pmdaemon", "", "use this pmdaemon binary (its pmdaemond beside it) instead of building ./cmd/pmdaemon and ./cmd/pmdaemond")
	fs.IntVar(&c.N, "n", 100, "apps in the fleet metrics (list, rss, ecosystem, restart, resurrect, cpu)")
	fs.IntVar(&c.Big, "big", 1000, "apps for the large RSS metric (0: skip)")
	fs.DurationVar(&c.Idle, "idle", 60*time.Second, "idle CPU window")
	fs.DurationVar(&c.Settle, "settle", 5*time.Second, "wait before reading RSS and before the idle window")
	fs.IntVar(&c.ListCalls, "list-calls", 10, "list calls per run (the run's value is their median)")
	fs.IntVar(&c.CrashKills, "crash-kills", 5, "kill -9 per run (the run's value is their median)")
	fs.IntVar(&c.HTTPInstances, "http-instances", 10, "instances of the HTTP app")
	fs.IntVar(&c.PortBase, "port-base", 29100, "first port of pmdaemon's HTTP instances (PM2's: +1000); below Linux's ephemeral range")
	fs.BoolVar(&c.Keep, "keep", false, "keep the temp dir (homes, logs, ecosystem files)")
	fs.StringVar(&c.Repo, "repo", "", "pmdaemon repository (default: found from the current directory)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.Quick {
		quick := map[string]func(){
			"n": func() { c.N = 10 }, "big": func() { c.Big = 0 }, "idle": func() { c.Idle = 5 * time.Second },
			"settle": func() { c.Settle = 3 * time.Second }, "list-calls": func() { c.ListCalls = 5 },
			"crash-kills": func() { c.CrashKills = 3 }, "http-instances": func() { c.HTTPInstances = 4 },
		}
		for name, f := range quick {
			if !set[name] {
				f()
			}
		}
	}
	if *only != "" {
		c.Only = map[string]bool{}
		for _, g := range strings.Split(*only, ",") {
			g = strings.TrimSpace(g)
			if !contains(groups, g) {
				return c, fmt.Errorf("--only: unknown group %q (groups: %s)", g, strings.Join(groups, ","))
			}
			c.Only[g] = true
		}
	}
	if c.Runs < 1 || c.N < 1 || c.ListCalls < 1 || c.CrashKills < 1 || c.HTTPInstances < 1 || c.Big < 0 {
		return c, errors.New("--runs, --n, --list-calls, --crash-kills and --http-instances must be at least 1")
	}
	return c, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func main() { os.Exit(realMain()) }

func realMain() int {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 2
	}
	tmp, err := os.MkdirTemp("", "pmdbench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl := &cleaner{tmp: tmp, keep: cfg.Keep, cancel: cancel}
	defer cl.run()
	defer func() {
		if r := recover(); r != nil {
			cl.run()
			panic(r)
		}
	}()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\ncompare: %v: stopping the daemons and apps, removing %s\n", s, tmp)
		cl.run()
		os.Exit(128 + int(s.(syscall.Signal)))
	}()
	// `go run` dies on SIGTERM without passing it on: clean up when the parent goes away too.
	go func() {
		parent := os.Getppid()
		for {
			time.Sleep(time.Second)
			if os.Getppid() != parent {
				fmt.Fprintln(os.Stderr, "compare: parent process gone: cleaning up")
				cl.run()
				os.Exit(1)
			}
		}
	}()
	if err := runAll(ctx, cfg, tmp, cl); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 1
	}
	return 0
}

func runAll(ctx context.Context, cfg config, tmp string, cl *cleaner) error {
	log := os.Stderr
	repo := cfg.Repo
	if repo == "" {
		var err error
		if repo, err = findRepo(); err != nil {
			return err
		}
	}
	binDir := filepath.Join(tmp, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	pmdBin := cfg.PMDaemonPath
	if pmdBin == "" {
		pmdBin = filepath.Join(binDir, "pmdaemon")
		fmt.Fprintln(log, "building pmdaemon ...")
		// The CLI starts the daemon binary beside it.
		for _, pkg := range []string{"./cmd/pmdaemon", "./cmd/pmdaemond"} {
			if err := goBuild(ctx, repo, filepath.Join(binDir, filepath.Base(pkg)), pkg); err != nil {
				return fmt.Errorf("building pmdaemon (or pass --pmdaemon PATH): %w", err)
			}
		}
	}
	b := &bench{cfg: cfg, tmp: tmp, hz: clockTicks(), log: log, results: map[string]map[string][]float64{}}
	if b.want("http") {
		echo := filepath.Join(binDir, "echo")
		if err := goBuild(ctx, repo, echo, "./examples/apps/echo"); err != nil {
			fmt.Fprintf(log, "the HTTP metric is skipped: building the echo app: %v\n", err)
			b.errs = append(b.errs, "echo app: "+err.Error())
		} else {
			b.echoBin = echo
		}
	}
	if b.want("reload") {
		if app, err := findNodeApp(repo); err != nil {
			fmt.Fprintf(log, "the reload metric is skipped: %v\n", err)
			b.nodeMissing = err.Error()
		} else {
			b.nodeApp = app
		}
	}

	pmd := newPMDaemon(pmdBin, filepath.Join(tmp, "pmdaemon-home"))
	cl.add(pmd)
	managers := []*manager{pmd}
	pm2Skipped := ""
	pm2Bin, pm2Version, err := setupPM2(ctx, cfg, tmp, log)
	if err != nil {
		pm2Skipped = err.Error()
		fmt.Fprintf(log, "PM2 half skipped: %s\n", pm2Skipped)
	} else {
		pm2 := newPM2(pm2Bin, filepath.Join(tmp, "pm2-home"))
		pm2.Version = pm2Version
		cl.add(pm2)
		managers = append(managers, pm2)
	}

	// Warm up, not measured: create each home, fill the page cache, learn the versions.
	for _, m := range managers {
		out, err := m.run(ctx, "ping")
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if m.Name == "pmdaemon" {
			// "pong: daemon pid N, version V, home H"
			if _, v, ok := strings.Cut(string(out), "version "); ok {
				m.Version, _, _ = strings.Cut(v, ",")
			}
		}
		if err := m.stopDaemon(ctx); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	info := machineInfo(ctx, repo, managers)
	printInfo(os.Stdout, info, pm2Skipped)
	start := time.Now()
	for run := 0; run < cfg.Runs; run++ {
		order := append([]*manager(nil), managers...)
		if run%2 == 1 && len(order) == 2 {
			order[0], order[1] = order[1], order[0]
		}
		for _, m := range order {
			fmt.Fprintf(log, "run %d/%d: %s (%s elapsed)\n", run+1, cfg.Runs, m.Name, time.Since(start).Round(time.Second))
			if err := b.session(ctx, m, run); err != nil {
				b.fail(m, run, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	rows, out := b.table(pm2Skipped != "")
	fmt.Println()
	if pm2Skipped != "" {
		fmt.Printf("PM2 half skipped: %s\n\n", pm2Skipped)
	}
	if len(rows) > 0 {
		renderTable(os.Stdout, rows, false)
		if cfg.Markdown {
			fmt.Println()
			renderTable(os.Stdout, rows, true)
		}
	}
	if b.want("reload") {
		var reloadRows [][]string
		reloadRows, out.Reload = b.reloadRows(pm2Skipped != "")
		if len(rows) > 0 {
			fmt.Println()
		}
		renderGrid(os.Stdout, reloadHeader(), reloadRows, false)
		if cfg.Markdown {
			fmt.Println()
			renderGrid(os.Stdout, reloadHeader(), reloadRows, true)
		}
	}
	if len(b.errs) > 0 {
		fmt.Println("\nerrors:")
		for _, e := range b.errs {
			fmt.Println("  " + e)
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\n%d runs per manager, A/B interleaved, %s in all (load average at the end %s); lower is better; ratio = PM2 median / pmdaemon median\n",
		cfg.Runs, time.Since(start).Round(time.Second), loadAvg(string(load)))
	if cfg.JSONPath != "" {
		out.Machine, out.PM2Skipped, out.Errors = info, pm2Skipped, b.errs
		out.Config = cfg
		data, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.JSONPath, append(data, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Println("results written to " + cfg.JSONPath)
	}
	return nil
}

// jsonResults is the --json file.
type jsonResults struct {
	Machine    []kv         `json:"machine"`
	Config     config       `json:"config"`
	PM2Skipped string       `json:"pm2_skipped,omitempty"`
	Metrics    []jsonMetric `json:"metrics"`
	Reload     []jsonReload `json:"reload_under_load,omitempty"`
	Errors     []string     `json:"errors,omitempty"`
}

type jsonMetric struct {
	Key      string    `json:"key"`
	Label    string    `json:"label"`
	Unit     string    `json:"unit"`
	PMDaemon *jsonSide `json:"pmdaemon,omitempty"`
	PM2      *jsonSide `json:"pm2,omitempty"`
	Ratio    *float64  `json:"ratio_pm2_over_pmdaemon,omitempty"`
}

type jsonSide struct {
	Runs   []float64 `json:"runs"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
}

func side(vals []float64) *jsonSide {
	s, ok := summarize(vals)
	if !ok {
		return nil
	}
	return &jsonSide{Runs: vals, Median: s.Median, Min: s.Min, Max: s.Max}
}

// table builds the printed rows and the JSON metrics from the recorded figures.
func (b *bench) table(pm2Skipped bool) ([]tableRow, jsonResults) {
	var rows []tableRow
	var out jsonResults
	for _, mt := range metrics(b.cfg) {
		if !b.want(mt.Group) {
			continue
		}
		a, p := b.results[mt.Key]["pmdaemon"], b.results[mt.Key]["PM2"]
		r, ok := ratio(a, p)
		row := tableRow{Metric: mt.Label, PMDaemon: formatCell(a, mt.Unit, b.cfg.Runs), PM2: formatCell(p, mt.Unit, b.cfg.Runs), Ratio: formatRatio(r, ok)}
		if pm2Skipped {
			row.PM2 = "skipped"
		}
		rows = append(rows, row)
		jm := jsonMetric{Key: mt.Key, Label: mt.Label, Unit: mt.Unit, PMDaemon: side(a), PM2: side(p)}
		if ok {
			jm.Ratio = &r
		}
		out.Metrics = append(out.Metrics, jm)
	}
	return rows, out
}

// findRepo walks up from the current directory to pmdaemon's go.mod.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/pmdaemon/pmdaemon\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the pmdaemon repository: run from it or pass --repo")
		}
		dir = parent
	}
}

func goBuild(ctx context.Context, repo, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v: %s", pkg, err, tail(string(b), 1500))
	}
	return nil
}

// setupPM2 returns the pm2 binary to use and its version, or why PM2 is skipped.
func setupPM2(ctx context.Context, cfg config, tmp string, log *os.File) (bin, version string, err error) {
	if cfg.NoPM2 {
		return "", "", errors.New("--no-pm2 given")
	}
	if _, err := lookNode(); err != nil {
		return "", "", err
	}
	if cfg.PM2Path != "" {
		bin, err := filepath.Abs(cfg.PM2Path)
		if err != nil {
			return "", "", err
		}
		if st, err := os.Stat(bin); err != nil || st.IsDir() {
			return "", "", fmt.Errorf("--pm2 %s: not a file", cfg.PM2Path)
		}
		return bin, pm2PackageVersion(bin), nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", "", errors.New("npm is not installed (no npm in PATH); install Node.js or pass --pm2 PATH")
	}
	prefix := filepath.Join(tmp, "pm2")
	fmt.Fprintf(log, "installing pm2@%s with npm into %s ...\n", cfg.PM2Version, prefix)
	ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ictx, npm, "install", "--prefix", prefix, "--no-audit", "--no-fund", "--loglevel=error", "pm2@"+cfg.PM2Version)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("npm install pm2@%s failed: %v: %s", cfg.PM2Version, err, npmError(string(out)))
	}
	bin = filepath.Join(prefix, "node_modules", "pm2", "bin", "pm2")
	if _, err := os.Stat(bin); err != nil {
		return "", "", fmt.Errorf("npm install pm2@%s: no %s afterwards", cfg.PM2Version, bin)
	}
	return bin, pm2PackageVersion(bin), nil
}

// lookNode finds node in PATH.
func lookNode() (string, error) {
	p, err := exec.LookPath("node")
	if err != nil {
		return "", errors.New("node is not installed (no node in PATH)")
	}
	return p, nil
}

// pm2PackageVersion reads the version from the package.json next to pm2's bin directory (not
// from `pm2 --version`, which starts a daemon).
func pm2PackageVersion(bin string) string {
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		real = bin
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(real), "..", "package.json"))
	if err != nil {
		return "unknown"
	}
	var p struct {
		Name, Version string
	}
	if json.Unmarshal(b, &p) != nil || p.Name != "pm2" {
		return "unknown"
	}
	return p.Version
}

// kv keeps machine info in order.
type kv struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func machineInfo(ctx context.Context, repo string, managers []*manager) []kv {
	first := func(path, prefix string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			return "?"
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, prefix) {
				_, v, _ := strings.Cut(l, ":")
				return strings.TrimSpace(v)
			}
		}
		return "?"
	}
	cmdOut := func(dir, name string, args ...string) string {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		b, err := cmd.Output()
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(b))
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	load, _ := os.ReadFile("/proc/loadavg")
	commit := cmdOut(repo, "git", "rev-parse", "--short", "HEAD")
	if exec.CommandContext(ctx, "git", "-C", repo, "diff", "--quiet", "HEAD").Run() != nil {
		commit += " + uncommitted changes"
	}
	info := []kv{
		{"nproc", fmt.Sprint(runtime.NumCPU())},
		{"cpu", first("/proc/cpuinfo", "model name")},
		{"memory", first("/proc/meminfo", "MemTotal")},
		{"kernel", strings.TrimSpace(string(kernel))},
		{"load average at start", loadAvg(string(load))},
		{"go", cmdOut("", "go", "version")},
		{"node", cmdOut("", "node", "--version")},
	}
	for _, m := range managers {
		v := m.Version
		if m.Name == "pmdaemon" {
			v += " (commit " + commit + ")"
		}
		info = append(info, kv{m.Name, v + " " + m.Bin})
	}
	return info
}

func printInfo(w *os.File, info []kv, pm2Skipped string) {
	fmt.Fprintln(w, "machine:")
	for _, e := range info {
		fmt.Fprintf(w, "  %-22s %s\n", e.Key+":", e.Value)
	}
	if pm2Skipped != "" {
		fmt.Fprintf(w, "  %-22s skipped\n", "PM2:")
	}
}

// cleaner stops both daemons and every process of the temp homes, once, on any exit path.
type cleaner struct {
	once     sync.Once
	mu       sync.Mutex
	tmp      string
	keep     bool
	cancel   context.CancelFunc
	managers []*manager
}

func (c *cleaner) add(m *manager) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.managers = append(c.managers, m)
}

func (c *cleaner) run() {
	c.once.Do(func() {
		c.cancel()
		c.mu.Lock()
		ms := append([]*manager(nil), c.managers...)
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, m := range ms {
			if err := m.stopDaemon(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "cleanup: %v\n", err)
			}
		}
		// Whatever is left (a daemon a cancelled CLI was starting, an app of a SIGKILLed
		// daemon): every process whose environment names the temp dir.
		for i := 0; i < 20; i++ {
			ps := processesWithEnv(c.tmp)
			if len(ps) == 0 {
				break
			}
			fmt.Fprintf(os.Stderr, "cleanup: SIGKILL to %d leftover processes %v\n", len(ps), ps)
			killAll(ps)
			time.Sleep(100 * time.Millisecond)
		}
		if c.keep {
			fmt.Fprintln(os.Stderr, "kept "+c.tmp)
			return
		}
		if err := os.RemoveAll(c.tmp); err != nil {
			fmt.Fprintf(os.Stderr, "cleanup: %v\n", err)
		}
	})
}

// loadAvg is the 1, 5 and 15 minute load averages of /proc/loadavg.
func loadAvg(s string) string {
	f := strings.Fields(s)
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// npmError keeps the first two "npm error" lines of npm's output, on one line.
func npmError(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "npm error") || strings.HasPrefix(l, "npm ERR!") {
			keep = append(keep, l)
		}
		if len(keep) == 2 {
			break
		}
	}
	if len(keep) == 0 {
		return tail(out, 300)
	}
	return strings.Join(keep, " / ")
}
