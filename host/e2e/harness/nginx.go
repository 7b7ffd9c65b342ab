package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Nginx is a real nginx in the foreground, with everything in one temp directory, proxying
// its port to the upstream web_backend that the file upstreams defines.
type Nginx struct {
	dir, conf string
	port      int
	cmd       *exec.Cmd
	bin       string
}

func StartNginx(t *testing.T, upstreams string) *Nginx {
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
	n := &Nginx{dir: t.TempDir(), port: FreePorts(t, 1), bin: bin}
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
	Eventually(t, 20*time.Second, "nginx to listen", func() bool {
		resp, err := http.Get(n.URL())
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return n
}

// PidFile is the file nginx writes its master's pid to (its "pid" directive).
func (n *Nginx) PidFile() string { return filepath.Join(n.dir, "nginx.pid") }

// URL is nginx's address.
func (n *Nginx) URL() string { return fmt.Sprintf("http://127.0.0.1:%d/", n.port) }

// ReloadCmd is the command that makes nginx reload its configuration.
func (n *Nginx) ReloadCmd() []string {
	return []string{n.bin, "-p", n.dir, "-c", n.conf, "-s", "reload"}
}

var noKeepAlive = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// Get asks through nginx and returns the port of the instance that answered.
func (n *Nginx) Get() (int, error) {
	resp, err := noKeepAlive.Get(n.URL())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var w Who
	if err := json.Unmarshal(body, &w); err != nil {
		return 0, fmt.Errorf("%v: %q", err, body)
	}
	return strconv.Atoi(w.Port)
}

// ReachAll polls until requests through nginx have reached every port in want and, over the
// last round, no other.
func (n *Nginx) ReachAll(t *testing.T, want []int) {
	t.Helper()
	Eventually(t, 30*time.Second, fmt.Sprintf("nginx to reach exactly %v", want), func() bool {
		seen := map[int]bool{}
		for i := 0; i < 8*len(want); i++ {
			p, err := n.Get()
			if err != nil || !contains(want, p) {
				return false
			}
			seen[p] = true
		}
		return len(seen) == len(want)
	})
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// LoadResult is what a steady load through nginx saw.
type LoadResult struct {
	Total, Failed int64
	Failures      []string // the first few
}

// Load sends requests through nginx from workers goroutines until the returned stop is called.
func (n *Nginx) Load(workers int) (stop func() LoadResult) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var res LoadResult
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, err := n.Get()
				mu.Lock()
				res.Total++
				if err != nil {
					res.Failed++
					if len(res.Failures) < 5 {
						res.Failures = append(res.Failures, err.Error())
					}
				}
				mu.Unlock()
			}
		}()
	}
	return func() LoadResult {
		cancel()
		wg.Wait()
		return res
	}
}

// ErrorLog is nginx's error log so far ("" when there is none), for failure messages.
func (n *Nginx) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(b)
}
