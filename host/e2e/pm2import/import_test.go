package pm2import

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// pm2 is a PM2 7 daemon of the test's own, in a scratch PM2_HOME. Its processes carry the
// test home's PMDAEMON_HOME, so the harness would find any left behind.
type pm2 struct {
	t    *testing.T
	bin  string
	home string
	env  []string
}

// startPM2 finds PM2 (test.sh and .ci/run install it from npm) and registers `pm2 kill` for
// the end of the test, before the harness looks for leftover processes.
func startPM2(t *testing.T, h *harness.Home) *pm2 {
	t.Helper()
	bin, err := exec.LookPath("pm2")
	if err != nil {
		t.Fatalf("this test drives a real PM2: install it with `npm install -g pm2@7` (%v)", err)
	}
	home := filepath.Join(t.TempDir(), "pm2")
	p := &pm2{t: t, bin: bin, home: home,
		env: append(os.Environ(), "PM2_HOME="+home, "PMDAEMON_HOME="+h.Dir)}
	t.Cleanup(func() { p.run("kill") })
	return p
}

func (p *pm2) run(args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Env = p.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		p.t.Fatalf("pm2 %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// answers reports whether something accepts on 127.0.0.1:port.
func answers(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// The way a PM2 user moves: apps run under PM2 (a Node cluster on one port, a Go binary with
// increment_var, a command line), `pm2 save`, `pm2 kill`; `pmdaemon import pm2` makes a file
// of PM2's dump, `pmdaemon run` of it brings the same apps up on the same ports with their env.
func TestImportPM2RunsTheApps(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	p := startPM2(t, h)
	b := harness.FreePorts(t, 4)
	dir := t.TempDir()
	node := filepath.Join(harness.ModuleRoot(), "examples", "apps", "node-http", "server.js")
	eco := filepath.Join(dir, "ecosystem.config.js")
	js := fmt.Sprintf(`module.exports = { apps: [
  { name: 'front', script: %q, exec_mode: 'cluster', instances: 2, namespace: 'shop', env: { PORT: %d } },
  { name: 'shards', script: %q, interpreter: 'none', instances: 2, increment_var: 'PORT',
    env: { PORT: %d, GREETING: 'hello from pm2' } },
  { name: 'files', script: 'python3 -m http.server %d --bind 127.0.0.1' },
]};
`, node, b, harness.Echo, b+1, b+3)
	if err := os.WriteFile(eco, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}

	p.run("start", eco)
	harness.Eventually(t, 60*time.Second, "PM2's apps answering", func() bool {
		return answers(b) && answers(b+1) && answers(b+2) && answers(b+3)
	})
	jlist := filepath.Join(dir, "jlist.json")
	if err := os.WriteFile(jlist, []byte(p.run("jlist")), 0o644); err != nil {
		t.Fatal(err)
	}
	p.run("save")
	p.run("kill")
	harness.Eventually(t, 30*time.Second, "PM2's apps gone from their ports", func() bool {
		return !answers(b) && !answers(b+1) && !answers(b+2) && !answers(b+3)
	})

	// The dump is found where PM2 keeps it, through PM2_HOME.
	h.Env = append(h.Env, "PM2_HOME="+p.home)
	out := filepath.Join(dir, "imported.json")
	r := h.Run("import", "pm2", "-o", out)
	if r.Code != 0 {
		t.Fatalf("import pm2: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, want := range []string{
		"[pmdaemon] import: dropped PM2's state of each process",
		"[pmdaemon] import: dropped env PM2 set itself (its home and mode, process ids, a variable named after each app): PM2_HOME",
		"[pmdaemon] import: dropped env inherited from the shell that ran pm2",
		"[pmdaemon] import: wrote 3 apps (front, shards, files) to " + out,
	} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr has no %q:\n%s", want, r.Stderr)
		}
	}
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// `pm2 jlist` output, taken while the apps ran, makes the same file.
	if fromJlist := h.OK("import", "pm2", jlist); fromJlist != string(file) {
		t.Errorf("jlist and dump.pm2 make different files:\n%s\n---\n%s", fromJlist, file)
	}
	// and so does the same output piped in: `pm2 jlist | pmdaemon import pm2 -`
	piped := exec.Command(harness.Bin, "import", "pm2", "-")
	piped.Env = append(append(os.Environ(), "PMDAEMON_HOME="+h.Dir), h.Env...) // the shell h.Run gives
	if piped.Stdin, err = os.Open(jlist); err != nil {
		t.Fatal(err)
	}
	if fromStdin, err := piped.Output(); err != nil || string(fromStdin) != string(file) {
		t.Errorf("import pm2 - of jlist on stdin (%v) made another file:\n%s", err, fromStdin)
	}
	// An existing file is never replaced unless asked.
	r = h.Run("import", "pm2", "-o", out)
	if r.Code != 1 || strings.Contains(r.Stderr, "dropped") {
		t.Errorf("import onto an existing file: exit %d, want 1 and only the error\n%s", r.Code, r.Stderr)
	}
	harness.ErrLike(t, r.Stderr, out+" exists; pass --force to replace it")
	h.OK("import", "pm2", "-o", out, "--force")

	h.OK("run", out)
	rows := h.WaitList(60*time.Second, "the imported apps online", func(rows []api.Instance) bool {
		return harness.AllOnline("front", 2)(rows) && harness.AllOnline("shards", 2)(rows) && harness.AllOnline("files", 1)(rows)
	})
	// The Node cluster shares its one port, as under PM2: both instances answer on it.
	pids := harness.PidsOf(rows, "front")
	seen := map[int]bool{}
	harness.Eventually(t, 20*time.Second, "both front instances answering on the shared port", func() bool {
		if w, err := harness.GetWho(b); err == nil && w.App == "front" {
			seen[w.Pid] = true
		}
		return seen[pids[0]] && seen[pids[1]]
	})
	for i := range 2 {
		harness.WaitWho(t, b+1+i, "shards", i)
		if got, err := harness.EchoEnv(b+1+i, "GREETING"); err != nil || got != "hello from pm2" {
			t.Errorf("shards %d: GREETING = %q (%v), want the env PM2 had", i, got, err)
		}
	}
	harness.Eventually(t, 20*time.Second, "the command line app answering", func() bool {
		_, err := harness.Get(fmt.Sprintf("http://127.0.0.1:%d/", b+3))
		return err == nil
	})
	for _, row := range harness.Rows(rows, "front") {
		if row.Namespace != "shop" {
			t.Errorf("front[%d] is in namespace %q, want PM2's shop", row.Index, row.Namespace)
		}
	}
}

// What cannot be read is an error naming the file; nothing is written.
func TestImportPM2Refuses(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	h.Env = append(h.Env, "PM2_HOME="+filepath.Join(dir, "pm2home"))
	missing := filepath.Join(dir, "nope.pm2")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a path that does not exist", []string{missing}, missing + " does not exist: give PM2's dump.pm2"},
		{"the default with no PM2 there", nil, filepath.Join(dir, "pm2home", "dump.pm2") + " does not exist"},
		{"not JSON", []string{write("text.pm2", "PM2 error\n")}, "text.pm2 is not PM2's process list: line 1"},
		{"an ecosystem file", []string{write("eco.json", `{"apps": [{"name": "a", "script": "a.js"}]}`)}, "eco.json is not PM2's process list: want a JSON array"},
		{"an empty dump", []string{write("empty.pm2", "[]")}, "empty.pm2 lists no processes"},
		{"a directory", []string{dir}, dir + " is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+strings.ReplaceAll(tt.name, " ", "-")+".json")
			args := append([]string{"import", "pm2"}, tt.args...)
			r := h.Run(append(args, "-o", out)...)
			if r.Code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
			harness.ErrLike(t, r.Stderr, tt.want)
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was written", out)
			}
		})
	}
}
