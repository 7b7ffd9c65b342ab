package ecosystem

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// pm2File is a PM2 ecosystem.config.js as a PM2 user writes it: a Node cluster on one port
// (env PORT), an app with increment_var PORT, an env_production section, a key pmdaemon only
// does as PM2 does (merge_logs) and a deploy section. Ports b, b+1 and b+2.
func pm2File(echo string, b int) string {
	return fmt.Sprintf(`const echo = %[1]s;
module.exports = {
  apps: [
    {
      name: 'cluster',
      script: echo,
      instances: 2,
      exec_mode: 'cluster',
      env: { PORT: %[2]d },
      merge_logs: true,
    },
    {
      name: 'shards',
      script: echo,
      instances: 2,
      increment_var: 'PORT',
      env: { PORT: %[3]d, GREETING: 'dev' },
      env_production: { GREETING: 'prod' },
    },
  ],
  deploy: { production: { host: 'example.org' } },
};
`, js(echo), b, b+1)
}

// pm2Home is a home with pm2File written in a directory of its own, on three free ports.
func pm2Home(t *testing.T) (h *harness.Home, b int, dir, path string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("reading ecosystem.config.js needs node on PATH: %v", err)
	}
	h = harness.NewHome(t)
	b = harness.FreePorts(t, 3)
	dir = t.TempDir()
	return h, b, dir, writeFile(t, dir, "ecosystem.config.js", pm2File(harness.Echo, b))
}

// run --dry-run of a PM2 .config.js prints the plan PM2's keys make (a shared port, a port
// range) and the notes, and starts nothing.
func TestPM2ConfigJSDryRun(t *testing.T) {
	t.Parallel()
	h, b, dir, path := pm2Home(t)

	r := h.Run("run", path, "--dry-run", "--env", "production")
	if r.Code != 0 {
		t.Fatalf("run --dry-run failed (%d): %s%s", r.Code, r.Stdout, r.Stderr)
	}
	plan := parsePlan(t, r.Stdout)
	want := map[string]planRow{
		"cluster": {"cluster", harness.Echo, "2", strconv.Itoa(b), dir},
		"shards":  {"shards", harness.Echo, "2", harness.PortRange(b+1, b+2), dir},
	}
	if len(plan) != len(want) {
		t.Errorf("plan has %d rows, want %d:\n%s", len(plan), len(want), r.Stdout)
	}
	for name, w := range want {
		if got := plan[name]; got != w {
			t.Errorf("plan row for %s:\n got  %+v\n want %+v", name, got, w)
		}
	}
	if strings.Contains(r.Stderr, `"merge_logs"`) {
		t.Errorf("merge_logs is noted although pmdaemon does what PM2 does with it:\n%s", r.Stderr)
	}
	for _, note := range []string{`ecosystem.config.js: "deploy": ignored`} {
		if n := strings.Count(r.Stderr, note); n != 1 {
			t.Errorf("stderr has %q %d times, want once:\n%s", note, n, r.Stderr)
		}
	}
	if strings.Contains(r.Stderr, "env_production") {
		t.Errorf("env_production is noted although --env production uses it:\n%s", r.Stderr)
	}
	if ps := h.Processes(); len(ps) != 0 {
		t.Errorf("processes running after a dry run: %v", ps)
	}
}

// start ecosystem.config.js --env production starts the file's apps (not the file as an app):
// the cluster's two instances share one port, the shards answer on PORT and PORT+1 with
// env_production merged over env.
func TestPM2ConfigJSStart(t *testing.T) {
	t.Parallel()
	h, b, _, path := pm2Home(t)

	h.OK("start", path, "--env", "production")
	rows := h.WaitList(defaultWait, "the file's apps online", allOnline([]wantApp{{"cluster", []int{b, b}}, {"shards", harness.Seq(b+1, 2)}}))
	if got := harness.PortsOf(rows, "cluster"); !slices.Equal(got, []int{b, b}) {
		t.Errorf("cluster: ports by instance %v, want both on %d", got, b)
	}
	if got := harness.PortsOf(rows, "shards"); !slices.Equal(got, harness.Seq(b+1, 2)) {
		t.Errorf("shards: ports by instance %v, want %v", got, harness.Seq(b+1, 2))
	}
	// Both cluster instances accept on the one port: polling it sees both pids.
	pids := harness.PidsOf(rows, "cluster")
	seen := map[int]bool{}
	harness.Eventually(t, 15*time.Second, "both cluster instances answering on the shared port", func() bool {
		w, err := harness.GetWho(b)
		if err == nil && w.App == "cluster" && w.Port == strconv.Itoa(b) {
			seen[w.Pid] = true
		}
		return seen[pids[0]] && seen[pids[1]]
	})
	for i, p := range harness.Seq(b+1, 2) {
		harness.WaitWho(t, p, "shards", i)
		if got, err := harness.EchoEnv(p, "GREETING"); err != nil || got != "prod" {
			t.Errorf("shards %d: GREETING = %q (%v), want env_production's \"prod\"", i, got, err)
		}
	}
	for _, row := range rows {
		if strings.HasSuffix(filepath.Base(row.Name), ".js") {
			t.Errorf("the config file itself was started as an app: %+v", row)
		}
	}
}
