package pm2compat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// pm2 is a PM2 daemon of the test's own, in a PM2_HOME of its own: the user's PM2 (if any)
// is never touched, and every process it starts carries that PM2_HOME, so the cleanup can
// tell what is left behind.
type pm2 struct {
	t    testing.TB
	bin  string
	home string
}

// newPM2 finds PM2 7 (test.sh installs it from npm) and arranges for its daemon and apps to
// be gone when the test ends.
func newPM2(t *testing.T) *pm2 {
	t.Helper()
	bin, err := exec.LookPath("pm2")
	if err != nil {
		t.Fatalf("this test compares pmdaemon with a real PM2 7: %v (test.sh installs it with npm install -g pm2@7)", err)
	}
	p := &pm2{t: t, bin: bin, home: t.TempDir()}
	if v := strings.TrimSpace(lastLine(p.run("", "--version"))); !strings.HasPrefix(v, "7.") {
		t.Fatalf("pm2 --version says %q; the comparison is with PM2 7", v)
	}
	t.Cleanup(func() {
		p.run("", "kill")
		// pm2 kill may answer while PM2's daemon and apps are still exiting: give them until
		// a deadline, then whatever still runs is left behind.
		deadline := time.Now().Add(10 * time.Second)
		for len(harness.ProcessesWithEnv("PM2_HOME="+p.home)) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		var left []int
		for _, pid := range harness.ProcessesWithEnv("PM2_HOME=" + p.home) {
			syscall.Kill(pid, syscall.SIGKILL)
			left = append(left, pid)
		}
		if len(left) > 0 {
			t.Errorf("PM2 left processes behind after pm2 kill: %v", left)
		}
	})
	return p
}

// run runs pm2 with args in dir and returns its output; a failure fails the test.
func (p *pm2) run(dir string, args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PM2_HOME="+p.home, "PM2_DISCRETE_MODE=true")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		p.t.Fatalf("pm2 %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// pm2Process is the part of a `pm2 jlist` row the comparison reads.
type pm2Process struct {
	Name   string `json:"name"`
	Pid    int    `json:"pid"`
	PM2Env struct {
		Status   string `json:"status"`
		Instance any    `json:"NODE_APP_INSTANCE"`
	} `json:"pm2_env"`
}

func (p *pm2) list() []pm2Process {
	p.t.Helper()
	out := p.run("", "jlist")
	// PM2 may print a banner or a warning before the JSON.
	start := strings.Index(out, "[")
	if start < 0 {
		p.t.Fatalf("pm2 jlist printed no JSON array:\n%s", out)
	}
	var rows []pm2Process
	if err := json.NewDecoder(strings.NewReader(out[start:])).Decode(&rows); err != nil {
		p.t.Fatalf("pm2 jlist: %v\n%s", err, out)
	}
	return rows
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// envOf waits for the environment the instance pid wrote to dir/envs/PID.json.
func envOf(t *testing.T, dir string, pid int) map[string]string {
	t.Helper()
	path := filepath.Join(dir, "envs", strconv.Itoa(pid)+".json")
	var data []byte
	harness.Eventually(t, 30*time.Second, "pid "+strconv.Itoa(pid)+" writes "+path, func() bool {
		var err error
		data, err = os.ReadFile(path)
		return err == nil
	})
	env := map[string]string{}
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return env
}

// stubServer is every JavaScript app of the corpus. It writes the environment it sees
// (process.env: PM2 sets parts of it inside the process, so /proc/PID/environ would not
// show them) to envs/PID.json under its working directory, then answers HTTP with its pid on
// the socket pmdaemon hands it (fd 3), else on $PORT (PM2's cluster mode shares that port
// among its workers), else idles. It is written with dynamic imports so that one text runs
// as CommonJS (.js, .cjs) and as an ES module (.mjs).
const stubServer = `Promise.all([import('node:http'), import('node:fs')]).then(([http, fs]) => {
  const envs = process.cwd() + '/envs';
  fs.mkdirSync(envs, { recursive: true });
  fs.writeFileSync(envs + '/.' + process.pid, JSON.stringify(process.env));
  fs.renameSync(envs + '/.' + process.pid, envs + '/' + process.pid + '.json');
  const srv = http.createServer((req, res) => res.end(JSON.stringify({ pid: process.pid })));
  if (process.env.LISTEN_FDS) srv.listen({ fd: 3 });
  else if (process.env.PORT) srv.listen(Number(process.env.PORT), '127.0.0.1');
  else setInterval(() => {}, 1 << 30);
});
`

// stubPython is the Python app of the corpus: it writes its environment as stubServer does,
// and idles.
const stubPython = `import json, os, time
envs = os.path.join(os.getcwd(), "envs")
os.makedirs(envs, exist_ok=True)
tmp = os.path.join(envs, "." + str(os.getpid()))
with open(tmp, "w") as f:
    json.dump(dict(os.environ), f)
os.rename(tmp, os.path.join(envs, str(os.getpid()) + ".json"))
while True:
    time.sleep(3600)
`

// served asks port who answers and returns the pid in the answer.
func served(port int) (int, error) {
	body, err := harness.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return 0, err
	}
	var who struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(body), &who); err != nil {
		return 0, fmt.Errorf("answer %q: %v", body, err)
	}
	return who.Pid, nil
}

// copyCorpusFile puts the corpus file into dir with stubs at the scripts it names.
func copyCorpusFile(t *testing.T, dir, file string, scripts []string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(harness.ModuleRoot(), "host/config/testdata/pm2", file))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts {
		body := stubServer
		if strings.HasSuffix(s, ".py") {
			body = stubPython
		}
		p := filepath.Join(dir, s)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return path
}
