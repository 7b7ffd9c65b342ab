package depends

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// A migration that runs and exits 0, a database that says process.send('ready') after a
// delay (wait_ready: its readiness is that message), and a server that needs both: the server is first in the file but starts last, and
// only once the migration has finished and the database is ready. The server checks at start
// that both happened and exits 3 if not, so starting it early would show as a restart.
func TestDependsOnStartsInOrder(t *testing.T) {
	t.Parallel()
	needNode(t)
	h := harness.NewHome(t)
	dir := t.TempDir()
	port := harness.FreePorts(t, 1)
	write(t, dir, "migrate.sh", "sleep 1\necho done > migrated\n")
	write(t, dir, "db.js", `setTimeout(() => { require("fs").writeFileSync("db-ready", ""); process.send("ready"); }, 1000);
setInterval(() => {}, 1 << 30);
`)
	write(t, dir, "server.sh", fmt.Sprintf("test -f migrated && test -f db-ready || exit 3\nexec %s\n", harness.Echo))
	path := write(t, dir, "ecosystem.json", fmt.Sprintf(`{"apps": [
  {"name": "server", "script": "sh server.sh", "port": %d,
   "depends_on": {"migrate": {"condition": "completed_successfully"}, "db": {"condition": "ready"}}},
  {"name": "db", "script": "db.js", "wait_ready": true},
  {"name": "migrate", "script": "sh migrate.sh", "autorestart": false}
]}`, port))

	plan := h.OK("run", path, "--dry-run")
	for _, want := range []string{"start order: db, migrate, server", "server waits for: db ready, migrate completed_successfully"} {
		if !strings.Contains(plan, want) {
			t.Errorf("the dry run does not say %q:\n%s", want, plan)
		}
	}

	out := h.OK("run", path)
	if i, j := strings.Index(out, "started migrate"), strings.Index(out, "started server"); i < 0 || j < i {
		t.Errorf("run did not report migrate before server:\n%s", out)
	}
	harness.WaitWho(t, port, "server", 0)
	rows := h.List()
	if s := row(t, rows, "server"); s.Status != "online" || s.Restarts != 0 {
		t.Errorf("server: %s, %d restarts (%s): it started before what it depends on", s.Status, s.Restarts, s.Reason)
	}
	if m := row(t, rows, "migrate"); m.Status != "stopped" {
		t.Errorf("migrate: %s (%s), want stopped after its run", m.Status, m.Reason)
	}
	// Run again: everything is there; the completed migration still counts.
	h.OK("run", path)
}

// A migration that fails keeps the server that needs it from starting, with an error naming
// both; an app that does not depend on it starts.
func TestDependsOnFailedMigration(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	path := write(t, dir, "ecosystem.json", `{"apps": [
  {"name": "migrate", "script": "sh -c 'exit 3'", "autorestart": false},
  {"name": "server", "script": "sleep 600", "depends_on": {"migrate": {"condition": "completed_successfully"}}},
  {"name": "worker", "script": "sleep 600", "depends_on": ["server"]},
  {"name": "side", "script": "sleep 600"}
]}`)
	r := h.Run("run", path)
	if r.Code == 0 {
		t.Fatalf("run succeeded although the migration failed:\n%s", r.Stdout)
	}
	harness.ErrLike(t, r.Stderr,
		"ecosystem.json: apps[1] (server): server was not started: it depends on migrate (completed_successfully), whose instance 0 failed: exited with code 3 (autorestart off)",
		"ecosystem.json: apps[2] (worker): worker was not started: it depends on server (started), which failed: server was not started",
		"(started: migrate, side)")
	rows := h.WaitList(20*time.Second, "side online", harness.AllOnline("side", 1))
	for _, name := range []string{"server", "worker"} {
		if rs := harness.Rows(rows, name); len(rs) != 0 {
			t.Errorf("%s is listed although it was not started: %+v", name, rs)
		}
	}
}

// A cycle or an unknown dependency is refused before anything starts, --dry-run too, naming
// the apps; so is a cycle sent to the API directly.
func TestDependsOnRefused(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	tests := []struct {
		name, apps string
		want       []string
	}{
		{"cycle", `{"name": "a", "script": "sleep 9", "depends_on": ["c"]},
  {"name": "b", "script": "sleep 9", "depends_on": {"a": {"condition": "ready"}}},
  {"name": "c", "script": "sleep 9", "depends_on": ["b"]}`,
			[]string{"cycle.json: depends_on has a cycle: a → c → b → a"}},
		{"unknown", `{"name": "web", "script": "sleep 9", "depends_on": ["dbb"]}, {"name": "db", "script": "sleep 9"}`,
			[]string{`unknown.json: app "web": depends_on names "dbb", which is not an app of this file (did you mean "db"?)`}},
		{"restarting", `{"name": "web", "script": "sleep 9", "depends_on": {"db": {"condition": "completed_successfully"}}}, {"name": "db", "script": "sleep 9"}`,
			[]string{`restarting.json: app "web"`, `"db" "autorestart": false`}},
		{"bad condition", `{"name": "web", "script": "sleep 9", "depends_on": {"db": "healthy"}}, {"name": "db", "script": "sleep 9"}`,
			[]string{`bad condition.json: apps[0] (web): "depends_on" "db": condition must be "started", "ready" or "completed_successfully"`}},
	}
	for _, tt := range tests {
		path := write(t, dir, tt.name+".json", `{"apps": [`+tt.apps+`]}`)
		for _, args := range [][]string{{"run", path, "--dry-run"}, {"run", path}} {
			harness.ErrLike(t, h.Fail(args...), tt.want...)
		}
	}
	if rows := h.List(); len(rows) != 0 {
		t.Errorf("apps started from refused files: %+v", rows)
	}
	app := func(name string, deps ...string) api.StartRequest {
		a := config.NewApp()
		a.Name, a.Script, a.Cwd = name, "sleep 9", dir
		for _, d := range deps {
			a.DependsOn = append(a.DependsOn, config.Dependency{App: d, Condition: config.DependStarted})
		}
		return api.StartRequest{App: a}
	}
	ctx, cancel := context.WithTimeout(context.Background(), harness.APITimeout)
	defer cancel()
	_, err := h.API().StartMany(ctx, api.StartManyRequest{Apps: []api.StartRequest{app("x", "y"), app("y", "x")}})
	if !api.IsInvalid(err) || !strings.Contains(err.Error(), "depends_on has a cycle: x → y → x") {
		t.Errorf("a cycle through the API: %v", err)
	}
}

// stop all and kill stop each app before the apps it depends on: c needs b, b needs a; each
// app writes its name into a file when SIGTERM reaches it.
func TestDependsOnStopOrder(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	order := filepath.Join(dir, "order")
	app := func(name, deps string) string {
		script := fmt.Sprintf(`trap 'echo %s >> %s; exit 0' TERM; while :; do sleep 0.1; done`, name, order)
		return fmt.Sprintf(`{"name": %q, "script": %s, "kill_timeout": 20000%s}`, name, js("sh -c "+shellQuote(script)), deps)
	}
	path := write(t, dir, "ecosystem.json", `{"apps": [`+
		app("c", `, "depends_on": ["b"]`)+", "+app("a", "")+", "+app("b", `, "depends_on": {"a": {"condition": "started"}}`)+`]}`)
	h.OK("run", path)
	h.WaitList(20*time.Second, "all online", func(rows []api.Instance) bool {
		return harness.AllOnline("a", 1)(rows) && harness.AllOnline("b", 1)(rows) && harness.AllOnline("c", 1)(rows)
	})
	h.OK("stop", "all")
	checkOrder(t, "stop all", order, "c\nb\na\n")

	if err := os.Remove(order); err != nil {
		t.Fatal(err)
	}
	h.OK("restart", "all")
	h.WaitList(20*time.Second, "all online again", func(rows []api.Instance) bool {
		return harness.AllOnline("a", 1)(rows) && harness.AllOnline("b", 1)(rows) && harness.AllOnline("c", 1)(rows)
	})
	h.OK("kill")
	checkOrder(t, "kill", order, "c\nb\na\n")
}

func checkOrder(t *testing.T, what, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != want {
		t.Errorf("%s stopped the apps in the order %q (%v), want %q", what, b, err, want)
	}
}

// shellQuote quotes s as one word for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
