// Package harness runs the real pmdaemon binary for end-to-end tests: it builds the binary and
// the demo apps once per test run, gives each test its own PMDAEMON_HOME, and after each test
// kills the daemon and fails the test if any process of that home is left behind.
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
)

var (
	// Bin is the built pmdaemon binary; Echo the demo HTTP app (examples/apps/echo).
	Bin, Echo string
	buildDir  string
)

// Main builds the binaries, runs the tests and removes the build. Use it from TestMain.
func Main(m *testing.M) int {
	var err error
	buildDir, err = os.MkdirTemp("", "pmd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(buildDir)
	root := moduleRoot()
	Bin = filepath.Join(buildDir, "pmdaemon")
	Echo = filepath.Join(buildDir, "echo")
	for out, pkg := range map[string]string{Bin: "./cmd/pmdaemon", Echo: "./examples/apps/echo"} {
		args := []string{"build", "-o", out}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, b)
			return 1
		}
	}
	return m.Run()
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Home is one test's PMDAEMON_HOME.
type Home struct {
	T   testing.TB
	Dir string
	Env []string // extra environment for every command
}

// NewHome makes a fresh home (short path: socket paths are limited to 108 bytes) and registers
// the cleanup that kills the daemon and checks for leftover processes.
func NewHome(t testing.TB) *Home {
	t.Helper()
	dir, err := os.MkdirTemp("", "pmd-")
	if err != nil {
		t.Fatal(err)
	}
	h := &Home{T: t, Dir: dir}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		exec.CommandContext(ctx, Bin, "kill").Run()
		// Anything still carrying this home in its environment is an orphan: report and kill it.
		if left := h.Processes(); len(left) > 0 {
			for _, p := range left {
				syscall.Kill(p, syscall.SIGKILL)
			}
			t.Errorf("processes left behind after the test: %v", left)
		}
		os.RemoveAll(dir)
	})
	return h
}

// Processes lists live (non-zombie) processes whose environment has this PMDAEMON_HOME.
func (h *Home) Processes() []int {
	needle := []byte("PMDAEMON_HOME=" + h.Dir + "\x00")
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(append(env, 0), needle) {
			continue
		}
		if Zombie(pid) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// Zombie reports whether pid is gone or a zombie.
func Zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

// Alive reports whether pid is a live process.
func Alive(pid int) bool { return pid > 0 && !Zombie(pid) }

// Result is one CLI run.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs pmdaemon with args in this home.
func (h *Home) Run(args ...string) Result {
	h.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Bin, args...)
	cmd.Env = append(append(os.Environ(), "PMDAEMON_HOME="+h.Dir), h.Env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.T.Fatalf("pmdaemon %v: %v", args, err)
	}
	return Result{out.String(), errb.String(), code}
}

// OK runs pmdaemon and fails the test unless it exits 0.
func (h *Home) OK(args ...string) string {
	h.T.Helper()
	r := h.Run(args...)
	if r.Code != 0 {
		h.T.Fatalf("pmdaemon %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// Fail runs pmdaemon, expects a non-zero exit, and returns stderr.
func (h *Home) Fail(args ...string) string {
	h.T.Helper()
	r := h.Run(args...)
	if r.Code == 0 {
		h.T.Fatalf("pmdaemon %s: expected failure, got exit 0\nstdout: %s", strings.Join(args, " "), r.Stdout)
	}
	return r.Stderr
}

// List returns `list --json`.
func (h *Home) List() []api.Instance {
	h.T.Helper()
	var rows []api.Instance
	out := h.OK("list", "--json")
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		h.T.Fatalf("list --json: %v\n%s", err, out)
	}
	return rows
}

// Info returns `info --json TARGET`.
func (h *Home) Info(target string) api.App {
	h.T.Helper()
	var a api.App
	out := h.OK("info", target, "--json")
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		h.T.Fatalf("info --json: %v\n%s", err, out)
	}
	return a
}

// Rows returns the rows of app name.
func Rows(rows []api.Instance, name string) []api.Instance {
	var out []api.Instance
	for _, r := range rows {
		if r.Name == name {
			out = append(out, r)
		}
	}
	return out
}

// WaitList polls `list --json` until cond holds or timeout passes (then it fails the test).
func (h *Home) WaitList(timeout time.Duration, what string, cond func([]api.Instance) bool) []api.Instance {
	h.T.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rows := h.List()
		if cond(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(rows, "", " ")
			h.T.Fatalf("timed out after %s waiting for %s; list:\n%s", timeout, what, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// AllOnline is a WaitList condition: app name has n instances, all online with a pid.
func AllOnline(name string, n int) func([]api.Instance) bool {
	return func(rows []api.Instance) bool {
		rs := Rows(rows, name)
		if len(rs) != n {
			return false
		}
		for _, r := range rs {
			if r.Status != "online" || r.Pid == 0 {
				return false
			}
		}
		return true
	}
}

// FreePorts finds n consecutive ports that are free right now on loopback and wildcard.
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	for try := 0; try < 200; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if base+n > 65000 {
			continue
		}
		ok := true
		for p := base; p < base+n && ok; p++ {
			ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
			if err != nil {
				ok = false
				continue
			}
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range found")
	return 0
}

// Listen binds a foreign listener (as another program would) on addr, closed at cleanup.
func Listen(t testing.TB, network, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

var httpClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// Get fetches url and returns the body; a non-2xx answer is an error.
func Get(url string) (string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}
