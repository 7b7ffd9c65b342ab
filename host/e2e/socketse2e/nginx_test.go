package socketse2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// steady is how long wrk's load runs before the reload and after nginx has switched: load,
// not synchronisation.
const steady = time.Second

// nginx with the nginx-upstream plugin follows `reload web --port NEWRANGE` under wrk's load
// with no failed request, with and without a health check, for apps that bind their ports
// themselves and for socket apps. The app takes 1.5 s to listen (START_DELAY), longer than
// min_uptime: the new instances are ready, and nginx is switched to them, only once their
// ports accept connections, not once they have merely lived a while.
func TestNginxFollowsReloadUnderWrk(t *testing.T) {
	tests := []struct {
		name   string
		socket bool
		health bool
	}{
		{"plain", false, false},
		{"plain with health check", false, true},
		{"socket", true, false},
		{"socket with health check", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := harness.NewHome(t)
			upstreams := filepath.Join(t.TempDir(), "upstreams.conf")
			addPlugin := func(reload []string, pidFile string) {
				cfg := map[string]any{"output": upstreams, "upstreams": map[string]string{"web": "web_backend"}}
				if reload != nil {
					cfg["reload"], cfg["pid_file"] = reload, pidFile
				}
				b, _ := json.Marshal(cfg)
				h.OK("plugin", "add", "nginx-upstream", nginxUpstream, "--config", string(b), "--timeout", "5s")
			}
			// The plugin writes the file on configure, so nginx can include it from the start;
			// once nginx runs the plugin is added again with nginx's reload command.
			addPlugin(nil, "")
			n := harness.StartNginx(t, upstreams)
			h.OK("plugin", "remove", "nginx-upstream")
			addPlugin(n.ReloadCmd(), n.PidFile())

			const count = 4
			from, to := harness.FreePorts(t, count), harness.FreePorts(t, count)
			args := []string{"start", harness.Echo, "--name", "web", "-i", fmt.Sprint(count),
				"--port", harness.PortRange(from, from+count-1), "--env", "START_DELAY=1500ms"}
			if tc.socket {
				args = append(args, "--socket", "--bind", "127.0.0.1")
			}
			if tc.health {
				args = append(args, "--health-url", "http://127.0.0.1:{port}/health")
			}
			h.OK(args...)
			h.WaitOnline("web", count)
			n.ReachAll(t, harness.Seq(from, count))

			// A connection per request: nginx's own graceful reload (the plugin reloads it as the
			// upstreams change) closes idle keep-alive connections, and a client that sent its
			// next request at that moment reads EOF. Measured without pmdaemon: 5 `nginx -s
			// reload` under this wrk with keep-alive, one static upstream: 24 read errors.
			stop := harness.StartWrk(t, n.URL(), "-H", "Connection: close")
			time.Sleep(steady)
			timed(t, h, "reload", "web", "--port", harness.PortRange(to, to+count-1))
			n.ReachAll(t, harness.Seq(to, count))
			time.Sleep(steady)
			r := stop()
			t.Logf("%s: wrk made %d requests through nginx during the reload, %d non-2xx, %d socket errors",
				tc.name, r.Requests, r.Non2xx, r.SocketErrors)
			if r.Failed() > 0 || r.Requests < 100 {
				t.Errorf("want 0 failed requests of a steady load; wrk said:\n%s\nnginx error.log:\n%s\ndaemon.log:\n%s",
					r.Output, tail(n.ErrorLog(), 8), tail(h.DaemonLog(), 30))
			}
			// The old instances' stop events reach the hook after the reload answered.
			harness.Eventually(t, 30*time.Second, "the upstreams file without the old ports", func() bool {
				b, _ := os.ReadFile(upstreams)
				return !strings.Contains(string(b), fmt.Sprintf("127.0.0.1:%d ", from))
			})
			// The hook waited for nginx every time: a wait that failed is only logged.
			for _, bad := range []string{"cannot wait for nginx", "from before the reload still run"} {
				if log := h.DaemonLog(); strings.Contains(log, bad) {
					t.Errorf("the daemon's log says the hook did not wait for nginx (%q):\n%s", bad, tail(log, 30))
				}
			}
		})
	}
}
