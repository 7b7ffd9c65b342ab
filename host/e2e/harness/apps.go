package harness

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// Who is the echo app's answer to GET /.
type Who struct {
	App      string `json:"app"`
	Instance string `json:"instance"`
	Port     string `json:"port"`
	Pid      int    `json:"pid"`
}

// GetWho asks the echo app on port who it is.
func GetWho(port int) (Who, error) {
	var w Who
	body, err := Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return w, err
	}
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		return w, fmt.Errorf("GET / on %d: %v: %q", port, err, body)
	}
	return w, nil
}

// WaitWho waits until the echo app of app/instance answers on port and returns its answer.
func WaitWho(t testing.TB, port int, app string, instance int) Who {
	t.Helper()
	var w Who
	var last string
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		w, err = GetWho(port)
		if err == nil && w.App == app && w.Instance == strconv.Itoa(instance) && w.Port == strconv.Itoa(port) {
			return w
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("answered %+v", w)
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %d: want %s instance %d answering; last: %s", port, app, instance, last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// PortsOf returns the ports of app name's rows, by instance index (0 for a row without one).
func PortsOf(rows []api.Instance, name string) []int {
	rs := Rows(rows, name)
	out := make([]int, len(rs))
	for _, r := range rs {
		if r.Index >= 0 && r.Index < len(out) && r.Port != nil {
			out[r.Index] = *r.Port
		}
	}
	return out
}

// PidsOf returns the pids of app name's rows, by instance index.
func PidsOf(rows []api.Instance, name string) []int {
	rs := Rows(rows, name)
	out := make([]int, len(rs))
	for _, r := range rs {
		if r.Index >= 0 && r.Index < len(out) {
			out[r.Index] = r.Pid
		}
	}
	return out
}

// DaemonPid reads $PMDAEMON_HOME/daemon.pid.
func (h *Home) DaemonPid() int {
	h.T.Helper()
	b, err := os.ReadFile(filepath.Join(h.Dir, "daemon.pid"))
	if err != nil {
		h.T.Fatalf("reading daemon.pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		h.T.Fatalf("daemon.pid: %v", err)
	}
	return pid
}

// DaemonProcs lists this home's live processes whose command line is `<Daemon> daemon` (a
// `pmdaemon daemon` becomes that when it execs its daemon).
func (h *Home) DaemonProcs() []int {
	want := Daemon + "\x00daemon\x00"
	var out []int
	for _, p := range h.Processes() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
		if err == nil && string(b) == want {
			out = append(out, p)
		}
	}
	return out
}

// AppProcs lists this home's live processes that are not its daemon.
func (h *Home) AppProcs() []int {
	want := Daemon + "\x00daemon\x00"
	var out []int
	for _, p := range h.Processes() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
		if err == nil && string(b) == want {
			continue
		}
		out = append(out, p)
	}
	return out
}

// Sigkill sends SIGKILL to pid.
func Sigkill(t testing.TB, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
}

// ErrLike checks the CLI's error contract: stderr starts with "Error: ", mentions every want,
// and is not a crash.
func ErrLike(t testing.TB, stderr string, want ...string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "Error: ") {
		t.Errorf("stderr does not start with \"Error: \": %q", stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q does not mention %q", stderr, w)
		}
	}
	for _, bad := range []string{"panic", "goroutine "} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr looks like a crash (%q): %q", bad, stderr)
		}
	}
}

// Seq returns a, a+1, ..., a+n-1.
func Seq(a, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = a + i
	}
	return out
}

// WriteScript writes an executable script body into dir/name and returns its path.
func WriteScript(t testing.TB, dir, name, body string) string {
	t.Helper()
	return writeMode(t, dir, name, body, 0o755)
}

// WriteFile writes content to dir/name (directories made as needed) and returns its path:
// ecosystem files, and programs an interpreter reads.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	return writeMode(t, dir, name, content, 0o644)
}

// JSON renders v as JSON, for paths and values put into ecosystem files.
func JSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func writeMode(t testing.TB, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// WaitDead waits until none of pids is a live process.
func WaitDead(t testing.TB, timeout time.Duration, what string, pids ...int) {
	t.Helper()
	Eventually(t, timeout, what, func() bool {
		for _, p := range pids {
			if Alive(p) {
				return false
			}
		}
		return true
	})
}

// ByID indexes rows by instance id.
func ByID(rows []api.Instance) map[int]api.Instance {
	m := map[int]api.Instance{}
	for _, r := range rows {
		m[r.ID] = r
	}
	return m
}

// PortRange is the port spec lo-hi.
func PortRange(lo, hi int) string { return fmt.Sprintf("%d-%d", lo, hi) }

// AutoRange is the port spec auto:lo-hi.
func AutoRange(lo, hi int) string { return "auto:" + PortRange(lo, hi) }

// EchoEnv asks the echo app on port for the value of its environment variable name.
func EchoEnv(port int, name string) (string, error) {
	return Get(fmt.Sprintf("http://127.0.0.1:%d/env?name=%s", port, url.QueryEscape(name)))
}
