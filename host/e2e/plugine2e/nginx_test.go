package plugine2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// The nginx-upstream hook keeps a real nginx pointed at a 4-instance cluster, and a graceful
// reload onto new ports under a steady load fails no request.
func TestNginxUpstreamFollowsAReloadWithoutFailedRequests(t *testing.T) {
	// The directory first: cleanups run last-registered first, so the daemon (and with it the
	// plugin, which may still be writing the file) is gone before the directory is removed.
	upstreams := filepath.Join(t.TempDir(), "upstreams.conf")
	h := harness.NewHome(t)
	mustBeFree(t, append(harness.Seq(8000, 4), harness.Seq(8100, 4)...)...)
	// The plugin writes the file on Configure (every upstream down while nothing runs), so
	// nginx can include it from the start.
	cfg, _ := json.Marshal(map[string]any{
		"output": upstreams, "upstreams": map[string]string{"web": "web_backend"},
	})
	h.OK("plugin", "add", "nginx-upstream", nginxUpstream, "--config", string(cfg))
	if _, err := os.Stat(upstreams); err != nil {
		t.Fatalf("the plugin did not write %s on configure: %v", upstreams, err)
	}
	n := harness.StartNginx(t, upstreams)
	// Now that nginx runs, register the plugin with its reload command.
	cfg, _ = json.Marshal(map[string]any{
		"output": upstreams, "upstreams": map[string]string{"web": "web_backend"}, "reload": n.ReloadCmd(),
		"pid_file": n.PidFile(),
	})
	h.OK("plugin", "remove", "nginx-upstream")
	h.OK("plugin", "add", "nginx-upstream", nginxUpstream, "--config", string(cfg), "--timeout", "5s")

	h.OK("start", harness.Echo, "--name", "web", "-i", "4", "--port", "8000-8003")
	h.WaitList(wait, "web online", harness.AllOnline("web", 4))
	n.ReachAll(t, harness.Seq(8000, 4))

	// Steady load through nginx while the app moves to 8100-8103.
	stop := n.Load(4)
	h.OK("reload", "web", "--port", "8100-8103")
	n.ReachAll(t, harness.Seq(8100, 4))
	res := stop()
	if res.Failed > 0 {
		t.Errorf("%d of %d requests failed during the reload; first: %v", res.Failed, res.Total, res.Failures)
	}
	if res.Total < 50 {
		t.Errorf("only %d requests were made during the reload: the load was not steady", res.Total)
	}
	// The hook hears of the old instances' stops after the reload has answered (it learnt of
	// the new ones before they stopped): the file loses the old ports soon after.
	harness.Eventually(t, wait, "the upstreams file to list 8100-8103 and nothing else", func() bool {
		b, _ := os.ReadFile(upstreams)
		for _, p := range harness.Seq(8100, 4) {
			if !strings.Contains(string(b), fmt.Sprintf("127.0.0.1:%d ", p)) {
				return false
			}
		}
		return !strings.Contains(string(b), "127.0.0.1:80")
	})
	// The hook waited for nginx every time: a wait that failed is only logged.
	for _, bad := range []string{"cannot wait for nginx", "from before the reload still run"} {
		if log := h.DaemonLog(); strings.Contains(log, bad) {
			t.Errorf("the daemon's log says the hook did not wait for nginx (%q):\n%s", bad, log)
		}
	}
	t.Logf("%d requests through nginx during the reload, %d failed", res.Total, res.Failed)
}
