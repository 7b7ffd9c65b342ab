package pm2compat

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// compatCase is one corpus file run under both managers.
type compatCase struct {
	file    string
	env     string         // --env NAME, given to both
	scripts []string       // the programs the file names; the test writes stubs there
	apps    map[string]int // what both must run: app name → instances
	envKeys []string       // environment variables both must give each instance alike
	ports   map[int]string // ports that must answer under both, and the app answering
}

// seen is what one manager ran: per app, per instance index, the instance's pid and
// environment; and which app answered each port.
type seen struct {
	instances map[string]map[int]seenInstance
	ports     map[int]string
}

type seenInstance struct {
	pid int
	env map[string]string
}

func TestSameFilesUnderPM2(t *testing.T) {
	cpus := runtime.NumCPU()
	tests := []compatCase{
		{file: "cluster-port.json", scripts: []string{"server.js"}, apps: map[string]int{"api": 4},
			envKeys: []string{"PORT", "NODE_ENV"}, ports: map[int]string{23000: "api"}},
		{file: "increment.json5", scripts: []string{"shard.js"}, apps: map[string]int{"shard": 3},
			envKeys: []string{"PORT"}, ports: map[int]string{4000: "shard", 4001: "shard", 4002: "shard"}},
		{file: "max-increment.json", scripts: []string{"server.js"}, apps: map[string]int{"per-core": cpus},
			envKeys: []string{"PORT"}, ports: portsOf("per-core", 24200, cpus)},
		{file: "instances-zero.json", scripts: []string{"worker.js"}, apps: map[string]int{"zero": cpus}},
		{file: "env-sections.json", env: "production", scripts: []string{"app.js"}, apps: map[string]int{"shop": 1},
			envKeys: []string{"NODE_ENV", "LOG_LEVEL", "DB"}},
		{file: "multi-env.config.js", env: "staging", scripts: []string{"api.js", "worker.js"}, apps: map[string]int{"api": 1, "worker": 1},
			envKeys: []string{"NODE_ENV", "API_URL", "QUEUE"}},
		{file: "commented.json", scripts: []string{"index.js"}, apps: map[string]int{"commented": 1}, envKeys: []string{"GREETING"}},
		{file: "computed.config.js", scripts: []string{"services/alpha.js", "services/beta.js", "services/gamma.js"},
			apps: map[string]int{"alpha": 1, "beta": 1, "gamma": 1}, envKeys: []string{"PORT", "SERVICE"},
			ports: map[int]string{23400: "alpha", 23401: "beta", 23402: "gamma"}},
		// Not esm.config.mjs or named-export.config.mjs: PM2 7 loads a .config.mjs with
		// require(), which Node before 22 refuses for an ES module.
		{file: "single-app.json", scripts: []string{"index.js"}, apps: map[string]int{"lonely": 2},
			envKeys: []string{"PORT"}, ports: map[int]string{23200: "lonely"}},
		{file: "bare-array.json", scripts: []string{"workers/mailer.js", "workers/reports.js"}, apps: map[string]int{"mailer": 2, "reports": 1},
			envKeys: []string{"QUEUE"}},
		{file: "apps-object.config.js", scripts: []string{"solo.js"}, apps: map[string]int{"solo": 2}, envKeys: []string{"TIER"}},
		{file: "env-values.json", scripts: []string{"index.js"}, apps: map[string]int{"typed-env": 1},
			envKeys: []string{"DEBUG", "WORKERS", "RATIO", "EMPTY", "NOTHING", "FEATURES", "HOSTS"}},
		{file: "process.yml", env: "production", scripts: []string{"server.js", "worker.py"}, apps: map[string]int{"yaml-api": 2, "worker": 1},
			envKeys: []string{"PORT", "NODE_ENV", "VERBOSE"}, ports: map[int]string{23980: "yaml-api"}},
		{file: "interpreter-python.json", scripts: []string{"worker.py"}, apps: map[string]int{"py-worker": 1}},
	}
	p := newPM2(t)
	h := harness.NewHome(t)
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			// PM2 and pmdaemon each run the file from a directory of their own, one after the
			// other: the fixed ports of the corpus are used by one manager at a time.
			underPM2 := runUnderPM2(t, p, tc)
			underPMD := runUnderPmdaemon(t, h, tc)
			compare(t, tc, underPM2, underPMD)
		})
	}
}

func portsOf(app string, base, n int) map[int]string {
	m := map[int]string{}
	for i := range n {
		m[base+i] = app
	}
	return m
}

func total(apps map[string]int) int {
	n := 0
	for _, c := range apps {
		n += c
	}
	return n
}

func runUnderPM2(t *testing.T, p *pm2, tc compatCase) seen {
	t.Helper()
	dir := t.TempDir()
	path := copyCorpusFile(t, dir, tc.file, tc.scripts)
	args := []string{"start", path}
	if tc.env != "" {
		args = append(args, "--env", tc.env)
	}
	p.run(dir, args...)
	var rows []pm2Process
	harness.Eventually(t, time.Minute, fmt.Sprintf("PM2 runs %d instances of %s, all online", total(tc.apps), tc.file), func() bool {
		rows = p.list()
		if len(rows) != total(tc.apps) {
			return false
		}
		for _, r := range rows {
			if r.PM2Env.Status != "online" || r.Pid <= 0 {
				return false
			}
		}
		return true
	})
	s := seen{instances: map[string]map[int]seenInstance{}}
	var pids []int
	for _, r := range rows {
		index, err := strconv.Atoi(fmt.Sprint(r.PM2Env.Instance))
		if err != nil {
			t.Fatalf("PM2's %s (pid %d) has NODE_APP_INSTANCE %v", r.Name, r.Pid, r.PM2Env.Instance)
		}
		add(&s, r.Name, index, r.Pid)
		pids = append(pids, r.Pid)
	}
	s.ports = answeringPorts(t, "PM2", tc, s)
	readEnvs(t, dir, s)
	p.run(dir, "delete", "all")
	harness.WaitDead(t, 30*time.Second, "PM2's instances of "+tc.file, pids...)
	return s
}

func runUnderPmdaemon(t *testing.T, h *harness.Home, tc compatCase) seen {
	t.Helper()
	dir := t.TempDir()
	path := copyCorpusFile(t, dir, tc.file, tc.scripts)
	args := []string{"run", path}
	if tc.env != "" {
		args = append(args, "--env", tc.env)
	}
	h.OK(args...)
	rows := h.WaitList(time.Minute, fmt.Sprintf("pmdaemon runs %d instances of %s, all online", total(tc.apps), tc.file), func(rows []api.Instance) bool {
		if len(rows) != total(tc.apps) {
			return false
		}
		for _, r := range rows {
			if r.Status != "online" || r.Pid <= 0 {
				return false
			}
		}
		return true
	})
	s := seen{instances: map[string]map[int]seenInstance{}}
	var pids []int
	for _, r := range rows {
		add(&s, r.Name, r.Index, r.Pid)
		pids = append(pids, r.Pid)
	}
	s.ports = answeringPorts(t, "pmdaemon", tc, s)
	readEnvs(t, dir, s)
	h.OK("delete", "all")
	harness.WaitDead(t, 30*time.Second, "pmdaemon's instances of "+tc.file, pids...)
	return s
}

func add(s *seen, name string, index, pid int) {
	if s.instances[name] == nil {
		s.instances[name] = map[int]seenInstance{}
	}
	s.instances[name][index] = seenInstance{pid: pid}
}

// answeringPorts waits for each of the case's ports to answer and says which app's process
// answered it ("?" for a process of neither).
func answeringPorts(t *testing.T, who string, tc compatCase, s seen) map[int]string {
	t.Helper()
	owner := map[int]string{}
	for name, insts := range s.instances {
		for _, in := range insts {
			owner[in.pid] = name
		}
	}
	got := map[int]string{}
	for _, port := range slices.Sorted(maps.Keys(tc.ports)) {
		var pid int
		var last error
		harness.Eventually(t, 30*time.Second, fmt.Sprintf("port %d answers under %s", port, who), func() bool {
			pid, last = served(port)
			return last == nil
		})
		if name, ok := owner[pid]; ok {
			got[port] = name
		} else {
			got[port] = fmt.Sprintf("? (pid %d, not an instance)", pid)
		}
	}
	return got
}

// readEnvs reads the environment every instance saw, as it wrote it in dir.
func readEnvs(t *testing.T, dir string, s seen) {
	t.Helper()
	for _, insts := range s.instances {
		for i, in := range insts {
			in.env = envOf(t, dir, in.pid)
			insts[i] = in
		}
	}
}

// compare checks both runs against the case and against each other, and reports every
// difference at once.
func compare(t *testing.T, tc compatCase, pm2, pmd seen) {
	t.Helper()
	var diffs []string
	for _, run := range []struct {
		who string
		s   seen
	}{{"PM2", pm2}, {"pmdaemon", pmd}} {
		counts := map[string]int{}
		for name, insts := range run.s.instances {
			counts[name] = len(insts)
		}
		if !maps.Equal(counts, tc.apps) {
			diffs = append(diffs, fmt.Sprintf("%s runs %v, want %v", run.who, counts, tc.apps))
		}
		if !maps.Equal(run.s.ports, tc.ports) && len(tc.ports) > 0 {
			diffs = append(diffs, fmt.Sprintf("%s: ports answered by %v, want %v", run.who, run.s.ports, tc.ports))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(tc.apps)) {
		for i := range tc.apps[name] {
			a, okA := pm2.instances[name][i]
			b, okB := pmd.instances[name][i]
			if !okA || !okB {
				diffs = append(diffs, fmt.Sprintf("%s[%d]: under PM2 %v, under pmdaemon %v", name, i, okA, okB))
				continue
			}
			for _, k := range tc.envKeys {
				va, inA := a.env[k]
				vb, inB := b.env[k]
				if va != vb || inA != inB {
					diffs = append(diffs, fmt.Sprintf("%s[%d] %s: PM2 %s, pmdaemon %s", name, i, k, show(va, inA), show(vb, inB)))
				}
			}
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Errorf("%s runs differently under PM2 and pmdaemon:\n  %s", tc.file, strings.Join(diffs, "\n  "))
	}
}

func show(v string, ok bool) string {
	if !ok {
		return "unset"
	}
	return strconv.Quote(v)
}
