package depends

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// server.js listens on PORT at once, then, 1.5s later, writes sent-<instance> and calls
// process.send('ready'), as a PM2 app that warms up after listening does.
const serverJS = `const http = require("http"), fs = require("fs");
http.createServer((req, res) => res.end("ok " + process.env.NODE_APP_INSTANCE)).listen(Number(process.env.PORT), "127.0.0.1", () => {
  setTimeout(() => {
    fs.writeFileSync("sent-" + process.env.NODE_APP_INSTANCE, "");
    process.send("ready");
  }, 1500);
});
`

// A PM2 ecosystem.config.js with wait_ready: run answers only once every instance has called
// process.send('ready') (its port answered well before), each instance writing a file just
// before it sends. An app without wait_ready has process.send too, as under PM2, and calling
// it does not throw.
func TestWaitReadyIsProcessSendReady(t *testing.T) {
	t.Parallel()
	needNode(t)
	h := harness.NewHome(t)
	dir := t.TempDir()
	base := harness.FreePorts(t, 2)
	write(t, dir, "server.js", serverJS)
	write(t, dir, "other.js", `console.log("send is a " + typeof process.send);
process.send("ready");
console.log("sent");
setInterval(() => {}, 1 << 30);
`)
	path := write(t, dir, "ecosystem.config.js", fmt.Sprintf(`module.exports = {
  apps: [
    { name: "web", script: "server.js", instances: 2, increment_var: "PORT", env: { PORT: %d },
      wait_ready: true, listen_timeout: 30000 },
    { name: "other", script: "other.js" },
  ],
};
`, base))
	out := h.OK("run", path)
	for i := range 2 {
		if !exists(filepath.Join(dir, fmt.Sprintf("sent-%d", i))) {
			t.Errorf("run answered before instance %d of web called process.send('ready'):\n%s", i, out)
		}
		if body, err := harness.Get(fmt.Sprintf("http://127.0.0.1:%d/", base+i)); err != nil || body != fmt.Sprintf("ok %d", i) {
			t.Errorf("port %d: %q, %v", base+i, body, err)
		}
	}
	logPath := row(t, h.List(), "other").OutLog
	harness.Eventually(t, 20*time.Second, "other's output", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "sent")
	})
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "send is a function\nsent\n") {
		t.Errorf("other's output %q: process.send is missing or threw", b)
	}
	rows := h.List()
	for _, r := range rows {
		if r.Status != "online" || r.Restarts != 0 {
			t.Errorf("%s[%d]: %s, %d restarts (%s)", r.Name, r.Index, r.Status, r.Restarts, r.Reason)
		}
	}
}

// An app with wait_ready that never calls process.send('ready') fails run after listen_timeout
// with an error saying what it waited for; it keeps running, as under PM2, and the file's
// later app is started all the same.
func TestWaitReadyWithoutTheCallTimesOut(t *testing.T) {
	t.Parallel()
	needNode(t)
	h := harness.NewHome(t)
	dir := t.TempDir()
	port := harness.FreePorts(t, 1)
	write(t, dir, "silent.js", `require("http").createServer((q, s) => s.end("ok")).listen(Number(process.env.PORT), "127.0.0.1");`)
	path := write(t, dir, "ecosystem.json", fmt.Sprintf(`{"apps": [
  {"name": "silent", "script": "silent.js", "port": %d, "wait_ready": true, "listen_timeout": 1000},
  {"name": "later", "script": %s, "autorestart": false}
]}`, port, js("sleep 600")))
	r := h.Run("run", path)
	if r.Code == 0 {
		t.Fatalf("run succeeded although silent never called process.send('ready'):\n%s", r.Stdout)
	}
	harness.ErrLike(t, r.Stderr, "ecosystem.json: apps[0] (silent)",
		"instance 0 of silent did not call process.send('ready') (nor send READY=1 to NOTIFY_SOCKET) within 1s",
		"its instances keep running", "(started: later)")
	rows := h.WaitList(20*time.Second, "both online", func(rows []api.Instance) bool {
		return harness.AllOnline("silent", 1)(rows) && harness.AllOnline("later", 1)(rows)
	})
	if s := row(t, rows, "silent"); s.Restarts != 0 {
		t.Errorf("silent was restarted: %+v", s)
	}
}

// shutdown_with_message: stop sends 'shutdown' over IPC (not SIGTERM), which the app handles.
func TestShutdownWithMessage(t *testing.T) {
	t.Parallel()
	needNode(t)
	h := harness.NewHome(t)
	dir := t.TempDir()
	write(t, dir, "graceful.js", `const fs = require("fs");
process.on("message", (m) => { if (m === "shutdown") { fs.writeFileSync("told", "message"); process.exit(0); } });
process.on("SIGTERM", () => { fs.writeFileSync("told", "SIGTERM"); process.exit(0); });
process.on("SIGINT", () => { fs.writeFileSync("told", "SIGINT"); process.exit(0); });
process.send("ready");
`)
	path := write(t, dir, "ecosystem.json", `{"apps": [
  {"name": "graceful", "script": "graceful.js", "wait_ready": true, "shutdown_with_message": true, "kill_timeout": 20000}
]}`)
	h.OK("run", path)
	h.OK("stop", "graceful")
	if b, err := os.ReadFile(filepath.Join(dir, "told")); err != nil || string(b) != "message" {
		t.Errorf("the app was told %q (%v); want the shutdown message", b, err)
	}
}
