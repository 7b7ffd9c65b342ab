package plugine2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// nginx is a real nginx in the foreground, with everything in one temp directory.
type nginx struct {
	dir, conf string
	port      int
	cmd       *exec.Cmd
	bin       string
}

func startNginx(t *testing.T, upstreams string) *nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, err2 := os.Stat(p); err2 == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Fatalf("this test needs nginx (.ci/run installs it: apt-get install -y nginx): %v", err)
	}
	n := &nginx{dir: t.TempDir(), port: harness.FreePorts(t, 1), bin: bin}
	n.conf = filepath.Join(n.dir, "nginx.conf")
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers read our temp directory
	}
	for _, d := range []string{"body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		os.MkdirAll(filepath.Join(n.dir, "tmp", d), 0o755)
	}
	conf := fmt.Sprintf(`%s
daemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    include %[3]s;
    server {
        listen 127.0.0.1:%[4]d;
        location / {
            proxy_pass http://web_backend;
            proxy_next_upstream error timeout http_502;
            proxy_connect_timeout 1s;
        }
    }
}
`, user, n.dir, upstreams, n.port)
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(bin, "-p", n.dir, "-c", n.conf)
	n.cmd.Stdout, n.cmd.Stderr = os.Stderr, os.Stderr
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		n.cmd.Wait()
	})
	harness.Eventually(t, wait, "nginx to listen", func() bool {
		resp, err := http.Get(n.url())
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return n
}

func (n *nginx) url() string { return fmt.Sprintf("http://127.0.0.1:%d/", n.port) }

func (n *nginx) reloadCmd() []string {
	return []string{n.bin, "-p", n.dir, "-c", n.conf, "-s", "reload"}
}

var noKeepAlive = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// get asks through nginx and returns the port of the instance that answered.
func (n *nginx) get() (int, error) {
	resp, err := noKeepAlive.Get(n.url())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var w harness.Who
	if err := json.Unmarshal(body, &w); err != nil {
		return 0, fmt.Errorf("%v: %q", err, body)
	}
	return strconv.Atoi(w.Port)
}

// reachAll polls until requests through nginx have reached every port in want and, over the
// last round, no other.
func (n *nginx) reachAll(t *testing.T, want []int) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, fmt.Sprintf("nginx to reach exactly %v", want), func() bool {
		seen := map[int]bool{}
		for i := 0; i < 8*len(want); i++ {
			p, err := n.get()
			if err != nil || !slices.Contains(want, p) {
				return false
			}
			seen[p] = true
		}
		return len(seen) == len(want)
	})
}

// The nginx-upstream hook keeps a real nginx pointed at a 4-instance cluster, and a graceful
// reload onto new ports under a steady load fails no request.
func TestNginxUpstreamFollowsAReloadWithoutFailedRequests(t *testing.T) {
	h := harness.NewHome(t)
	mustBeFree(t, append(harness.Seq(8000, 4), harness.Seq(8100, 4)...)...)
	upstreams := filepath.Join(t.TempDir(), "upstreams.conf")
	// The plugin writes the file on Configure (every upstream down while nothing runs), so
	// nginx can include it from the start.
	cfg, _ := json.Marshal(map[string]any{
		"output": upstreams, "upstreams": map[string]string{"web": "web_backend"},
	})
	h.OK("plugin", "add", "nginx-upstream", nginxUpstream, "--config", string(cfg))
	if _, err := os.Stat(upstreams); err != nil {
		t.Fatalf("the plugin did not write %s on configure: %v", upstreams, err)
	}
	n := startNginx(t, upstreams)
	// Now that nginx runs, register the plugin with its reload command.
	cfg, _ = json.Marshal(map[string]any{
		"output": upstreams, "upstreams": map[string]string{"web": "web_backend"}, "reload": n.reloadCmd(),
	})
	h.OK("plugin", "remove", "nginx-upstream")
	h.OK("plugin", "add", "nginx-upstream", nginxUpstream, "--config", string(cfg))

	h.OK("start", harness.Echo, "--name", "web", "-i", "4", "--port", "8000-8003")
	h.WaitList(wait, "web online", harness.AllOnline("web", 4))
	n.reachAll(t, harness.Seq(8000, 4))

	// Steady load through nginx while the app moves to 8100-8103.
	ctx, cancel := context.WithCancel(context.Background())
	var total, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, err := n.get()
				total.Add(1)
				if err != nil {
					failed.Add(1)
					failMu.Lock()
					failures = append(failures, err.Error())
					failMu.Unlock()
				}
			}
		}()
	}
	h.OK("reload", "web", "--port", "8100-8103")
	n.reachAll(t, harness.Seq(8100, 4))
	cancel()
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed during the reload; first: %v", failed.Load(), total.Load(), failures[:min(3, len(failures))])
	}
	if total.Load() < 50 {
		t.Errorf("only %d requests were made during the reload: the load was not steady", total.Load())
	}
	b, _ := os.ReadFile(upstreams)
	for _, p := range harness.Seq(8100, 4) {
		if !strings.Contains(string(b), fmt.Sprintf("127.0.0.1:%d", p)) {
			t.Errorf("upstreams file lacks port %d:\n%s", p, b)
		}
	}
	if strings.Contains(string(b), "127.0.0.1:8000") {
		t.Errorf("upstreams file still has the old ports:\n%s", b)
	}
	t.Logf("%d requests through nginx during the reload, %d failed", total.Load(), failed.Load())
}
