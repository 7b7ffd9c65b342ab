package lua

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// runReal evaluates body against the test daemon.
func runReal(t *testing.T, td *testDaemon, dir, body string, opts Options) (*Result, error, string) {
	t.Helper()
	var logs syncBuf
	opts.Client = td.client
	opts.Log = &logs
	if opts.Timeout == 0 {
		opts.Timeout = 20 * time.Second
	}
	res, err := Run(context.Background(), script(t, dir, "ecosystem.lua", body), opts)
	if res == nil {
		t.Fatal("nil Result")
	}
	return res, err, logs.String()
}

func TestClusterAgainstARealDaemon(t *testing.T) {
	td := startDaemon(t)
	dir := t.TempDir()
	base := freeRange(t, 8)
	body := fmt.Sprintf(`
local web = cluster.start {
  name = "web", script = "sleep", args = { "100000" }, instances = 2,
  port = ports.range(%[1]d, %[1]d + 1), env = { GREETING = "hi" },
}
log.info("web", json.encode(web))
local w = cluster.start { name = "workers", script = "sleep 100000", instances = 2, port = ports.auto(%[1]d + 2, %[1]d + 7), ready = "uptime" }
log.info("workers", json.encode(w.ports), #w.ids)

local free, why = ports.is_free(%[1]d)
log.info("is_free held", tostring(free), why)
log.info("is_free other", tostring(ports.is_free(%[1]d + 7)))
local held = ports.assigned()
log.info("assigned", held[%[1]d], held[%[1]d + 1], held[w.ports[1]])

local rows = cluster.list()
log.info("list", #rows, rows[1].name, rows[1].status, rows[1].port, type(rows[1].pid), type(rows[1].id))
local info = cluster.info("web")
log.info("info", info.name, info.port_spec, info.config.env.GREETING, #info.instances)
local none, msg = cluster.info("nope")
log.info("info nope", tostring(none), msg)

local r = cluster.restart("web", { port = ports.range(%[1]d + 4, %[1]d + 5) })
log.info("restart", json.encode(r.ports), #r.ids)
local rl = cluster.reload("workers")
log.info("reload", rl.name, #rl.ids)
cluster.stop("workers")
cluster.delete("workers")
return { apps = { { name = "declared", script = "sleep 1" } } }
`, base)
	res, err, logs := runReal(t, td, dir, body, Options{})
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, logs)
	}
	if len(res.Started) != 2 || res.Started[0].Name != "web" || res.Started[1].Name != "workers" {
		t.Fatalf("started %+v", res.Started)
	}
	web, workers := res.Started[0], res.Started[1]
	if !reflect.DeepEqual(web.Ports, []int{base, base + 1}) || len(web.IDs) != 2 || web.IDs[0] == web.IDs[1] {
		t.Fatalf("web %+v", web)
	}
	if len(workers.Ports) != 2 || workers.Ports[0] < base+2 || workers.Ports[1] > base+7 || len(workers.IDs) != 2 {
		t.Fatalf("workers %+v", workers)
	}
	if len(res.Declared) != 1 || res.Declared[0].Name != "declared" || len(res.Planned) != 0 {
		t.Fatalf("declared %+v planned %+v", res.Declared, res.Planned)
	}
	for _, want := range []string{
		fmt.Sprintf(`[lua] info: web {"ids":[%d,%d],"instances":2,"name":"web","ports":[%d,%d]}`, web.IDs[0], web.IDs[1], base, base+1),
		fmt.Sprintf(`[lua] info: workers [%d,%d] 2`, workers.Ports[0], workers.Ports[1]),
		fmt.Sprintf("[lua] info: is_free held false Port %d is already assigned to process 'web'", base),
		"[lua] info: is_free other true",
		"[lua] info: assigned web web workers",
		"[lua] info: list 4 web online " + fmt.Sprint(base) + " number number",
		fmt.Sprintf("[lua] info: info web %d-%d hi 2", base, base+1),
		"[lua] info: info nope nil process 'nope' not found",
		fmt.Sprintf("[lua] info: restart [%d,%d] 2", base+4, base+5),
		"[lua] info: reload workers 2",
	} {
		if !strings.Contains(logs, want+"\n") {
			t.Errorf("log lacks %q\nlog:\n%s", want, logs)
		}
	}
	if got := td.names(t); !reflect.DeepEqual(got, []string{"web", "web"}) {
		t.Fatalf("daemon has %v after the script", got)
	}
	info, err := td.client.Info(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if !info.PortOverride || info.PortSpec != fmt.Sprintf("%d-%d", base, base+1) || info.Config.Cwd != dir {
		t.Fatalf("web info %+v", info)
	}

	// Running the script again leaves the running app alone and says so.
	res, err, logs = runReal(t, td, dir, `local w = cluster.start { name = "web", script = "sleep 100000" }
log.info("again", tostring(w.existed), #w.ids)`, Options{})
	if err != nil || !strings.Contains(logs, "[lua] info: again true 2\n") || len(res.Started) != 1 || !res.Started[0].Existed {
		t.Fatalf("second run: %v %+v\n%s", err, res.Started, logs)
	}
	// With Update it is restarted with the script's config.
	res, err, _ = runReal(t, td, dir, `cluster.start { name = "web", script = "sleep 100001" }`, Options{Update: true})
	if err != nil || len(res.Started) != 1 || !res.Started[0].Updated {
		t.Fatalf("update run: %v %+v", err, res.Started)
	}
}

func TestErrorAfterTwoStartsNamesThem(t *testing.T) {
	td := startDaemon(t)
	dir := t.TempDir()
	res, err, _ := runReal(t, td, dir, `
cluster.start { name = "web", script = "sleep 100000", port = "auto:30000-40000" }
cluster.start { name = "workers", script = "sleep 100000", instances = 2 }
local cfg = nil
print(cfg.port)
`, Options{})
	wantErr(t, err, "ecosystem.lua:5: ", "(started before the error: web, workers)")
	if len(res.Started) != 2 || res.Started[0].Name != "web" || res.Started[1].Name != "workers" || len(res.Started[1].IDs) != 2 || len(res.Started[0].Ports) != 1 {
		t.Fatalf("started %+v", res.Started)
	}
	if got := td.names(t); len(got) != 3 {
		t.Fatalf("daemon runs %v", got)
	}
}

func TestDaemonRefusalIsALuaError(t *testing.T) {
	td := startDaemon(t)
	dir := t.TempDir()
	p := freeRange(t, 1)
	res, err, _ := runReal(t, td, dir, fmt.Sprintf(`
cluster.start { name = "app1", script = "sleep 100000", port = %[1]d }
local ok, msg = pcall(cluster.start, { name = "app2", script = "sleep 100000", port = %[1]d })
assert(not ok and msg:find("Port %[1]d is already assigned to process 'app1'", 1, true), msg)
cluster.start { name = "app3", script = "sleep 100000", port = ports.single(%[1]d) }
`, p), Options{})
	wantErr(t, err, fmt.Sprintf(`ecosystem.lua:5: cluster.start: app "app3": Port %d is already assigned to process 'app1'`, p),
		"(started before the error: app1)")
	if len(res.Started) != 1 {
		t.Fatalf("started %+v", res.Started)
	}
	_, err, _ = runReal(t, td, dir, `cluster.stop("ghost")`, Options{})
	wantErr(t, err, "ecosystem.lua:1: cluster.stop: process 'ghost' not found")
}

func TestTimeLimitAfterAStartStartsNothingMore(t *testing.T) {
	td := startDaemon(t)
	dir := t.TempDir()
	res, err, _ := runReal(t, td, dir, `
cluster.start { name = "first", script = "sleep 100000" }
local deadline = os.clock() + 60
while os.clock() < deadline do end
cluster.start { name = "second", script = "sleep 100000" }
`, Options{Timeout: 500 * time.Millisecond})
	wantErr(t, err, "ecosystem.lua: evaluation exceeded the 500ms limit", "(started before the error: first)")
	if len(res.Started) != 1 {
		t.Fatalf("started %+v", res.Started)
	}
	time.Sleep(300 * time.Millisecond)
	if got := td.names(t); !reflect.DeepEqual(got, []string{"first"}) {
		t.Fatalf("daemon runs %v", got)
	}
}

func TestDryRunWithADaemonChangesNothing(t *testing.T) {
	td := startDaemon(t)
	dir := t.TempDir()
	if _, err, _ := runReal(t, td, dir, `cluster.start { name = "live", script = "sleep 100000", port = "auto:30000-40000" }`, Options{}); err != nil {
		t.Fatal(err)
	}
	res, err, logs := runReal(t, td, dir, `
local live = cluster.info("live")
local p = live.ports[1]
log.info("held", tostring(ports.is_free(p)), ports.assigned()[p], #cluster.list())
local r = cluster.start { name = "planned", script = "sleep 1", instances = 2, port = "auto:30000-40000" }
assert(#r.ids == 0 and #r.ports == 0 and r.instances == 2)
cluster.stop("live")
cluster.delete("live")
`, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "[lua] info: held false live 1\n") {
		t.Fatalf("log %q", logs)
	}
	if len(res.Planned) != 1 || len(res.Started) != 0 || !reflect.DeepEqual(res.Actions, []string{"stop live", "delete live"}) {
		t.Fatalf("result %+v", res)
	}
	if got := td.names(t); !reflect.DeepEqual(got, []string{"live"}) {
		t.Fatalf("daemon runs %v", got)
	}
}

func TestNoDaemonAnswering(t *testing.T) {
	td := startDaemon(t)
	td.srv.Close()
	_, err, _ := runReal(t, td, t.TempDir(), "\ncluster.list()", Options{})
	wantErr(t, err, "ecosystem.lua:2: cluster.list: daemon is not running")
}
