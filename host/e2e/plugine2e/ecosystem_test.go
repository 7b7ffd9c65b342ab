package plugine2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// exampleDir is examples/plugins with the binaries the examples expect in ../../bin.
func exampleDir(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "examples", "plugins")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	for name, from := range map[string]string{"reserved-range": reservedRange, "nginx-upstream": nginxUpstream, "echo": harness.Echo} {
		copyFile(t, from, filepath.Join(root, "bin", name))
	}
	src := filepath.Join(harness.ModuleRoot(), "examples", "plugins")
	for _, f := range []string{"ecosystem.json", "ecosystem.lua"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	return dir
}

// Both shipped plugin ecosystems register the two reference plugins before their apps, and
// the apps come up under them: metrics' auto: range skips the reserved ports and the nginx
// upstream file lists web's ports. A second run leaves everything alone.
func TestExampleEcosystemsWithPlugins(t *testing.T) {
	for _, file := range []string{"ecosystem.json", "ecosystem.lua"} {
		t.Run(file, func(t *testing.T) {
			h := harness.NewHome(t)
			mustBeFree(t, append(harness.Seq(8000, 4), harness.Seq(8990, 2)...)...)
			dir := exampleDir(t)
			upstreams := filepath.Join(t.TempDir(), "upstreams.conf")
			path := filepath.Join(dir, file)
			if file == "ecosystem.json" {
				// The JSON example targets a system nginx; point it at the test's file.
				var eco map[string]any
				b, _ := os.ReadFile(path)
				if err := json.Unmarshal(b, &eco); err != nil {
					t.Fatal(err)
				}
				cfg := eco["plugins"].([]any)[1].(map[string]any)["config"].(map[string]any)
				cfg["output"], cfg["reload"] = upstreams, []string{"/bin/true"}
				delete(cfg, "pid_file") // no nginx to wait for
				b, _ = json.Marshal(eco)
				os.WriteFile(path, b, 0o644)
			}
			// No nginx runs for the Lua example's "pid_file" either: a missing file makes each
			// event's wait fail at once (logged), rather than wait on a system nginx.
			h.Env = append(h.Env, "UPSTREAMS_FILE="+upstreams, "NGINX_RELOAD=/bin/true",
				"NGINX_PID_FILE="+filepath.Join(dir, "no-nginx.pid"))
			out := h.OK("run", path)
			for _, want := range []string{"added plugin reserved-range (allocator", "added plugin nginx-upstream (hook"} {
				if !strings.Contains(out, want) {
					t.Errorf("run output lacks %q:\n%s", want, out)
				}
			}
			rows := h.WaitList(wait, "apps online", func(rs []api.Instance) bool {
				return harness.AllOnline("web", 4)(rs) && harness.AllOnline("metrics", 2)(rs)
			})
			if got := harness.PortsOf(rows, "metrics"); !slices.Equal(got, []int{8990, 8991}) {
				t.Errorf("metrics ports %v", got)
			}
			harness.Eventually(t, wait, "the upstream file to list web's ports", func() bool {
				b, _ := os.ReadFile(upstreams)
				for _, p := range harness.Seq(8000, 4) {
					if !strings.Contains(string(b), "127.0.0.1:"+strconv.Itoa(p)) {
						return false
					}
				}
				return true
			})
			if ps := plugins(t, h); len(ps) != 2 || ps[0].Name != "reserved-range" || ps[1].Name != "nginx-upstream" {
				t.Fatalf("plugins %+v", ps)
			}
			out = h.OK("run", path)
			if !strings.Contains(out, "plugin reserved-range is already registered; left alone") {
				t.Errorf("second run output:\n%s", out)
			}
		})
	}
}
