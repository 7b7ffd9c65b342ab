package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The reload-under-load metric: a Node HTTP app of reloadInstances instances takes requests
// from loadWorkers workers, a new TCP connection each, while the manager reloads it reloadCount
// times; the failed requests and each reload's wall time are recorded.
const (
	reloadInstances = 4
	loadWorkers     = 8
	reloadCount     = 2
	// reloadLead is the load before the first reload, reloadGap the load after each reload: the
	// phase of a setup is about 1 s + 2 × (reload + 2 s).
	reloadLead = time.Second
	reloadGap  = 2 * time.Second
	// reloadAppName is the app's name under both managers.
	reloadAppName = "web"
)

// reloadApp is the Node app of the metric, relative to the repository.
const reloadApp = "bench/compare/apps/reload-web.js"

// reloadSetup is one way to run the app: a manager and how it is told to.
type reloadSetup struct {
	Name    string // the row of the table
	Manager string // "pmdaemon" or "PM2"
	Socket  string // pmdaemon's "socket": "", "true" or "shared"
	Cluster bool   // PM2 cluster mode
}

// sharedPort tells whether every instance of s listens on one port.
func (s reloadSetup) sharedPort() bool { return s.Socket == "shared" || s.Cluster }

// reloadSetups are the rows of the reload table, in their order.
var reloadSetups = []reloadSetup{
	{Name: "pmdaemon, port range", Manager: "pmdaemon"},
	{Name: "pmdaemon --socket, port range", Manager: "pmdaemon", Socket: "true"},
	{Name: "pmdaemon --socket shared, one port", Manager: "pmdaemon", Socket: "shared"},
	{Name: "PM2 fork mode, port per instance", Manager: "PM2"},
	{Name: "PM2 cluster mode, one port", Manager: "PM2", Cluster: true},
}

// reloadFigure is one column of the reload table: a key of bench.results and its unit.
type reloadFigure struct{ Key, Label, Unit string }

var reloadFigures = []reloadFigure{
	{"reload_refused", "failed: refused", "req"},
	{"reload_other", "failed: other", "req"},
	{"reload_ok", "ok requests", "req"},
	{"reload_1", "reload 1, ms", "ms"},
	{"reload_2", "reload 2, ms", "ms"},
}

// spec is the ecosystem entry of setup s for the app at script, from port base on.
func (s reloadSetup) spec(script string, base int) appSpec {
	a := appSpec{Name: reloadAppName, Script: script, Instances: reloadInstances, PortBase: base, SharedPort: s.sharedPort()}
	if s.Manager == "PM2" {
		a.Interpreter, a.Cluster = "node", s.Cluster
		return a
	}
	if s.Socket != "" {
		a.Socket, a.Bind = s.Socket, "127.0.0.1"
	}
	return a
}

// ports are the ports the load client spreads over, from base on.
func (s reloadSetup) ports(base int) []int {
	if s.sharedPort() {
		return []int{base}
	}
	return portRange(base, reloadInstances)
}

// recordSetup records v for setup s in run; the results are keyed by setup, not manager.
func (b *bench) recordSetup(s reloadSetup, run int, key string, v float64, unit string) {
	b.recordFor(s.Name, 36, run, key, v, unit)
}

// reloadUnderLoad runs one setup once: start the app, put the load on, reload it reloadCount
// times, then stop the load and delete the app.
func (b *bench) reloadUnderLoad(ctx context.Context, m *manager, run int, s reloadSetup) error {
	if b.nodeApp == "" {
		return errors.New("reload under load: " + b.nodeMissing)
	}
	base := b.cfg.PortBase + 200
	if m.Name == "PM2" {
		base += 1000
	}
	base, err := freeBlock(base, len(s.ports(0)))
	if err != nil {
		return err
	}
	ports := s.ports(base)
	path, err := m.writeEcosystem(b.tmp, "reload", []appSpec{s.spec(b.nodeApp, base)})
	if err != nil {
		return err
	}
	if _, err := m.run(ctx, m.startArgs(path)...); err != nil {
		return err
	}
	procs, err := b.waitOnline(ctx, m, reloadInstances, nil)
	if err != nil {
		return fmt.Errorf("%s: start: %w", s.Name, err)
	}
	if err := waitAnswering(ctx, ports, time.Minute); err != nil {
		return fmt.Errorf("%s: start: %w", s.Name, err)
	}

	load := startLoad(ports, loadWorkers)
	finished := false
	defer func() {
		if !finished {
			load.finish()
		}
	}()
	if err := sleepCtx(ctx, reloadLead); err != nil {
		return err
	}
	var times []float64
	for i := 0; i < reloadCount; i++ {
		t := time.Now()
		if _, err := m.run(ctx, "reload", reloadAppName); err != nil {
			return fmt.Errorf("%s: reload %d: %w", s.Name, i+1, err)
		}
		times = append(times, msSince(t))
		// Not timed: the reload must really have replaced every instance.
		if procs, err = b.waitOnline(ctx, m, reloadInstances, pidSet(procs)); err != nil {
			return fmt.Errorf("%s: after reload %d: %w", s.Name, i+1, err)
		}
		if err := sleepCtx(ctx, reloadGap); err != nil {
			return err
		}
	}
	counts := load.finish()
	finished = true

	b.recordSetup(s, run, "reload_refused", float64(counts.Refused), "req")
	b.recordSetup(s, run, "reload_other", float64(counts.Other), "req")
	b.recordSetup(s, run, "reload_ok", float64(counts.OK), "req")
	for i, d := range times {
		b.recordSetup(s, run, fmt.Sprintf("reload_%d", i+1), d, "ms")
	}
	for _, e := range topErrors(counts.OtherErrors, 3) {
		fmt.Fprintf(b.log, "    (other failure: %s)\n", e)
	}
	if err := m.deleteAll(ctx); err != nil {
		return err
	}
	return b.waitEmpty(ctx, m)
}

// findNodeApp returns the reload metric's app, or why the metric cannot run.
func findNodeApp(repo string) (string, error) {
	if _, err := lookNode(); err != nil {
		return "", err
	}
	p := filepath.Join(repo, reloadApp)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the app of the reload metric is missing: %w", err)
	}
	return p, nil
}

// reloadRows are the lines of the reload table: one per setup of a manager that ran.
func (b *bench) reloadRows(pm2Skipped bool) ([][]string, []jsonReload) {
	var rows [][]string
	var out []jsonReload
	for _, s := range reloadSetups {
		if s.Manager == "PM2" && pm2Skipped {
			continue
		}
		row := []string{s.Name}
		jr := jsonReload{Setup: s.Name, Figures: map[string]*jsonSide{}}
		for _, f := range reloadFigures {
			vals := b.results[f.Key][s.Name]
			row = append(row, formatCell(vals, f.Unit, b.cfg.Runs))
			if sd := side(vals); sd != nil {
				jr.Figures[f.Key] = sd
			}
		}
		rows = append(rows, row)
		out = append(out, jr)
	}
	return rows, out
}

// reloadHeader is the first line of the reload table.
func reloadHeader() []string {
	h := []string{"reload under load (" + fmt.Sprint(reloadInstances) + " instances, " + fmt.Sprint(loadWorkers) + " workers)"}
	for _, f := range reloadFigures {
		h = append(h, f.Label)
	}
	return h
}

// jsonReload is one setup of the reload metric in the --json file.
type jsonReload struct {
	Setup   string               `json:"setup"`
	Figures map[string]*jsonSide `json:"figures"`
}
