package lua

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func FuzzRunScript(f *testing.F) {
	for _, seed := range []string{
		designExample,
		"return { apps = { { name = 'a', script = 'x' } } }",
		"while true do end",
		"local function f() return f() end f()",
		"local function f(n) return 1 + f(n) end f(1)",
		"print(json.decode('[1,2,{\"a\":null}]'))",
		"local t = {} t[1] = t json.encode(t)",
		"error(setmetatable({}, {__tostring = function() return 'x' end}))",
		"ports.range(1, 65535) ports.auto(5, 4)",
		"require('x.y') require('') require('a..b')",
		"os.date('%Q%') os.date('*t') os.time({year=2000})",
		"string.rep('ab', 1e6):find('(a*)*b')",
		"cluster.start{ name = 'a', script = 'x', env = { [1] = 2 } }",
		"x = \xff",
		"--[==[ unclosed",
		"return {apps = {[1] = {script = 'x'}, [3] = {script = 'y'}}}",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "ecosystem.lua")
	f.Fuzz(func(t *testing.T, src string) {
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		start := time.Now()
		go func() {
			defer close(done)
			res, err := Run(context.Background(), path, Options{DryRun: true, Timeout: 200 * time.Millisecond, Log: io.Discard, MemoryLimit: 64 << 20})
			if res == nil {
				panic("nil Result")
			}
			if err != nil && strings.Contains(err.Error(), "internal error") {
				panic(fmt.Sprintf("internal error for %q: %v", src, err))
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Run hung for %s on %q", time.Since(start), src)
		}
	})
}

func BenchmarkDryRun50Apps(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("local base = 3000\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&sb, `cluster.start {
  name = "app-%[1]d", script = "node", args = { "server.js", "--id", "%[1]d" },
  instances = 2, port = ports.range(base + %[2]d, base + %[2]d + 1),
  env = { NODE_ENV = env.get("NODE_ENV", "production"), INDEX = %[1]d },
  max_memory_restart = "200M", kill_timeout = 3000, autorestart = true,
}
`, i, i*2)
	}
	sb.WriteString(`log.info("planned")` + "\n")
	path := script(b, b.TempDir(), "ecosystem.lua", sb.String())
	b.ReportAllocs()
	for b.Loop() {
		res, err := Run(context.Background(), path, Options{DryRun: true, Log: io.Discard})
		if err != nil || len(res.Planned) != 50 {
			b.Fatal(err)
		}
	}
}
