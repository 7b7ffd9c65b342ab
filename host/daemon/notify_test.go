package daemon

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/notify"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// The test binary doubles as the apps these tests run: with testAppEnv set it acts as one
// instead of running tests (see runTestApp).
const (
	testAppEnv    = "PMDAEMON_DAEMON_TEST_APP"    // the mode: serve, listen, notify, ping
	testNotifyEnv = "PMDAEMON_DAEMON_TEST_NOTIFY" // the datagram notify mode sends ("\n" between lines)
	testDelayEnv  = "PMDAEMON_DAEMON_TEST_DELAY"  // how long notify mode waits before sending
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(testAppEnv); mode != "" {
		if err := runTestApp(mode); err != nil {
			fmt.Fprintln(os.Stderr, "test app:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runTestApp is an app in one of the modes: serve accepts on the socket handed to it (fd 3,
// checked against LISTEN_FDS and LISTEN_PID) and answers each connection with its pid; listen
// binds PORT itself and does the same; notify sends its datagram (after its delay, and again
// and "STATUS=usr1 N" at the Nth SIGUSR1); ping sends WATCHDOG=1 every 50ms. All run until they are killed.
func runTestApp(mode string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	switch mode {
	case "serve":
		if os.Getenv("LISTEN_FDS") != "1" || os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
			return fmt.Errorf("LISTEN_FDS=%q LISTEN_PID=%q, pid %d: the socket is not for me",
				os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_PID"), os.Getpid())
		}
		ln, err := net.FileListener(os.NewFile(3, "LISTEN_FD_3"))
		if err != nil {
			return err
		}
		return answerPid(ln)
	case "listen":
		ln, err := net.Listen("tcp", ":"+os.Getenv("PORT"))
		if err != nil {
			return err
		}
		return answerPid(ln)
	case "notify":
		if d, err := time.ParseDuration(os.Getenv(testDelayEnv)); err == nil {
			time.Sleep(d) // the app's own start-up time, as the test wants it
		}
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		if err := notify.Send(addr, strings.ReplaceAll(os.Getenv(testNotifyEnv), `\n`, "\n")); err != nil {
			return err
		}
		fmt.Println("sent")
		for n := 1; ; n++ {
			<-usr1
			if err := notify.Send(addr, "STATUS=usr1 "+strconv.Itoa(n)); err != nil {
				return err
			}
		}
	case "ping":
		for {
			if err := notify.Send(addr, "WATCHDOG=1"); err != nil {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return fmt.Errorf("unknown mode %q", mode)
}

func answerPid(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		fmt.Fprintf(c, "%d\n", os.Getpid())
		c.Close()
	}
}

// testApp is an app running the test binary in mode.
func testApp(t *testing.T, name, mode string, instances int, port string) config.App {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.NewApp()
	cfg.Name, cfg.Script, cfg.Cwd = name, exe, t.TempDir()
	cfg.Instances, cfg.Port, cfg.KillTimeout = instances, port, 2*time.Second
	cfg.Env = map[string]string{testAppEnv: mode}
	return cfg
}

// slotState is the supervisor's state of app's instance i.
func slotState(d *Daemon, app string, i int) supervisor.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.apps[app].slots[i].state()
}

// pollFor waits for cond with a deadline.
func pollFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Datagrams from an instance's processes set its readiness and status; the same datagram from
// any other process, even one of the daemon's user, changes nothing.
func TestNotifyRouting(t *testing.T) {
	d := runningDaemon(t)
	cfg := testApp(t, "web", "notify", 2, "")
	cfg.Env[testNotifyEnv] = `STATUS=instance says hi`
	mustStart(t, d, cfg)
	pollFor(t, "both instances' STATUS", 15*time.Second, func() bool {
		rs := rows(d, "web")
		return len(rs) == 2 && rs[0].StatusText == "instance says hi" && rs[1].StatusText == "instance says hi"
	})
	if slotState(d, "web", 0).Ready {
		t.Fatal("ready without READY=1")
	}
	addr := d.notifier.Address()
	instancePid := rows(d, "web")[0].Pid

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	strangers := []struct {
		name string
		send func(t *testing.T)
	}{
		{name: "the daemon's own process", send: func(t *testing.T) {
			if err := notify.Send(addr, "READY=1\nSTATUS=stranger"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "another process of the same user", send: func(t *testing.T) {
			c := exec.Command(exe)
			c.Env = append(os.Environ(), testAppEnv+"=notify", testNotifyEnv+`=READY=1\nSTATUS=stranger`, "NOTIFY_SOCKET="+addr)
			out, err := c.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { c.Process.Kill(); c.Wait() }()
			line, err := bufio.NewReader(out).ReadString('\n')
			if line != "sent\n" {
				t.Fatalf("the stranger said %q, %v; want sent", line, err)
			}
		}},
	}
	for i, s := range strangers {
		t.Run(s.name, func(t *testing.T) {
			s.send(t)
			// The stranger's datagram is queued; the instance's, sent now, comes after it, so
			// once the daemon has taken the instance's it has handled the stranger's.
			if err := syscall.Kill(instancePid, syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			marker := "usr1 " + strconv.Itoa(i+1)
			pollFor(t, "the instance's "+marker, 10*time.Second, func() bool { return rows(d, "web")[0].StatusText == marker })
			for j, r := range rows(d, "web") {
				if strings.Contains(r.StatusText, "stranger") || slotState(d, "web", j).Ready {
					t.Fatalf("instance %d took a stranger's datagram: status %q ready %v", j, r.StatusText, slotState(d, "web", j).Ready)
				}
			}
		})
	}
}
