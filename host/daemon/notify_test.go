package daemon

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/notify"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// The test binary doubles as the apps these tests run: with testAppEnv set it acts as one
// instead of running tests (see runTestApp).
const (
	testAppEnv    = "PMDAEMON_DAEMON_TEST_APP"    // the mode: serve, listen, notify, flood, ping
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
	case "flood":
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
		if err != nil {
			return err
		}
		for n := 1; ; n++ {
			if _, err := c.Write([]byte("STATUS=" + strconv.Itoa(n))); err != nil {
				return err
			}
		}
	case "ping":
		for {
			if err := notify.Send(addr, "WATCHDOG=1\nSTATUS=pinging"); err != nil {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// answerPid serves as an HTTP server would: the connection stays open until the client is
// done with it, and it is told the pid that accepted it.
func answerPid(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			fmt.Fprintf(c, "%d\n", os.Getpid())
			io.Copy(io.Discard, c)
		}()
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

// An instance is ready by the app's rule: its port accepts a connection (for a socket the
// daemon holds, the app itself accepted one), or it sent READY=1; READY=1 counts under any rule.
// The errors say which rule was not met.
func TestReadiness(t *testing.T) {
	tests := []struct {
		name    string
		mode    string // the test app's mode; "" runs sleep
		socket  config.SocketMode
		port    string
		ready   string
		notify  string // what notify mode sends
		delay   time.Duration
		wantErr []string // "" when the start must be ready
		notice  bool     // info must tell the app to accept on fd 3
	}{
		{name: "port: app that never listens", port: "auto:27700-27719",
			wantErr: []string{"did not accept a connection on its port within"}},
		{name: "port: app that listens", mode: "listen", port: "auto:27720-27739"},
		{name: "port: socket app that accepts on fd 3", mode: "serve", socket: config.SocketInstance, port: "auto:27740-27759"},
		{name: "port: shared socket app that accepts on fd 3", mode: "serve", socket: config.SocketShared, port: "auto:27760-27779"},
		{name: "port: socket app that never accepts", socket: config.SocketInstance, port: "auto:27780-27799",
			wantErr: []string{"did not accept a connection on its port within"}, notice: true},
		// It fails to bind and exits ("did not stay up"), or on a slow machine has not yet
		// exited when the wait ends ("did not accept"): either way info must say why.
		{name: "port: socket app that binds the port itself", mode: "listen", socket: config.SocketInstance, port: "auto:27800-27819",
			wantErr: []string{"instance 0 of web did"}, notice: true},
		{name: "notify: READY=1 after a while", mode: "notify", ready: config.ReadyNotify, notify: `STATUS=up\nREADY=1`, delay: 300 * time.Millisecond},
		{name: "notify: no READY=1", mode: "notify", ready: config.ReadyNotify, notify: "STATUS=still loading",
			wantErr: []string{"sent no READY=1 to NOTIFY_SOCKET within"}},
		{name: "notify: a port that answers is not READY=1", mode: "listen", ready: config.ReadyNotify, port: "auto:27820-27839",
			wantErr: []string{"sent no READY=1 to NOTIFY_SOCKET within"}},
		{name: "port: READY=1 counts too", mode: "notify", port: "auto:27840-27859", notify: "READY=1"},
		// It serves on its socket: what it did not do is send READY=1, and info must not
		// say it binds the port itself.
		{name: "notify: socket app that serves but sends no READY=1", mode: "serve", socket: config.SocketInstance,
			port: "auto:27860-27879", ready: config.ReadyNotify, wantErr: []string{"sent no READY=1 to NOTIFY_SOCKET within"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := runningDaemon(t)
			var cfg config.App
			if tt.mode == "" {
				cfg = sleeper(t, "web", 1, tt.port)
			} else {
				cfg = testApp(t, "web", tt.mode, 1, tt.port)
			}
			if tt.socket == config.SocketShared {
				cfg.Instances = 2
			}
			cfg.Socket, cfg.Ready, cfg.WaitReady = tt.socket, tt.ready, true
			cfg.MinUptime = 200 * time.Millisecond
			if tt.notify != "" {
				cfg.Env[testNotifyEnv] = tt.notify
				cfg.Env[testDelayEnv] = tt.delay.String()
			}
			begun := time.Now()
			_, err := d.Start(context.Background(), api.StartRequest{App: cfg, WaitTimeout: api.Duration(2 * time.Second)})
			took := time.Since(begun)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("start: %v; want it ready", err)
				}
				if took < tt.delay {
					t.Fatalf("ready after %s, before the app said so (%s)", took, tt.delay)
				}
				if info, _ := d.Info("web"); info != nil {
					for _, r := range info.Instances {
						if r.Notice != "" {
							t.Errorf("a ready instance has the notice %q", r.Notice)
						}
					}
				}
				return
			}
			if err == nil {
				t.Fatal("start succeeded; want it not ready")
			}
			for _, w := range append(tt.wantErr, "is not ready", "web") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			info, ierr := d.Info("web")
			if ierr != nil {
				t.Fatal(ierr)
			}
			n := info.Instances[0].Notice
			if tt.notice && (!strings.Contains(n, "fd 3") || !strings.Contains(n, "LISTEN_FDS")) {
				t.Errorf("info notice %q; want it to tell the app to accept on fd 3", n)
			}
			if !tt.notice && n != "" {
				t.Errorf("info notice %q for an app that is not ready for another reason", n)
			}
		})
	}
}

// The daemon gives a watchdog app WATCHDOG_USEC and restarts an instance whose pings stop,
// with the reason saying so; one that pings runs on, and WATCHDOG=trigger restarts.
func TestWatchdogThroughNotifySocket(t *testing.T) {
	tests := []struct {
		name       string
		mode       string
		notify     string
		watchdog   time.Duration // 0: 300ms
		wantReason string        // "" when it must run on
	}{
		// 3s: a deadline a test binary starting on a loaded machine meets (with 300ms, CI saw
		// it restarted before its first ping, over and over).
		{name: "pings run on", mode: "ping", watchdog: 3 * time.Second},
		{name: "silence restarts", mode: "notify", notify: "STATUS=busy", wantReason: "watchdog: no WATCHDOG=1 within 300ms"},
		// With a deadline it cannot reach: the trigger is what restarts it.
		{name: "trigger restarts", mode: "notify", notify: "WATCHDOG=trigger", watchdog: time.Minute, wantReason: "WATCHDOG=trigger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := runningDaemon(t)
			cfg := testApp(t, "web", tt.mode, 1, "")
			cfg.Watchdog = cmp.Or(tt.watchdog, 300*time.Millisecond)
			if tt.notify != "" {
				cfg.Env[testNotifyEnv] = tt.notify
			}
			mustStart(t, d, cfg)
			// The deadline runs from the spawn: a test binary that starts slower than 300ms on
			// a loaded machine is restarted before its first ping, rightly. What is watched
			// below is a process from its first ping on.
			var watched api.Instance
			pollFor(t, "online", 15*time.Second, func() bool {
				watched = rows(d, "web")[0]
				return watched.Pid > 0 && (tt.mode != "ping" || watched.StatusText == "pinging")
			})
			first := watched.Pid
			if tt.wantReason == "" {
				// A process that runs on shows its environment (the others may be gone).
				env, err := os.ReadFile("/proc/" + strconv.Itoa(first) + "/environ")
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("\x00WATCHDOG_USEC=%d\x00", cfg.Watchdog.Microseconds())
				if !strings.Contains(string(env), want) {
					t.Errorf("the instance has no %q", want[1:len(want)-1])
				}
				end := time.Now().Add(2 * cfg.Watchdog) // two deadlines without a restart
				for time.Now().Before(end) {
					if r := rows(d, "web")[0]; r.Pid != first || r.Restarts != watched.Restarts {
						t.Fatalf("a pinging instance was restarted: %+v", r)
					}
					time.Sleep(20 * time.Millisecond) // watching that nothing happens
				}
				return
			}
			pollFor(t, "a restart", 15*time.Second, func() bool { return rows(d, "web")[0].Restarts > 0 })
			if r := rows(d, "web")[0]; !strings.Contains(r.Reason, tt.wantReason) {
				t.Fatalf("restart reason %q; want it to say %q", r.Reason, tt.wantReason)
			}
		})
	}
}

// A process flooding NOTIFY_SOCKET, an instance or a stranger, does not starve the daemon: its
// operations and queries still answer promptly, and the instance's own datagrams still land.
func TestNotifyFlood(t *testing.T) {
	tests := []struct {
		name     string
		instance bool // the flooder is an instance (else a stranger of the same user)
	}{
		{name: "instance floods", instance: true},
		{name: "stranger floods"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := runningDaemon(t)
			if tt.instance {
				mustStart(t, d, testApp(t, "flood", "flood", 1, ""))
			} else {
				exe, err := os.Executable()
				if err != nil {
					t.Fatal(err)
				}
				c := exec.Command(exe)
				c.Env = append(os.Environ(), testAppEnv+"=flood", "NOTIFY_SOCKET="+d.notifier.Address())
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				defer func() { c.Process.Kill(); c.Wait() }()
			}
			// Let the flood run before measuring.
			time.Sleep(300 * time.Millisecond) // a warm-up span, not a synchronisation
			var slowest time.Duration
			end := time.Now().Add(time.Second)
			lists := 0
			for time.Now().Before(end) {
				b := time.Now()
				d.List()
				slowest = max(slowest, time.Since(b))
				lists++
			}
			b := time.Now()
			mustStart(t, d, sleeper(t, "other", 1, ""))
			startTook := time.Since(b)
			status := ""
			if tt.instance {
				first := rows(d, "flood")[0].StatusText
				time.Sleep(time.Second) // a measured span: how many datagrams the daemon takes in a second
				status = fmt.Sprintf("; the instance's STATUS went from %s to %s in a second", first, rows(d, "flood")[0].StatusText)
			}
			t.Logf("under the flood: %d lists in 1s, the slowest %s; a start took %s%s", lists, slowest, startTook, status)
			if slowest > time.Second || startTook > 10*time.Second {
				t.Fatalf("the flood starved the daemon: slowest list %s, start %s", slowest, startTook)
			}
			if tt.instance && rows(d, "flood")[0].StatusText == "" {
				t.Fatal("the flooding instance's datagrams were never taken")
			}
		})
	}
}
