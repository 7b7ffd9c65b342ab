// Package harness runs the real pmdaemon binary for end-to-end tests: it builds the binary and
// the demo apps once per test run, gives each test its own PMDAEMON_HOME, and after each test
// kills the daemon and fails the test if any process of that home is left behind.
package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/procfs"
)

var (
	// Bin is the built pmdaemon binary, Daemon the daemon binary beside it (pmdaemond), Echo
	// the demo HTTP app (examples/apps/echo).
	Bin, Daemon, Echo string
	buildDir          string
)

// Main builds the binaries, runs the tests and removes the build. Use it from TestMain.
func Main(m *testing.M, extra ...Binary) int {
	var err error
	buildDir, err = os.MkdirTemp("", "pmd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(buildDir)
	root := ModuleRoot()
	Bin = filepath.Join(buildDir, "pmdaemon")
	Daemon = filepath.Join(buildDir, "pmdaemond") // beside Bin, where the CLI looks for it
	Echo = filepath.Join(buildDir, "echo")
	for out, pkg := range map[string]string{Bin: "./cmd/pmdaemon", Daemon: "./cmd/pmdaemond", Echo: "./examples/apps/echo"} {
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
	for _, x := range extra {
		*x.Path = filepath.Join(buildDir, filepath.Base(x.Pkg))
		cmd := exec.Command("go", "build", "-o", *x.Path, x.Pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", x.Pkg, err, b)
			return 1
		}
	}
	return m.Run()
}

// Binary is one more program a suite needs (a plugin), built once per test run without the
// race detector: it is the daemon under test, not the plugin. Path receives where it is.
type Binary struct {
	Path *string
	Pkg  string // relative to the module root, e.g. "./plugins/reserved-range"
}

// ModuleRoot is the repository root.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Home is one test's PMDAEMON_HOME.
type Home struct {
	T   testing.TB
	Dir string
	Env []string // extra environment for every command

	apiOnce sync.Once
	api     *api.Client
}

// NewHome makes a fresh home (short path: socket paths are limited to 108 bytes) and registers
// the cleanup that kills the daemon and checks for leftover processes.
func NewHome(t testing.TB) *Home {
	t.Helper()
	dir, err := os.MkdirTemp("", "pmd-")
	if err != nil {
		t.Fatal(err)
	}
	return NewHomeAt(t, dir)
}

// NewHomeAt is NewHome at a given path, which need not exist yet (the CLI then creates it).
func NewHomeAt(t testing.TB, dir string) *Home {
	t.Helper()
	h := &Home{T: t, Dir: dir}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		kill := exec.CommandContext(ctx, Bin, "kill")
		kill.Env = h.environ()
		if out, err := kill.CombinedOutput(); err != nil {
			t.Errorf("pmdaemon kill at cleanup: %v\n%s", err, out)
		}
		// A -race daemon reports races only in its log; a race there fails the test.
		if log := h.DaemonLog(); strings.Contains(log, "DATA RACE") {
			t.Errorf("the daemon reported a data race:\n%s", log)
		}
		// Anything still carrying this home in its environment is an orphan: report and kill it.
		if left := h.Processes(); len(left) > 0 {
			what := describeProcs(left) // before the kill, to say what they were
			for _, p := range left {
				syscall.Kill(p, syscall.SIGKILL)
			}
			t.Errorf("processes left behind after the test: %s", what)
		}
		RemoveCgroups(t, dir)
		os.RemoveAll(dir)
	})
	return h
}

// RemoveCgroups removes what is left of home's cgroups (a test that SIGKILLed its last
// daemon leaves them); a process still in one fails t, as any leftover does.
func RemoveCgroups(t testing.TB, home string) {
	t.Helper()
	sum := sha256.Sum256([]byte(home))
	name := "pmdaemon-" + hex.EncodeToString(sum[:4])
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		dir := filepath.Join(root, name)
		units, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, u := range units {
			if !u.IsDir() {
				continue
			}
			p := filepath.Join(dir, u.Name())
			if b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs")); len(bytes.TrimSpace(b)) > 0 {
				t.Errorf("cgroup %s still holds processes %s after the test", p, bytes.Fields(b))
				os.WriteFile(filepath.Join(p, "cgroup.kill"), []byte("1"), 0)
			}
			removeDirRetrying(p)
		}
		removeDirRetrying(dir)
	}
}

// removeDirRetrying removes an empty cgroup, waiting briefly for killed processes to go.
func removeDirRetrying(p string) {
	for deadline := time.Now().Add(2 * time.Second); os.Remove(p) != nil && time.Now().Before(deadline); {
		if _, err := os.Stat(p); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// environ is the environment of every command run in this home. A -race binary sleeps a
// second at exit by default; GORACE removes that wait (a race still exits with code 66).
func (h *Home) environ() []string {
	env := append(os.Environ(), "PMDAEMON_HOME="+h.Dir, "GORACE=atexit_sleep_ms=0 halt_on_error=0")
	return append(env, h.Env...)
}

// Processes lists live (non-zombie) processes whose environment has this PMDAEMON_HOME.
func (h *Home) Processes() []int { return ProcessesOf(h.Dir) }

// ProcessesOf lists live (non-zombie) processes other than this one whose environment has
// PMDAEMON_HOME=home: the daemon started for it and every app the daemon started.
func ProcessesOf(home string) []int { return ProcessesWithEnv("PMDAEMON_HOME=" + home) }

// ProcessesWithEnv lists live (non-zombie) processes other than this one whose environment
// has the entry NAME=value.
func ProcessesWithEnv(entry string) []int {
	needle := []byte(entry + "\x00")
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

// describeProcs names each pid with its command line, for a failure message.
func describeProcs(pids []int) string {
	var parts []string
	for _, p := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		parts = append(parts, fmt.Sprintf("%d (%.200s)", p, bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '})))
	}
	return strings.Join(parts, ", ")
}

// Zombie reports whether pid is gone or a zombie.
func Zombie(pid int) bool { return !procfs.Alive(pid) }

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
	r := h.Exec(args...)
	if r.Code == -1 {
		h.T.Fatalf("pmdaemon %v: %s", args, r.Stderr)
	}
	return r
}

// Exec is Run without a testing.T, for goroutines: a failure to run at all is Code -1 with
// the error in Stderr.
func (h *Home) Exec(args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Bin, args...)
	cmd.Env = h.environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
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

var (
	blocksMu sync.Mutex
	blocks   [][2]int // every block handed out in this test run
)

// FreePorts returns the first of n consecutive ports that are free now and that no other test
// of this run has been given (tests run in parallel). It searches below the kernel's ephemeral
// range: there only a listener can hold a port, while inside it the tests' own client
// connections take local ports, and one in TIME_WAIT makes a port really unbindable for a
// minute, so a block found free could turn "in use by another process" at random.
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	blocksMu.Lock()
	defer blocksMu.Unlock()
	lo, hi := packageShare(10000, ephemeralLow())
	hi -= n
	for try := 0; try < 1000; try++ {
		var base int
		if hi-lo > 1000 {
			base = lo + rand.IntN(hi-lo)
		} else {
			base = 1024 + rand.IntN(65000-1024-n)
		}
		if !portsFree(base, n) || overlaps(base, base+n-1) {
			continue
		}
		blocks = append(blocks, [2]int{base, base + n - 1})
		return base
	}
	t.Fatal("no free port block found")
	return 0
}

// packageShare is the part of [lo, hi) this test package picks its ports from. Test packages
// run side by side as separate processes and blocks lists only this process's picks, so each
// package gets its own share: the fault suite, which holds the most ports at once, four;
// every other package one, by name.
func packageShare(lo, hi int) (int, int) {
	const shares = 16
	size := (hi - lo) / shares
	wd, _ := os.Getwd()
	i, n := 0, 1
	switch pkg := filepath.Base(wd); pkg {
	case "faults":
		i, n = 0, 4
	case "portse2e":
		i = 4
	case "lifecycle":
		i = 5
	case "ecosystem":
		i = 6
	case "healthe2e":
		i = 7
	case "plugine2e":
		i = 8
	case "bench":
		i = 9
	default:
		h := fnv.New32a()
		h.Write([]byte(pkg))
		i = 10 + int(h.Sum32()%(shares-10))
	}
	if size < 200 { // a narrow ephemeral range: share nothing rather than fail
		return lo, hi
	}
	return lo + i*size, lo + (i+n)*size
}

func overlaps(lo, hi int) bool {
	for _, b := range blocks {
		if lo <= b[1] && b[0] <= hi {
			return true
		}
	}
	return false
}

// ephemeralLow is the first port of the kernel's ephemeral (local) port range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// portsFree reports whether ports base..base+n-1 can all be bound right now on the IPv4 and
// IPv6 wildcard and on loopback (what pmdaemon's OS check and the echo app need).
func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		for _, a := range [][2]string{{"tcp4", "0.0.0.0"}, {"tcp4", "127.0.0.1"}, {"tcp6", "[::]"}} {
			l, err := net.Listen(a[0], a[1]+":"+strconv.Itoa(p))
			if err != nil {
				if a[0] == "tcp6" && !strings.Contains(err.Error(), "address already in use") {
					continue // no IPv6 here
				}
				return false
			}
			l.Close()
		}
	}
	return true
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
