package ecosystem

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// threeApps is a file with a single-port app, a range app and an auto app on block b
// (b, b+1..b+2, auto b+3..b+6).
func threeApps(echo string, b int) string {
	return fmt.Sprintf(`{"apps": [
  {"name": "gateway", "script": %[1]s, "args": ["gateway.js"], "port": %[2]d},
  {"name": "users", "script": %[1]s, "args": ["--flag", "two words"], "instances": 2, "port": "%[3]s"},
  {"name": "orders", "script": %[1]s, "instances": 3, "port": "%[4]s"}
]}`, js(echo), b, harness.PortRange(b+1, b+2), harness.AutoRange(b+3, b+6))
}

func threeWant(b int) []wantApp {
	return []wantApp{{"gateway", []int{b}}, {"users", harness.Seq(b+1, 2)}, {"orders", harness.Seq(b+3, 3)}}
}

// --dry-run prints the plan and starts nothing; the ports stay free for a real run.
func TestEcosystemDryRunStartsNothing(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 7)
	dir := t.TempDir()
	path := writeFile(t, dir, "ecosystem.json", threeApps(harness.Echo, b))

	out := h.OK("run", path, "--dry-run")
	if !strings.Contains(out, "dry run") || !strings.Contains(out, path) {
		t.Errorf("dry-run output does not say it is a dry run of %s:\n%s", path, out)
	}
	plan := parsePlan(t, out)
	want := map[string]planRow{
		"gateway": {"gateway", harness.Echo + " gateway.js", "1", strconv.Itoa(b), dir},
		"users":   {"users", harness.Echo + ` --flag "two words"`, "2", harness.PortRange(b+1, b+2), dir},
		"orders":  {"orders", harness.Echo, "3", harness.AutoRange(b+3, b+6), dir},
	}
	if len(plan) != len(want) {
		t.Errorf("plan has %d rows, want %d:\n%s", len(plan), len(want), out)
	}
	for name, w := range want {
		if got, ok := plan[name]; !ok {
			t.Errorf("plan has no row for %s:\n%s", name, out)
		} else if got != w {
			t.Errorf("plan row for %s:\n got  %+v\n want %+v", name, got, w)
		}
	}
	if ps := h.Processes(); len(ps) != 0 {
		t.Errorf("processes running after a dry run: %v", ps)
	}
	if rows := h.List(); len(rows) != 0 {
		t.Errorf("list after a dry run: %+v", rows)
	}
	for p := b; p < b+7; p++ {
		if _, err := harness.GetWho(p); err == nil {
			t.Errorf("port %d answers after a dry run", p)
		}
	}

	// --dry-run --only plans just that app.
	out = h.OK("run", path, "--dry-run", "--only", "users")
	plan = parsePlan(t, out)
	if _, ok := plan["users"]; !ok || len(plan) != 1 {
		t.Errorf("dry run --only users planned %v:\n%s", plan, out)
	}

	// Nothing was reserved: the real run gets exactly the planned ports.
	h.OK("run", path)
	checkRunning(t, h, threeWant(b))
}

// --only NAME starts just that app; an unknown name is an error listing the file's apps.
func TestEcosystemOnlyStartsTheNamedApp(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 7)
	path := writeFile(t, t.TempDir(), "ecosystem.json", threeApps(harness.Echo, b))

	stderr := h.Fail("run", path, "--only", "nope")
	harness.ErrLike(t, stderr, path, `"nope"`, "gateway, users, orders")
	if ps := h.AppProcs(); len(ps) != 0 {
		t.Errorf("app processes after --only of a missing name: %v", ps)
	}
	if rows := h.List(); len(rows) != 0 {
		t.Errorf("list after --only of a missing name: %+v", rows)
	}

	out := h.OK("run", path, "--only", "users")
	if !strings.Contains(out, "started users ") || strings.Contains(out, "started gateway") || strings.Contains(out, "started orders") {
		t.Errorf("run --only users:\n%s", out)
	}
	checkRunning(t, h, []wantApp{{"users", harness.Seq(b+1, 2)}})

	// The others can follow, and users is left alone.
	pids := harness.PidsOf(h.List(), "users")
	out = h.OK("run", path)
	if !strings.Contains(out, "users is already running") {
		t.Errorf("second run does not say users is already running:\n%s", out)
	}
	rows := checkRunning(t, h, threeWant(b))
	if got := harness.PidsOf(rows, "users"); !slices.Equal(got, pids) {
		t.Errorf("users pids changed from %v to %v by a run without --update", pids, got)
	}
}

// Running a file twice does not duplicate its apps; --update restarts them with the file's
// new config.
func TestEcosystemRunTwiceAndUpdate(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 4)
	dir := t.TempDir()
	doc := func(instances int) string {
		return fmt.Sprintf(`{"apps": [
  {"name": "web", "script": %[1]s, "instances": %[2]d, "port": "%[3]s", "env": {"VERSION": %[2]d}},
  {"name": "solo", "script": %[1]s, "port": %[4]d}
]}`, js(harness.Echo), instances, harness.PortRange(b, b+2), b+3)
	}
	path := writeFile(t, dir, "ecosystem.json", doc(2))
	h.OK("run", path)
	rows := checkRunning(t, h, []wantApp{{"web", harness.Seq(b, 2)}, {"solo", []int{b + 3}}})
	webPids, soloPids := harness.PidsOf(rows, "web"), harness.PidsOf(rows, "solo")

	for _, verb := range []string{"run", "start"} {
		out := h.OK(verb, path)
		for _, name := range []string{"web", "solo"} {
			if !strings.Contains(out, name+" is already running") {
				t.Errorf("%s again: stdout does not say %s is already running:\n%s", verb, name, out)
			}
		}
		if strings.Contains(out, "started ") {
			t.Errorf("%s again: stdout says something was started:\n%s", verb, out)
		}
		rows = checkRunning(t, h, []wantApp{{"web", harness.Seq(b, 2)}, {"solo", []int{b + 3}}})
		if got := harness.PidsOf(rows, "web"); !slices.Equal(got, webPids) {
			t.Errorf("%s again: web pids %v, want unchanged %v", verb, got, webPids)
		}
		if got := harness.PidsOf(rows, "solo"); !slices.Equal(got, soloPids) {
			t.Errorf("%s again: solo pids %v, want unchanged %v", verb, got, soloPids)
		}
	}

	// Edit the file: 3 instances. Without --update nothing changes.
	writeFile(t, dir, "ecosystem.json", doc(3))
	h.OK("run", path)
	rows = checkRunning(t, h, []wantApp{{"web", harness.Seq(b, 2)}, {"solo", []int{b + 3}}})
	if got := harness.PidsOf(rows, "web"); !slices.Equal(got, webPids) {
		t.Errorf("run of the edited file without --update: web pids %v, want unchanged %v", got, webPids)
	}
	if got := h.Info("web").Config.Instances; got != 2 {
		t.Errorf("info web config.instances = %d before --update, want 2", got)
	}

	out := h.OK("run", path, "--update")
	if !strings.Contains(out, "updated web") {
		t.Errorf("run --update does not say web was updated:\n%s", out)
	}
	checkRunning(t, h, []wantApp{{"web", harness.Seq(b, 3)}, {"solo", []int{b + 3}}})
	info := h.Info("web")
	if info.Config.Instances != 3 {
		t.Errorf("info web config.instances = %d after --update, want 3", info.Config.Instances)
	}
	if got := info.Config.Env["VERSION"]; got != "3" {
		t.Errorf("info web config.env.VERSION = %q after --update, want \"3\"", got)
	}
	for i := 0; i < 3; i++ {
		v, err := harness.EchoEnv(b+i, "VERSION")
		if err != nil || v != "3" {
			t.Errorf("web instance %d: VERSION=%q (%v), want \"3\"", i, v, err)
		}
	}
}

// A file whose second app fails says so, and which apps started: the apps after it are
// started all the same (none depends on it).
func TestEcosystemPartialFailure(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 3)
	h.OK("start", harness.Echo, "--name", "holder", "--port", strconv.Itoa(b+1))
	h.WaitList(defaultWait, "holder online", harness.AllOnline("holder", 1))
	path := writeFile(t, t.TempDir(), "ecosystem.json", fmt.Sprintf(`{"apps": [
  {"name": "first", "script": %[1]s, "port": %[2]d},
  {"name": "second", "script": %[1]s, "port": %[3]d},
  {"name": "third", "script": %[1]s, "port": %[4]d}
]}`, js(harness.Echo), b, b+1, b+2))

	r := h.Run("run", path)
	if r.Code == 0 {
		t.Fatalf("run with a held port succeeded:\n%s", r.Stdout)
	}
	// The file, the app and the spec's message word for word, then what started.
	want := fmt.Sprintf("Error: ecosystem.json: apps[1] (second): Port %d is already assigned to process 'holder' (started: first, third)\n", b+1)
	if r.Stderr != want {
		t.Errorf("stderr:\n got  %q\n want %q", r.Stderr, want)
	}
	checkRunning(t, h, []wantApp{{"holder", []int{b + 1}}, {"first", []int{b}}, {"third", []int{b + 2}}})
	h.OK("delete", "third")

	// A daemon-side refusal (the script does not exist) says the same, and names the app.
	dir := t.TempDir()
	path = writeFile(t, dir, "eco2.json", fmt.Sprintf(`{"apps": [
  {"name": "alpha", "script": %[1]s, "port": %[2]d},
  {"name": "beta", "script": "./missing.sh"}
]}`, js(harness.Echo), b+2))
	stderr := h.Fail("run", path)
	harness.ErrLike(t, stderr, `"beta"`, "missing.sh", "(started: alpha)")
	rows := checkRunning(t, h, []wantApp{{"holder", []int{b + 1}}, {"first", []int{b}}, {"alpha", []int{b + 2}}})
	if rs := harness.Rows(rows, "beta"); len(rs) != 0 {
		t.Errorf("beta listed after its refused start: %+v", rs)
	}
}
