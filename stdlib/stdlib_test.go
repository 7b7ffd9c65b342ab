package stdlib

import (
	"bytes"
	"context"
	"math"
	"reflect"
	"strings"
	"testing"

	glua "github.com/yuin/gopher-lua"
)

// state is a plain Lua state with the modules opened, in a dry run without a daemon.
func state(t *testing.T) (*glua.LState, *Host, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	h := &Host{Ctx: context.Background(), CallCtx: context.Background(), DryRun: true, Log: &logs, Dir: t.TempDir()}
	L := glua.NewState()
	t.Cleanup(L.Close)
	Open(L, h)
	return L, h, &logs
}

func do(t *testing.T, L *glua.LState, code string) error {
	t.Helper()
	fn, err := L.Load(strings.NewReader(code), "test.lua")
	if err != nil {
		t.Fatal(err)
	}
	L.Push(fn)
	return L.PCall(0, 0, L.NewFunction(func(L *glua.LState) int { L.Push(L.Get(1)); return 1 }))
}

func mustDo(t *testing.T, L *glua.LState, code string) {
	t.Helper()
	if err := do(t, L, code); err != nil {
		t.Fatal(err)
	}
}

func TestPortsBuilders(t *testing.T) {
	L, _, _ := state(t)
	mustDo(t, L, `
assert(ports.range(3000, 3003) == "3000-3003")
assert(ports.auto(5000, 5100) == "auto:5000-5100")
assert(ports.single(8080) == "8080")
assert(ports.range(1, 65535) == "1-65535")
assert(ports.spec("auto:1-2") == "auto:1-2" and ports.spec(443) == "443")
assert(ports.assigned() ~= nil and next(ports.assigned()) == nil)`)
	for code, want := range map[string]string{
		"ports.range('3000', 3001)": "test.lua:1: ports.range: start port must be a number, got a string",
		"ports.range(3000, nil)":    "ports.range: end port must be a number, got nil",
		"ports.range(1, 2.5)":       "ports.range: end port must be a whole number, got 2.5",
		"ports.range(5, 4)":         `ports.range: invalid port spec "5-4": the range is reversed`,
		"ports.auto(1, 99999)":      `ports.auto: invalid port spec "auto:1-99999": port 99999 is out of range (1-65535)`,
		"ports.single(0)":           `ports.single: invalid port spec "0": port 0 is out of range`,
		"ports.single(1/0)":         "ports.single: port must be a whole number, got +Inf",
		"ports.spec('x')":           `ports.spec: invalid port spec "x"`,
		"ports.is_free(70000)":      "ports.is_free: port 70000 is out of range (1-65535)",
	} {
		err := do(t, L, code)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", code, err, want)
		}
	}
}

func TestFixedPorts(t *testing.T) {
	for _, c := range []struct {
		spec string
		n    int
		want []int
	}{
		{"3000-3003", 2, []int{3000, 3001}},
		{"3000-3001", 4, []int{3000, 3001}},
		{"3000", 1, []int{3000}},
		{"auto:5000-5100", 3, []int{}},
		{"", 1, []int{}},
		{"bad", 1, []int{}},
	} {
		if got := fixedPorts(c.spec, c.n); !reflect.DeepEqual(got, c.want) {
			t.Errorf("fixedPorts(%q, %d) = %v, want %v", c.spec, c.n, got, c.want)
		}
	}
}

func TestEnvAndLog(t *testing.T) {
	t.Setenv("PMD_STDLIB_SET", "value")
	t.Setenv("PMD_STDLIB_EMPTY", "")
	L, _, logs := state(t)
	mustDo(t, L, `
assert(env.get("PMD_STDLIB_SET") == "value")
assert(env.get("PMD_STDLIB_SET", "d") == "value")
assert(env.get("PMD_STDLIB_UNSET_X", "d") == "d")
assert(env.get("PMD_STDLIB_EMPTY", "d") == "d")
assert(env.get("PMD_STDLIB_UNSET_X") == nil)
assert(env.get("PMD_STDLIB_UNSET_X", 3) == 3)
log.info("hello", 1, true, nil)
log.warn("careful")
log.error(setmetatable({}, { __tostring = function() return "custom" end }))
log.info("trailing\n")`)
	want := "[lua] info: hello 1 true nil\n[lua] warn: careful\n[lua] error: custom\n[lua] info: trailing\n"
	if logs.String() != want {
		t.Fatalf("log %q, want %q", logs.String(), want)
	}
	if err := do(t, L, "env.get()"); err == nil || !strings.Contains(err.Error(), "env.get: name must be a string, got nil") {
		t.Fatal(err)
	}
}

func TestJSON(t *testing.T) {
	L, _, _ := state(t)
	mustDo(t, L, `
assert(json.encode({ b = 1, a = { 1, 2.5, "x", true } }) == '{"a":[1,2.5,"x",true],"b":1}')
assert(json.encode({}) == "{}")
assert(json.encode("<&>") == '"<&>"')
assert(json.encode(nil) == "null")
assert(json.encode({ a = 1 }, true) == '{\n  "a": 1\n}')
assert(json.encode({ 1 }, "\t") == '[\n\t1\n]')
local v = json.decode('{"name":"web","ports":[3000,3001],"on":true,"none":null,"nested":{"x":[[]]}}')
assert(v.name == "web" and v.ports[2] == 3001 and v.on == true and v.none == nil and type(v.nested.x[1]) == "table")
assert(json.decode("3") == 3 and json.decode('"s"') == "s" and json.decode("null") == nil)
local round = json.decode(json.encode({ env = { A = "1" }, args = { "a", "b" } }))
assert(round.env.A == "1" and round.args[2] == "b")`)
	for code, want := range map[string]string{
		`json.decode("{")`:                                          "json.decode: the JSON text ends too early",
		`json.decode('{"a":1}x')`:                                   "json.decode: trailing data after the JSON value",
		`json.decode('[1,\n2,,3]')`:                                 "json.decode: invalid JSON at line 2, column",
		`json.decode('1e400')`:                                      "json.decode: invalid JSON",
		`json.encode(0/0)`:                                          "json.encode: NaN is not a usable number",
		`json.encode({ [true] = 1 })`:                               "json.encode: a boolean key is not allowed",
		`json.encode({ [1.5] = 1 })`:                                "json.encode: key 1.5 is not allowed",
		`json.encode({ 1, 2, x = 3 })`:                              "json.encode: the table mixes array items and named keys",
		`json.encode({ [1] = 1, [3] = 3 })`:                         "json.encode: the array has a hole",
		`json.encode({ f = print })`:                                "json.encode: f: a function cannot be used as a value",
		`json.decode(string.rep("[", 100) .. string.rep("]", 100))`: "json.decode: the value is nested more than 32 levels deep",
	} {
		err := do(t, L, code)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", code, err, want)
		}
	}
}

func TestToGo(t *testing.T) {
	L := glua.NewState()
	defer L.Close()
	if err := L.DoString(`v = { name = "a", args = { "x", "y" }, env = { N = 1 }, on = false, list = { { a = 1 } } }`); err != nil {
		t.Fatal(err)
	}
	got, err := ToGo(L.GetGlobal("v"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "a", "args": []any{"x", "y"}, "env": map[string]any{"N": 1.0}, "on": false, "list": []any{map[string]any{"a": 1.0}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ToGo = %#v", got)
	}
	big := L.NewTable()
	for i := 1; i <= MaxEntries+1; i++ {
		big.Append(glua.LNumber(i))
	}
	if _, err := ToGo(big); err == nil || !strings.Contains(err.Error(), "more than 10000 entries") {
		t.Fatalf("big table: %v", err)
	}
	if _, err := ToGo(glua.LNumber(math.Inf(1))); err == nil {
		t.Fatal("infinity converted")
	}
	m, err := AppMap(mustTable(t, L, `return { script = "x", args = {} }`))
	if err != nil || !reflect.DeepEqual(m["args"], []any{}) {
		t.Fatalf("AppMap args = %#v, %v", m["args"], err)
	}
	if _, err := AppMap(glua.LString("x")); err == nil || !strings.Contains(err.Error(), "got a string") {
		t.Fatalf("AppMap string: %v", err)
	}
}

func mustTable(t *testing.T, L *glua.LState, code string) *glua.LTable {
	t.Helper()
	if err := L.DoString(code); err != nil {
		t.Fatal(err)
	}
	v := L.Get(-1)
	L.Pop(1)
	return v.(*glua.LTable)
}

func TestToLua(t *testing.T) {
	L := glua.NewState()
	defer L.Close()
	v, err := ToLua(L, map[string]any{"a": []any{1.0, "x", nil, true}, "m": map[int]string{3000: "web"}, "i": []int{1, 2}, "s": []string{"q"}, "e": map[string]string{"K": "V"}, "n": int64(5)})
	if err != nil {
		t.Fatal(err)
	}
	L.SetGlobal("v", v)
	if err := L.DoString(`assert(v.a[1] == 1 and v.a[2] == "x" and v.a[4] == true and v.m[3000] == "web" and v.i[2] == 2 and v.s[1] == "q" and v.e.K == "V" and v.n == 5)`); err != nil {
		t.Fatal(err)
	}
	if _, err := ToLua(L, struct{}{}); err == nil {
		t.Fatal("struct converted")
	}
	big := make([]any, MaxEntries+1)
	if _, err := ToLua(L, big); err == nil {
		t.Fatal("big slice converted")
	}
}

func TestWhereAndStartGuards(t *testing.T) {
	L, h, _ := state(t)
	L.SetGlobal("where", L.NewFunction(func(L *glua.LState) int {
		L.Push(glua.LString(Where(L)))
		return 1
	}))
	mustDo(t, L, "\n\nassert(where() == 'test.lua:3')\nlocal ok, w = pcall(where)\nassert(w == 'test.lua:4', w)")
	mustDo(t, L, `local r = cluster.start { name = "one", script = "sleep 1", port = 4000 }
assert(r.ports[1] == 4000 and #r.ids == 0)`)
	if got := h.Planned(); len(got) != 1 || got[0].Cwd != h.Dir {
		t.Fatalf("planned %+v", got)
	}
	err := do(t, L, `cluster.start { name = "one", script = "sleep 1" }`)
	if err == nil || !strings.Contains(err.Error(), `test.lua:1: cluster.start: app "one" is already started by this script (test.lua:1)`) {
		t.Fatal(err)
	}
	// Once closed, nothing changes the daemon any more.
	h.DryRun = false
	h.Close()
	err = do(t, L, `cluster.stop("one")`)
	if err == nil || !strings.Contains(err.Error(), "no daemon connection") {
		t.Fatal(err)
	}
	if err := h.change(func(context.Context) error { t.Fatal("call made after Close"); return nil }); err != ErrStopped {
		t.Fatalf("change after Close: %v", err)
	}
}
