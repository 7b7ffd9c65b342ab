package webe2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// A real Prometheus scrapes the daemon's /metrics through the web listener with the read
// token (authorization.credentials_file) and its query API returns pmdaemon_instance_up for
// every instance; promtool finds nothing to fix in a scrape.
func TestPrometheusScrapes(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed (Debian package prometheus; test.sh installs it)")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed (Debian package prometheus)")
	}
	h := harness.NewHome(t)
	base, _, read := openWeb(t, h)
	port := harness.FreePorts(t, 3)
	h.OK("start", harness.Echo, "--name", "echo", "-i", "3", "--port", harness.PortRange(port, port+2),
		"--health-url", "http://127.0.0.1:{port}/")
	h.OK("start", "sleep 600", "--name", "worker", "-i", "2", "--kill-timeout", "1s")
	rows := h.WaitList(30*time.Second, "echo and worker online", func(r []api.Instance) bool {
		return harness.AllOnline("echo", 3)(r) && harness.AllOnline("worker", 2)(r)
	})

	// promtool reads a scrape as Prometheus would and lints it.
	// Once a health check has run, its metrics are in the scrape.
	var code int
	var body string
	harness.Eventually(t, 30*time.Second, "health-check metrics", func() bool {
		code, body = get(t, base+"/metrics", read)
		return strings.Contains(body, "pmdaemon_health_check_duration_seconds_count")
	})
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	lint := exec.Command(promtool, "check", "metrics")
	lint.Stdin = strings.NewReader(body)
	if out, err := lint.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(read+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	promPort := harness.FreePorts(t, 1)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: pmdaemon
    # The metrics' own instance label (the instance's index) is kept, not renamed
    # exported_instance (docs/web.md).
    honor_labels: true
    authorization:
      credentials_file: %s
    static_configs:
      - targets: ['%s']
`, tokenFile, strings.TrimPrefix(base, "http://"))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(prom, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})

	query := fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", promPort, url.QueryEscape("pmdaemon_instance_up"))
	want := map[string]bool{}
	for _, r := range rows {
		want[fmt.Sprintf("%s/%d/%d", r.Name, r.Index, r.ID)] = true
	}
	var got map[string]bool
	harness.Eventually(t, 90*time.Second, "Prometheus to return pmdaemon_instance_up for every instance", func() bool {
		got = promSeries(query)
		for k := range want {
			if !got[k] {
				return false
			}
		}
		return true
	})
	if len(got) != len(want) {
		t.Errorf("Prometheus has %v, want %v", got, want)
	}

	// Every query of the Grafana dashboard in examples/ is one Prometheus runs, on metrics a
	// scrape has.
	b, err := os.ReadFile(filepath.Join(harness.ModuleRoot(), "examples", "grafana-pmdaemon.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("examples/grafana-pmdaemon.json: %v", err)
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$app", ".*", "$job", ".*")
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			expr := vars.Replace(target.Expr)
			q := fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", promPort, url.QueryEscape(expr))
			resp, err := http.Get(q)
			if err != nil {
				t.Fatal(err)
			}
			var out struct{ Status, Error string }
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if out.Status != "success" {
				t.Errorf("panel %q: Prometheus refuses %s: %s", p.Title, expr, out.Error)
			}
			for _, name := range metricName.FindAllString(expr, -1) {
				name = strings.TrimSuffix(name, "_bucket")
				if !strings.Contains(body, "# TYPE "+name+" ") {
					t.Errorf("panel %q uses %s, which the scrape does not have", p.Title, name)
				}
			}
		}
	}
}

var metricName = regexp.MustCompile(`(pmdaemon|process|go)_[a-z_]+`)

// promSeries asks Prometheus's query API and returns app/instance/id of each series whose
// value is 1.
func promSeries(query string) map[string]bool {
	resp, err := http.Get(query)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if json.NewDecoder(resp.Body).Decode(&out) != nil || out.Status != "success" {
		return nil
	}
	got := map[string]bool{}
	for _, r := range out.Data.Result {
		if r.Value[1] == "1" && r.Metric["job"] == "pmdaemon" {
			got[r.Metric["app"]+"/"+r.Metric["instance"]+"/"+r.Metric["id"]] = true
		}
	}
	return got
}
