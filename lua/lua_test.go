package lua

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const designExample = `
local web = cluster.start {
  name = "web-cluster", script = "node", args = { "server.js" },
  instances = 4, port = ports.range(3000, 3003),
  env = { NODE_ENV = env.get("PMD_TEST_NODE_ENV", "production") },
}
log.info("web on " .. table.concat(web.ports, ","))
local w = cluster.start { name = "workers", script = "./worker", instances = 3, port = ports.auto(5000, 5100), cwd = "sub" }
log.warn("workers", #w.ports, #w.ids, w.instances)
local one = cluster.start { name = "one", script = "sleep 5", port = ports.single(7000) }
log.error("one on", one.ports[1])
cluster.restart("web-cluster", { port = "4000-4003" })
cluster.reload("workers", { instances = 2 })
cluster.stop("one")
cluster.delete("one")
`

func TestDryRunPlansAndNeverCallsTheDaemon(t *testing.T) {
	res, err, logs := dry(t, designExample)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Started) != 0 || len(res.Declared) != 0 {
		t.Fatalf("dry run started or declared apps: %+v", res)
	}
	if len(res.Planned) != 3 {
		t.Fatalf("planned %d apps, want 3", len(res.Planned))
	}
	web, workers := res.Planned[0], res.Planned[1]
	if web.Name != "web-cluster" || web.Instances != 4 || web.Port != "3000-3003" || web.Env["NODE_ENV"] != "production" ||
		!reflect.DeepEqual(web.Args, []string{"server.js"}) {
		t.Fatalf("web planned as %+v", web)
	}
	if workers.Port != "auto:5000-5100" || workers.Instances != 3 {
		t.Fatalf("workers planned as %+v", workers)
	}
	// cwd defaults to the script's directory; a relative cwd is resolved against it.
	if !filepath.IsAbs(web.Cwd) || filepath.Base(workers.Cwd) != "sub" || filepath.Dir(workers.Cwd) != web.Cwd {
		t.Fatalf("cwd: web %q workers %q", web.Cwd, workers.Cwd)
	}
	for _, want := range []string{
		"[lua] info: web on 3000,3001,3002,3003\n",
		"[lua] warn: workers 0 0 3\n",
		"[lua] error: one on 7000\n",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log %q lacks %q", logs, want)
		}
	}
	wantActions := []string{"restart web-cluster --port 4000-4003", "reload workers --instances 2", "stop one", "delete one"}
	if !reflect.DeepEqual(res.Actions, wantActions) {
		t.Fatalf("actions %q, want %q", res.Actions, wantActions)
	}
}

func TestDryRunUsesTheEnvironment(t *testing.T) {
	t.Setenv("PMD_TEST_NODE_ENV", "staging")
	res, err, _ := dry(t, designExample)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Planned[0].Env["NODE_ENV"]; got != "staging" {
		t.Fatalf("NODE_ENV = %q", got)
	}
}

func TestDeclarativeReturn(t *testing.T) {
	res, err, _ := dry(t, `
local apps = {}
for i = 1, 3 do
  apps[#apps + 1] = { name = "svc" .. i, script = "sleep 100", port = 7000 + i, env = { N = i, ON = true }, args = {} }
end
return { apps = apps }`)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Declared) != 3 || res.Declared[2].Name != "svc3" || res.Declared[2].Port != "7003" || res.Declared[0].Env["N"] != "1" || res.Declared[0].Env["ON"] != "true" {
		t.Fatalf("declared %+v", res.Declared)
	}
	if len(res.Planned) != 0 {
		t.Fatalf("planned %+v", res.Planned)
	}

	// One app object, as in ecosystem.json.
	res, err, _ = dry(t, `return { name = "solo", script = "sleep 1" }`)
	if err != nil || len(res.Declared) != 1 || res.Declared[0].Name != "solo" {
		t.Fatalf("single app: %+v, %v", res.Declared, err)
	}
	// Nothing returned: nothing declared.
	res, err, _ = dry(t, `local x = 1`)
	if err != nil || len(res.Declared) != 0 {
		t.Fatalf("no return: %+v, %v", res.Declared, err)
	}
}

func TestDeclarativeErrors(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`return { apps = { { name = "a", script = "x" }, { name = "b", script = "y", instnaces = 2 } } }`,
			`ecosystem.lua: apps[2] (b): unknown key "instnaces" (did you mean "instances"?)`},
		{`return { apps = { { name = "a" } } }`, `ecosystem.lua: apps[1] (a): "script" is missing`},
		{`return { apps = { { name = "a", script = "x" }, { name = "a", script = "y" } } }`, `apps[2] (a): duplicate name "a" (also apps[1])`},
		{`return { apps = { { name = "a", script = "x", instances = 4, port = "3000-3001" } } }`, `Port range 3000-3001 has only 2 ports but 4 instances requested`},
		{`return { apps = { "web" } }`, `ecosystem.lua: apps[1]: expected a table of app settings`},
		{`return { apps = { { name = "a", script = "x", env = { A = print } } } }`, `apps[1]: env.A: a function cannot be used as a value`},
		{`return { apps = {}, extra = 1 }`, `unknown top-level key "extra"`},
		{`return { apps = "x" }`, `"apps" must be a table of app tables`},
		{`return 42`, `ecosystem.lua: the script returned number`},
		{`return { foo = 1 }`, `the returned table has no "apps"`},
		{`cluster.start { name = "a", script = "x" }
return { apps = { { name = "a", script = "y" } } }`, `app "a" is already started by this script (ecosystem.lua:1)`},
		{`return { apps = { { name = "all ", script = "x" } } }`, `ecosystem.lua: apps[1] ("all "): app name "all " is not allowed: it has trailing whitespace`},
		{"cluster.start { name = 'my\tapp', script = 'x' }", `ecosystem.lua:1: cluster.start ("my\tapp"): app name "my\tapp" is not allowed: it contains the control character U+0009 (tab)`},
		{`cluster.start { name = " 3", script = "x" }`, `app name " 3" is not allowed: it has leading whitespace`},
		{`return { apps = { { name = "a", script = "x", instances = 20000 } } }`, `"instances" 20000 is too many (at most 1024)`},
		{"local apps = {}\nfor i = 1, 1025 do apps[i] = { name = 'a' .. i, script = 'x' } end\nreturn { apps = apps }\n",
			`ecosystem.lua: apps[1025] (a1025): app "a1025" would be app number 1025 of this script; an ecosystem file starts at most 1024`},
		{"for i = 1, 1024 do cluster.start { name = 'a' .. i, script = 'x' } end\ncluster.start { name = 'last', script = 'x' }\n",
			`ecosystem.lua:2: cluster.start: app "last" would be app number 1025 of this script; an ecosystem file starts at most 1024`},
	} {
		_, err, _ := dry(t, c.body)
		wantErr(t, err, c.want)
	}
}

func TestErrorsCarryFileAndLine(t *testing.T) {
	for name, c := range map[string]struct{ body, want string }{
		"syntax":          {"local a = 1\nlocal b = = 2\n", "ecosystem.lua:2: syntax error near '='"},
		"syntax at eof":   {"local t = {\n  1,\n", "ecosystem.lua:3: syntax error at the end of the file"},
		"unterminated":    {"local s = \"abc\nx = 1\n", "unterminated string"},
		"runtime":         {"local a = 1\n\nlocal b = nil + a\n", "ecosystem.lua:3: "},
		"error call":      {"\n\n\nerror(\"boom\")\n", "ecosystem.lua:4: boom"},
		"error level 0":   {"error(\"plain\", 0)", "ecosystem.lua: plain"},
		"error table":     {"error({})", "ecosystem.lua: error raised with a table value"},
		"index nil":       {"local t\nprint(t.x)\n", "ecosystem.lua:2: "},
		"deep recursion":  {"local function f(n) return 1 + f(n + 1) end\nf(1)\n", "stack overflow (calls nested deeper than"},
		"registry":        {"local t = {}\nprint(unpack(t, 1, 1e7))\n", "ecosystem.lua:2: too many values on the Lua stack"},
		"string.rep":      {"local s = string.rep('x', 1e9)", "ecosystem.lua:1: string.rep: the result would be larger than 16 MB"},
		"method rep":      {"local s = ('xy'):rep(1e9)", "string.rep: the result would be larger than 16 MB"},
		"non-utf8":        {"local a = 1\nlocal b = 2\nlocal s = \"caf\xe9\"\n", "ecosystem.lua:3: the file is not valid UTF-8 (byte 0xe9 at column 15)"},
		"deep brackets":   {"x = " + strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300), "ecosystem.lua:1: brackets are nested more than 200 levels deep"},
		"huge conversion": {"local t = {}\nfor i = 1, 20000 do t[i] = 'a' end\ncluster.start { name = 'a', script = 'x', args = t }\n", "ecosystem.lua:3: cluster.start: args: the value has more than 10000 entries"},
		"huge return":     {"local apps = {}\nfor i = 1, 20000 do apps[i] = { script = 'x' } end\nreturn { apps = apps }\n", "more than the limit of 10000"},
		"cycle":           {"local t = {}\nt.self = t\nprint(json.encode(t))\n", "ecosystem.lua:3: json.encode: self: the table contains itself"},
		"module error":    {"require('nope')", `ecosystem.lua:1: require: module "nope" not found: no file nope.lua in`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err, _ := dry(t, c.body)
			wantErr(t, err, c.want)
			if strings.Contains(err.Error(), "stack traceback") {
				t.Fatalf("error carries a traceback: %q", err)
			}
		})
	}
}

func TestSandbox(t *testing.T) {
	for name, c := range map[string]struct{ body, want string }{
		"os.execute":      {"os.execute('touch /tmp/pwned')", "ecosystem.lua:1: os.execute is not available in ecosystem scripts (sandbox)"},
		"os.exit":         {"\nos.exit(1)", "ecosystem.lua:2: os.exit is not available"},
		"os.remove":       {"os.remove('x')", "os.remove is not available"},
		"io.open":         {"local f = io.open('/etc/passwd')", "ecosystem.lua:1: io.open is not available in ecosystem scripts (sandbox)"},
		"io.popen":        {"io.popen('ls')", "io.popen is not available"},
		"dofile":          {"dofile('/etc/passwd')", "ecosystem.lua:1: dofile is not available"},
		"loadfile":        {"loadfile('/etc/passwd')", "ecosystem.lua:1: loadfile is not available"},
		"loadlib":         {"package.loadlib('x', 'y')", "package.loadlib is not available"},
		"require parent":  {"require('../x')", `ecosystem.lua:1: require: module "../x" is outside the script's directory`},
		"require abs":     {"require('/etc/passwd')", `require: module "/etc/passwd" is an absolute path`},
		"require dots":    {"require('..x')", `is outside the script's directory`},
		"require bad":     {"require('a b')", `is not a valid module name`},
		"require nonname": {"require(42)", `require: the module name must be a string, got number`},
		"debug":           {"debug.getinfo(1)", "ecosystem.lua:1: "},
		"coroutine":       {"coroutine.create(print)", "ecosystem.lua:1: "},
	} {
		t.Run(name, func(t *testing.T) {
			_, err, _ := dry(t, c.body)
			wantErr(t, err, c.want)
		})
	}
	if _, err := os.Stat("/tmp/pwned"); err == nil {
		t.Fatal("os.execute ran")
	}
	// What remains works.
	res, err, logs := dry(t, `
assert(type(os.getenv("HOME")) == "string" or os.getenv("HOME") == nil)
assert(os.time() > 1600000000)
assert(os.clock() >= 0)
assert(#os.date("%Y-%m-%d") == 10)
assert(os.date("!%Y", 0) == "1970")
assert(math.max(1, 5) == 5 and math.floor(2.5) == 2)
assert(string.format("%03d", 7) == "007" and ("abc"):upper() == "ABC")
assert(("x"):rep(3) == "xxx")
local t = { 3, 1, 2 }
table.sort(t)
assert(table.concat(t, ",") == "1,2,3")
assert(io ~= nil and os.execute ~= nil)
assert(debug == nil and coroutine == nil and module == nil)
local f = loadstring("return 1 + 1")
assert(f() == 2)
assert(pcall(error, "x") == false)
assert(require("json") == json and require("ports") == ports and package.loaded.cluster == cluster)
print("done", 1, true, nil)
`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "[lua] done\t1\ttrue\tnil\n") {
		t.Fatalf("print wrote %q", logs)
	}
	_ = res
}

func TestRequire(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "lib/util.lua", `
local M = {}
M.count = (M.count or 0) + 1
function M.app(name) return { name = name, script = "sleep 1", port = ports.single(6000) } end
return M`)
	script(t, dir, "helpers.lua", `loaded_helpers = (loaded_helpers or 0) + 1`)
	script(t, dir, "broken.lua", "local x = 1\nlocal = 2\n")
	script(t, dir, "fails.lua", "local x = 1\n\nerror('module failed')\n")
	script(t, dir, "loop_a.lua", "return require('loop_b')")
	script(t, dir, "loop_b.lua", "return require('loop_a')")
	outside := t.TempDir()
	script(t, outside, "secret.lua", "return 1")
	if err := os.Symlink(filepath.Join(outside, "secret.lua"), filepath.Join(dir, "link.lua")); err != nil {
		t.Fatal(err)
	}

	run := func(body string) (*Result, error) {
		return Run(context.Background(), script(t, dir, "ecosystem.lua", body), Options{DryRun: true, Log: &syncBuf{}, Timeout: time.Minute})
	}
	res, err := run(`
local u = require("lib.util")
local u2 = require("lib/util")
local u3 = require("lib/util.lua")
assert(u == u2 and u2 == u3 and u.count == 1)
assert(require("helpers") == true and require("helpers") == true and loaded_helpers == 1)
cluster.start(u.app("from-module"))`)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Planned) != 1 || res.Planned[0].Name != "from-module" || res.Planned[0].Port != "6000" {
		t.Fatalf("planned %+v", res.Planned)
	}
	for body, want := range map[string]string{
		`require("broken")`:  "broken.lua:2: ",
		`require("fails")`:   "fails.lua:3: module failed",
		`require("loop_a")`:  `requires itself (a require loop)`,
		`require("link")`:    `require: module "link": the file is a link to outside the script's directory`,
		`require("missing")`: `module "missing" not found`,
	} {
		_, err := run(body)
		wantErr(t, err, want)
	}
}

func TestInfiniteLoopStopsAtTheLimit(t *testing.T) {
	dir := t.TempDir()
	for _, body := range []string{
		"local x = 0\nwhile true do x = x + 1 end\n",
		"local function f() return f() end\nf()\n",
		"while true do pcall(function() while true do end end) end\n",
		"repeat local t = {} until false\n",
	} {
		p := script(t, dir, "ecosystem.lua", body)
		start := time.Now()
		_, err := Run(context.Background(), p, Options{DryRun: true, Timeout: 300 * time.Millisecond, Log: &syncBuf{}})
		took := time.Since(start)
		wantErr(t, err, "ecosystem.lua: evaluation exceeded the 300ms limit")
		if took > 3*time.Second {
			t.Fatalf("%q: stopped after %s", body, took)
		}
	}
}

func TestMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "ecosystem.lua", "local t = {}\nfor i = 1, 1e9 do t[i] = { i } end\n")
	_, err := Run(context.Background(), p, Options{DryRun: true, Timeout: 20 * time.Second, MemoryLimit: 32 << 20, Log: &syncBuf{}})
	wantErr(t, err, "ecosystem.lua: evaluation exceeded the memory limit of 32 MB")
}

func TestCancellation(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "ecosystem.lua", "while true do end")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := Run(ctx, p, Options{DryRun: true, Timeout: 10 * time.Second, Log: &syncBuf{}})
	wantErr(t, err, "ecosystem.lua: evaluation cancelled")
}

func TestRunInputErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Run(context.Background(), filepath.Join(dir, "missing.lua"), Options{DryRun: true})
	wantErr(t, err, "cannot read missing.lua")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v does not wrap ErrNotExist", err)
	}
	_, err = Run(context.Background(), dir, Options{DryRun: true})
	wantErr(t, err, "is a directory")
	p := script(t, dir, "ecosystem.lua", "return nil")
	_, err = Run(context.Background(), p, Options{})
	wantErr(t, err, "no daemon client")
	big := script(t, dir, "big.lua", "-- "+strings.Repeat("x", MaxScriptSize))
	_, err = Run(context.Background(), big, Options{DryRun: true})
	wantErr(t, err, "big.lua is larger than 1 MB")
	// A BOM and a shebang line are fine.
	p = script(t, dir, "shebang.lua", "\xef\xbb\xbf#!/usr/bin/env pmdaemon run\nlocal x = 1\nerror('line two')\n")
	_, err = Run(context.Background(), p, Options{DryRun: true, Log: &syncBuf{}})
	wantErr(t, err, "shebang.lua:3: line two")
}

func TestArgumentErrors(t *testing.T) {
	for body, want := range map[string]string{
		"\n\nports.range('a', 3)":       "ecosystem.lua:3: ports.range: start port must be a number, got a string",
		"ports.range(3000)":             "ports.range: end port must be a number, got nil",
		"ports.range(3000.5, 3001)":     "ports.range: start port must be a whole number, got 3000.5",
		"ports.range(3003, 3000)":       `ports.range: invalid port spec "3003-3000": the range is reversed`,
		"ports.range(0, 10)":            "ports.range: invalid port spec \"0-10\": port 0 is out of range",
		"ports.auto({}, 2)":             "ports.auto: start port must be a number, got a table",
		"ports.auto(1, 70000)":          "out of range",
		"ports.single('x')":             "ports.single: port must be a number, got a string",
		"ports.spec(true)":              "ports.spec: spec must be a string",
		"ports.spec('auto:5')":          "ports.spec: invalid port spec \"auto:5\"",
		"ports.is_free('x')":            "ports.is_free: port must be a number, got a string",
		"ports.is_free(0)":              "ports.is_free: port 0 is out of range",
		"cluster.start('web')":          "ecosystem.lua:1: cluster.start: expected a table of app settings",
		"cluster.start({ 'a', 'b' })":   "cluster.start: expected a table of named app settings",
		"cluster.start({name='a'}, {})": "cluster.start: takes one table",
		"cluster.start({ name = 'a', script = 'x', port = true })": `cluster.start (a): "port" must be a port spec string or a port number`,
		"cluster.start({ name = 'a', script = 'x', [1] = 2 })":     "the table mixes array items and named keys",
		"cluster.start({ script = 'x', env = { [print] = 1 } })":   "env: a function key is not allowed",
		"cluster.start({ script = 'x', args = { [2] = 'a' } })":    "args: the array has a hole",
		"cluster.start({ script = 'x', instances = 0/0 })":         "instances: NaN is not a usable number",
		"cluster.stop(true)":                     "cluster.stop: expected an app name, an instance id or \"all\", got a boolean",
		"cluster.stop('')":                       "cluster.stop: the app name is empty",
		"cluster.stop('a', 'b')":                 "cluster.stop: takes one argument",
		"cluster.restart('a', 'b')":              "cluster.restart: options must be a table, got a string",
		"cluster.restart('a', { prot = 1 })":     `cluster.restart: unknown option "prot"`,
		"cluster.restart('a', { port = '9-1' })": `invalid port spec "9-1"`,
		"cluster.reload('a', { instances = 0 })": "cluster.reload: options.instances must be a whole number from 1 to 1024",
		"cluster.info({})":                       "cluster.info: expected an app name",
		"env.get(1)":                             "env.get: name must be a string, got a number",
		"json.decode(1)":                         "json.decode: the JSON text must be a string, got a number",
		"json.decode('{\"a\":')":                 "json.decode: the JSON text ends too early",
		"json.decode('{\"a\" 1}')":               "json.decode: invalid JSON at line 1, column",
		"json.decode('1 2')":                     "json.decode: trailing data",
		"json.encode()":                          "json.encode: expected a value to encode",
		"json.encode(print)":                     "json.encode: a function cannot be used as a value",
		"json.encode({}, 5)":                     "json.encode: indent must be true or a string",
		"cluster.start{ name = 'a', script = 'x' }\ncluster.start{ name = 'a', script = 'y' }": `ecosystem.lua:2: cluster.start: app "a" is already started by this script (ecosystem.lua:1)`,
	} {
		_, err, _ := dry(t, body)
		wantErr(t, err, want)
	}
}

func TestDryRunReturnValues(t *testing.T) {
	_, err, logs := dry(t, `
local r = cluster.start { name = "r", script = "x", instances = 2, port = ports.range(3000, 3009) }
assert(#r.ports == 2 and r.ports[1] == 3000 and r.ports[2] == 3001 and #r.ids == 0 and r.instances == 2 and r.name == "r")
local a = cluster.start { name = "a", script = "x", port = "auto:5000-5100" }
assert(#a.ports == 0)
local n = cluster.start { name = "n", script = "x" }
assert(#n.ports == 0 and n.instances == 1)
local num = cluster.start { name = "num", script = "x", port = 8080 }
assert(num.ports[1] == 8080)
local rr = cluster.restart("r", { port = "4000-4001", instances = 2 })
assert(rr.name == "r" and rr.ports[1] == 4000 and #rr.ids == 0)
assert(cluster.stop("r") == nil)
assert(#cluster.list() == 0)
local info, why = cluster.info("r")
assert(info == nil and why:find("dry run"))
local free = ports.is_free(1)
assert(type(free) == "boolean")
assert(next(ports.assigned()) == nil)
assert(ports.spec(" 3000-3003 ") == "3000-3003" and ports.spec(80) == "80")
log.info("ok")
`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "[lua] info: ok") {
		t.Fatal(logs)
	}
}

func TestOnly(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "ecosystem.lua", `
local a = cluster.start { name = "a", script = "x", port = 3000 }
local b = cluster.start { name = "b", script = "y", port = 3001 }
assert(a.skipped == true and #a.ports == 0)
assert(b.skipped == nil and b.ports[1] == 3001 or b.skipped == true)
assert(cluster.restart("a").skipped == true)
cluster.stop("a")
cluster.stop("b")
return { apps = { { name = "c", script = "z" } } }`)
	res, err := Run(context.Background(), p, Options{DryRun: true, Only: "b", Log: &syncBuf{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Planned) != 1 || res.Planned[0].Name != "b" || len(res.Declared) != 0 || !reflect.DeepEqual(res.Actions, []string{"stop b"}) {
		t.Fatalf("only b: %+v", res)
	}
	res, err = Run(context.Background(), p, Options{DryRun: true, Only: "c", Log: &syncBuf{}})
	if err != nil || len(res.Planned) != 0 || len(res.Declared) != 1 || res.Declared[0].Name != "c" {
		t.Fatalf("only c: %+v %v", res, err)
	}
	_, err = Run(context.Background(), p, Options{DryRun: true, Only: "zz", Log: &syncBuf{}})
	wantErr(t, err, `ecosystem.lua has no app named "zz" (it has: a, b, c)`)
	// Other apps are still validated.
	p = script(t, dir, "bad.lua", `cluster.start { name = "a", script = "x", instnaces = 1 }`)
	_, err = Run(context.Background(), p, Options{DryRun: true, Only: "b", Log: &syncBuf{}})
	wantErr(t, err, `unknown key "instnaces"`)
}
