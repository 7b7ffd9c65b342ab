package ecosystem

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// examplesTree lays out examples/<file> next to a bin/echo, as examples/demo.sh builds them,
// and returns the path of the copied file.
func examplesTree(t *testing.T, file string) string {
	t.Helper()
	root := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", file))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"examples", "bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(harness.Echo, filepath.Join(root, "bin", "echo")); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "examples", file)
	if err := os.WriteFile(script, src, 0o644); err != nil {
		t.Fatal(err)
	}
	return script
}

// The shipped examples/ecosystem.lua and ecosystem.json run against a real daemon: every demo
// app answers on the port it was assigned, with its PORT and instance index; a second run
// duplicates nothing. (They use the examples' own fixed ports 8080, 8001-8002 and
// auto:8010-8020, so the cases run one after the other.)
func TestEcosystemExamplesRunOnTheirPorts(t *testing.T) {
	for _, file := range []string{"ecosystem.lua", "ecosystem.json"} {
		t.Run(file, func(t *testing.T) { testExample(t, file) })
	}
}

func testExample(t *testing.T, file string) {
	h := harness.NewHome(t)
	script := examplesTree(t, file)
	out := h.OK("run", script)
	if !strings.Contains(out, "started order-service") {
		t.Fatalf("run output:\n%s", out)
	}
	rows := h.WaitList(20*time.Second, "6 instances online", func(rows []api.Instance) bool {
		return len(rows) == 6 && harness.AllOnline("api-gateway", 1)(rows) &&
			harness.AllOnline("user-service", 2)(rows) && harness.AllOnline("order-service", 3)(rows)
	})
	wantPorts := map[string][]int{"api-gateway": {8080}, "user-service": {8001, 8002}}
	for _, r := range rows {
		if r.Port == nil {
			t.Fatalf("%s[%d] has no port", r.Name, r.Index)
		}
		if want, ok := wantPorts[r.Name]; ok && *r.Port != want[r.Index] {
			t.Errorf("%s[%d] on port %d, want %d", r.Name, r.Index, *r.Port, want[r.Index])
		}
		if r.Name == "order-service" && (*r.Port < 8010 || *r.Port > 8020) {
			t.Errorf("order-service[%d] on port %d, outside auto:8010-8020", r.Index, *r.Port)
		}
		if w := harness.WaitWho(t, *r.Port, r.Name, r.Index); w.Pid != r.Pid {
			t.Errorf("port %d answered by pid %d, list says %s[%d] is pid %d", *r.Port, w.Pid, r.Name, r.Index, r.Pid)
		}
	}
	again := h.OK("run", script)
	if strings.Contains(again, "started ") || !strings.Contains(again, "already running") {
		t.Errorf("second run did not leave the apps alone:\n%s", again)
	}
	if n := len(h.List()); n != 6 {
		t.Errorf("after a second run: %d instances, want 6", n)
	}
}

// A script that loops forever after starting one app is stopped at --timeout with a clear
// error that names the app it had started; nothing after the loop starts.
func TestLuaInfiniteLoopStopsAtLimit(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "loop.lua")
	body := `cluster.start { name = "before", script = "sleep 100000" }
while true do end
cluster.start { name = "after", script = "sleep 100000" }
`
	if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr := h.Fail("run", script, "--timeout", "500ms")
	for _, want := range []string{"Error: ", "loop.lua", "limit", "before"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not mention %q", stderr, want)
		}
	}
	rows := h.List()
	if len(rows) != 1 || rows[0].Name != "before" {
		t.Errorf("after the limit, list = %+v; want only 'before'", rows)
	}
}
