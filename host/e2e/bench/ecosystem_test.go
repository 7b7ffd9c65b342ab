package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// BenchmarkRunEcosystem10 is the wall time of `pmdaemon run FILE` for a file of 10 apps,
// written as JSON and as the same object in an ecosystem.config.js, and of a bare
// `node -e 0`: node's own start-up, which a JS file pays once per run. Issue 14's target: the
// .config.js run, less node's start-up, within 2× of the JSON run. Each run starts the 10
// apps for real; they are deleted between runs, outside the timing.
func BenchmarkRunEcosystem10(b *testing.B) {
	if _, err := exec.LookPath("node"); err != nil {
		b.Fatalf("a .config.js needs node: %v", err)
	}
	var apps []string
	for i := range 10 {
		apps = append(apps, fmt.Sprintf(`{"name": "app%d", "script": "sleep 100000", "env": {"SHARD": %d}, "env_production": {"MODE": "prod"}}`, i, i))
	}
	body := `{"apps": [` + strings.Join(apps, ",\n") + `]}`
	dir := b.TempDir()
	files := map[string]string{
		"json":      writeBenchFile(b, dir, "eco.json", body),
		"config.js": writeBenchFile(b, dir, "ecosystem.config.js", "module.exports = "+body+";\n"),
	}
	b.Run("node-start", func(b *testing.B) {
		start := time.Now()
		for range b.N {
			if out, err := exec.Command("node", "-e", "0").CombinedOutput(); err != nil {
				b.Fatalf("node -e 0: %v %s", err, out)
			}
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/run")
	})
	for _, kind := range []string{"json", "config.js"} {
		b.Run(kind, func(b *testing.B) {
			h := harness.NewHome(b)
			h.OK("ping")
			var total time.Duration
			for range b.N {
				start := time.Now()
				h.OK("run", files[kind], "--env", "production")
				total += time.Since(start)
				b.StopTimer()
				if n := len(h.List()); n != 10 {
					b.Fatalf("%d instances after run, want 10", n)
				}
				h.OK("delete", "all")
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/run")
		})
	}
}

func writeBenchFile(b *testing.B, dir, name, content string) string {
	b.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}
