package lifecycle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// PM2 users write command lines for a shell; pmdaemon runs those through /bin/sh -c.

// `python3 -m http.server $PORT` (the line PM2 users write) gets the instance's port, and
// the instance's pid is python's own: the simple command is exec'd by the shell.
func TestShellCommandGetsPort(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	port := harness.FreePorts(t, 1)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("served from cwd\n"), 0o644)
	h.OK("start", "python3 -m http.server --bind 127.0.0.1 $PORT", "--name", "pyweb", "--port", strconv.Itoa(port), "--cwd", dir)
	rows := h.WaitList(15*time.Second, "pyweb online", harness.AllOnline("pyweb", 1))
	var body string
	harness.Eventually(t, 15*time.Second, fmt.Sprintf("python answering on port %d", port), func() bool {
		b, err := harness.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
		body = b
		return err == nil
	})
	if body != "served from cwd\n" {
		t.Errorf("GET /index.html = %q", body)
	}
	pid := harness.Rows(rows, "pyweb")[0].Pid
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if args := strings.Split(string(cmdline), "\x00"); !strings.Contains(string(cmdline), "http.server") || strings.HasSuffix(args[0], "sh") {
		t.Errorf("the instance's pid %d runs %q, want python itself (exec)", pid, args)
	}
}

// A compound command runs every part; the shell is then the instance's main process, and
// stopping the app ends all of it.
func TestShellCompoundCommand(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	h.OK("start", "echo one > a.txt && echo two > b.txt && sleep 1000", "--name", "both", "--cwd", dir)
	rows := h.WaitList(10*time.Second, "both online", harness.AllOnline("both", 1))
	harness.Eventually(t, 10*time.Second, "a.txt and b.txt written", func() bool {
		a, errA := os.ReadFile(filepath.Join(dir, "a.txt"))
		b, errB := os.ReadFile(filepath.Join(dir, "b.txt"))
		return errA == nil && errB == nil && string(a) == "one\n" && string(b) == "two\n"
	})
	pid := harness.Rows(rows, "both")[0].Pid
	if c, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); strings.TrimSpace(string(c)) != "sh" {
		t.Errorf("main process of a compound command is %q, want sh", c)
	}
	h.OK("stop", "both")
	harness.Eventually(t, 10*time.Second, "no process of both left", func() bool { return len(h.AppProcs()) == 0 })
}

// env_file values reach the app, env overrides them, and a bad file is refused with its
// path and line.
func TestEnvFile(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "prod.env"), []byte("# settings\nFROM_FILE=file value\nBOTH=file\nexport QUOTED=\"a b\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.env"), []byte("OK=1\nNOT-A-NAME=2\n"), 0o644)
	port := harness.FreePorts(t, 1)
	good := writeEcoIn(t, dir, "good.json", map[string]any{
		"name": "envf", "script": harness.Echo, "port": port, "env_file": "prod.env",
		"env": map[string]string{"BOTH": "env", "HOST": "127.0.0.1"},
	})
	h.OK("run", good)
	h.WaitList(15*time.Second, "envf online", harness.AllOnline("envf", 1))
	harness.WaitWho(t, port, "envf", 0)
	for _, tc := range []struct{ name, want string }{
		{"FROM_FILE", "file value"}, {"BOTH", "env"}, {"QUOTED", "a b"},
	} {
		if got, err := harness.EchoEnv(port, tc.name); err != nil || got != tc.want {
			t.Errorf("%s = %q (%v), want %q", tc.name, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ file, want string }{
		{"bad.env", filepath.Join(dir, "bad.env") + ":2: unexpected character \"-\" in variable name"},
		{"missing.env", filepath.Join(dir, "missing.env") + ": no such file or directory"},
	} {
		eco := writeEcoIn(t, dir, "eco-"+tc.file+".json", map[string]any{"name": "bad", "script": "sleep 100", "env_file": tc.file})
		harness.ErrLike(t, h.Fail("run", eco), `app "bad": env_file: `+tc.want)
	}
}

// cron_restart restarts the app at its times through the daemon's restart: counted, with the
// reason shown.
func TestCronRestart(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 1000", "--name", "nightly", "--cron-restart", "@every 2s")
	first := harness.Rows(h.WaitList(10*time.Second, "nightly online", harness.AllOnline("nightly", 1)), "nightly")[0]
	rows := h.WaitList(15*time.Second, "nightly restarted twice by cron", func(rows []api.Instance) bool {
		rs := harness.Rows(rows, "nightly")
		return len(rs) == 1 && rs[0].Restarts >= 2 && rs[0].Status == "online" && rs[0].Pid != first.Pid
	})
	r := harness.Rows(rows, "nightly")[0]
	if r.Reason != "cron_restart @every 2s" {
		t.Errorf("reason %q, want %q", r.Reason, "cron_restart @every 2s")
	}
	if harness.Alive(first.Pid) {
		t.Errorf("the first process %d still runs", first.Pid)
	}
	harness.ErrLike(t, h.Fail("start", "sleep 1000", "--name", "bad", "--cron-restart", "0 25 * * *"),
		`cron_restart "0 25 * * *" is not a cron expression`)
}

// An exit code in stop_exit_codes leaves the instance stopped; another is restarted.
func TestStopExitCodes(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name       string
		code       int
		wantStatus string
		restarted  bool
	}{
		{"done", 0, "stopped", false},
		{"termed", 143, "stopped", false},
		{"failed", 3, "online", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The first run exits with the code; a restarted one (marker present) stays up.
			marker := filepath.Join(dir, tc.name+".ran")
			script := harness.WriteScript(t, dir, tc.name+".sh", fmt.Sprintf(
				"#!/bin/sh\nif [ -e %s ]; then exec sleep 1000; fi\ntouch %s\nsleep 1.2\n[ %d = 143 ] && kill -TERM $$\nexit %d\n",
				marker, marker, tc.code, tc.code))
			eco := writeEcoIn(t, dir, tc.name+".json", map[string]any{"name": tc.name, "script": script, "stop_exit_codes": []int{0, 143}})
			h.OK("run", eco)
			rows := h.WaitList(15*time.Second, tc.name+" "+tc.wantStatus+" after its first exit", func(rows []api.Instance) bool {
				rs := harness.Rows(rows, tc.name)
				return len(rs) == 1 && rs[0].Status == tc.wantStatus && (tc.restarted == (rs[0].Restarts > 0))
			})
			r := harness.Rows(rows, tc.name)[0]
			if !tc.restarted {
				if r.Restarts != 0 || !strings.Contains(r.Reason, fmt.Sprintf("exited with code %d, one of stop_exit_codes", tc.code)) {
					t.Errorf("row %+v: want no restart and the stop_exit_codes reason", r)
				}
				harness.HoldsFor(t, h.API(), 1500*time.Millisecond, tc.name+" stays stopped", func(rows []api.Instance) string {
					if rs := harness.Rows(rows, tc.name); rs[0].Status != "stopped" || rs[0].Restarts != 0 {
						return fmt.Sprintf("%+v", rs[0])
					}
					return ""
				})
			}
		})
	}
}

// `start --watch`: a burst of changes under cwd restarts the app once (debounced); a change
// in node_modules restarts nothing.
func TestWatchRestarts(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "node_modules", "dep"), 0o755)
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	h.OK("start", "sleep 1000", "--name", "watched", "--watch", "--cwd", dir)
	h.WaitList(10*time.Second, "watched online", harness.AllOnline("watched", 1))
	restarts := func() int {
		rs := harness.Rows(h.APIList(), "watched")
		if len(rs) != 1 {
			t.Fatalf("rows %+v", rs)
		}
		return rs[0].Restarts
	}
	// The daemon sets the watcher up within its watch tick: touch, a write every 3s, until a
	// first restart, then make sure nothing more is pending.
	primed := false
	for end := time.Now().Add(15 * time.Second); !primed && time.Now().Before(end); {
		os.WriteFile(filepath.Join(dir, "prime.txt"), []byte(time.Now().String()), 0o644)
		for wait := time.Now().Add(3 * time.Second); !primed && time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
			primed = restarts() > 0
		}
	}
	if !primed {
		t.Fatalf("no restart after writes under the watched cwd for 15s")
	}
	settle := func(what string, want int) {
		t.Helper()
		h.WaitList(15*time.Second, what, func(rows []api.Instance) bool {
			rs := harness.Rows(rows, "watched")
			return len(rs) == 1 && rs[0].Restarts >= want && rs[0].Status == "online"
		})
		// The default watch_delay is 1s: 2.5s of quiet shows no second restart follows.
		harness.HoldsFor(t, h.API(), 2500*time.Millisecond, what+", once", func(rows []api.Instance) string {
			if r := harness.Rows(rows, "watched")[0]; r.Restarts != want {
				return fmt.Sprintf("restarts %d, want %d", r.Restarts, want)
			}
			return ""
		})
		if t.Failed() {
			t.FailNow()
		}
	}
	// Priming may have cost more than one restart on a loaded machine (a write every 3s while
	// the first restart was slow to come): wait for the count to hold still, whatever it is.
	base := restarts()
	for quiet := time.Now(); time.Since(quiet) < 2500*time.Millisecond; time.Sleep(100 * time.Millisecond) {
		if n := restarts(); n != base {
			base, quiet = n, time.Now()
		}
	}
	settle("the priming restarts over", base)
	for i := range 5 {
		os.WriteFile(filepath.Join(dir, "src", fmt.Sprintf("f%d.js", i)), []byte("x"), 0o644)
	}
	settle("one restart for a burst of five writes", base+1)
	r := harness.Rows(h.APIList(), "watched")[0]
	if !strings.HasPrefix(r.Reason, "watch: src/f") {
		t.Errorf("reason %q, want watch: src/f... changed", r.Reason)
	}
	os.WriteFile(filepath.Join(dir, "node_modules", "dep", "index.js"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(dir, "node_modules", "new", "lib"), 0o755)
	harness.HoldsFor(t, h.API(), 2500*time.Millisecond, "node_modules changes restart nothing", func(rows []api.Instance) string {
		if r := harness.Rows(rows, "watched")[0]; r.Restarts != base+1 {
			return fmt.Sprintf("restarts %d, want %d", r.Restarts, base+1)
		}
		return ""
	})
	harness.ErrLike(t, h.Fail("start", "sleep 1000", "--name", "nowhere", "--watch=src,lib", "--cwd", dir),
		`app "nowhere": watch path `+filepath.Join(dir, "lib")+": no such file or directory")
}

// writeEcoIn writes app as a JSON ecosystem file dir/name.
func writeEcoIn(t *testing.T, dir, name string, app map[string]any) string {
	t.Helper()
	b, err := json.Marshal(app)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
