package sockets

import (
	"bufio"
	"errors"
	"flag"
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
)

// childModeEnv makes the test binary act as an app instead of running tests; see TestMain.
const childModeEnv = "PMD_SOCKETS_CHILD"

// TestMain lets the test binary play the processes the tests need: an app serving HTTP on the
// socket handed to it as fd 3 ("serve"), an app that only holds fd 3 ("hold"), or an
// unprivileged caller of this package ("listen", "recover"). An app exits when its stdin
// closes, so that it cannot outlive a test binary that died.
func TestMain(m *testing.M) {
	switch os.Getenv(childModeEnv) {
	case "":
		base := runtime.NumGoroutine()
		code := m.Run()
		// The fuzzing engine keeps a signal goroutine of its own: check plain test runs only.
		fuzzing := flag.Lookup("test.fuzz") != nil && flag.Lookup("test.fuzz").Value.String() != ""
		if code == 0 && !fuzzing && !goroutinesSettle(base) {
			buf := make([]byte, 1<<20)
			fmt.Fprintf(os.Stderr, "goroutines left behind by the tests:\n%s\n", buf[:runtime.Stack(buf, true)])
			code = 1
		}
		os.Exit(code)
	case "serve":
		ln, err := net.FileListener(os.NewFile(3, "listener"))
		if err != nil {
			fmt.Println("child:", err)
			os.Exit(2)
		}
		go exitOnStdinEOF()
		fmt.Println("ready")
		pid := os.Getpid()
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "pid %d", pid)
		}))
	case "hold":
		fmt.Println("ready")
		exitOnStdinEOF()
	case "listen":
		port, _ := strconv.Atoi(os.Getenv("PORT"))
		l, err := Listen(os.Getenv("BIND"), port)
		if err == nil {
			l.Close()
		}
		fmt.Printf("error: %v\neacces: %v\n", err, errors.Is(err, syscall.EACCES))
	case "recover":
		pid, _ := strconv.Atoi(os.Getenv("PID"))
		inode, _ := strconv.ParseUint(os.Getenv("INODE"), 10, 64)
		port, _ := strconv.Atoi(os.Getenv("PORT"))
		_, err := Recover([]int{pid}, inode, port, "")
		fmt.Printf("error: %v\n", err)
	}
}

// goroutinesSettle waits for the goroutines the tests started (HTTP client connections, child
// reapers) to end, up to a deadline; false if more than base remain.
func goroutinesSettle(base int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func exitOnStdinEOF() {
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// child is a running app process of the test binary.
type child struct {
	cmd   *exec.Cmd
	stdin io.Closer
	done  chan struct{} // closed once the process is reaped
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop ends the app as an instance stop would (its stdin closes, then SIGKILL for one that
// lingers) and reaps it. It may be called more than once.
func (c *child) stop() {
	c.stdin.Close()
	select {
	case <-c.done:
		return
	case <-time.After(5 * time.Second):
	}
	c.cmd.Process.Kill()
	<-c.done
}

// startChild runs the test binary in mode with the socket as fd 3 and returns once it says
// it is ready. The test's cleanup stops and reaps it.
func startChild(t testing.TB, mode string, socket *os.File) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode, "GORACE=atexit_sleep_ms=0")
	cmd.ExtraFiles = []*os.File{socket}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.stop)
	select {
	case line := <-ready:
		if line != "ready\n" {
			t.Fatalf("child %s said %q instead of ready", mode, line)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("child %s not ready within 10s", mode)
	}
	return c
}

// runAsNobody runs the test binary in mode as the user nobody, with env, and returns what it
// printed. The binary is copied where nobody may execute it.
func runAsNobody(t *testing.T, mode string, env ...string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("runAsNobody needs root, to switch user")
	}
	// t.TempDir's parent is private to root; nobody must reach the copy.
	dir, err := os.MkdirTemp("", "pmd-sockets-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sockets.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), childModeEnv+"="+mode, "GORACE=atexit_sleep_ms=0"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s as nobody: %v\n%s", mode, err, out)
	}
	return string(out)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Generous: reading /proc/net/tcp takes a fraction of a second on a host with many
	// TIME_WAIT sockets, as a test machine running other suites has.
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hasIPv6 reports whether the host can bind the IPv6 loopback.
func hasIPv6() bool {
	l, err := Listen("::1", 0)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// needIPv6 skips a case that binds an IPv6 address on a host without IPv6, saying so.
func needIPv6(t *testing.T, binds ...string) {
	t.Helper()
	for _, b := range binds {
		if strings.Contains(b, ":") && !hasIPv6() {
			t.Skipf("this host has no IPv6 loopback, so %q cannot be bound", b)
		}
	}
}

// listen is Listen that fails the test on error and closes the listener at its end.
func listen(t testing.TB, bind string, port int) *Listener {
	t.Helper()
	l, err := Listen(bind, port)
	if err != nil {
		t.Fatalf("Listen(%q, %d): %v", bind, port, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// get makes one HTTP request to a socket bound to bind:port, from this host, and returns the
// body.
func get(t *testing.T, bind string, port int) string {
	t.Helper()
	addr, err := parseBind(bind)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + probeTarget(addr, false, port) + "/")
	if err != nil {
		t.Fatalf("GET port %d: %v", port, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET port %d: %v", port, err)
	}
	return string(body)
}
