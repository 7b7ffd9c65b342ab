package daemon

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

var lsFD = regexp.MustCompile(`\s(\d+) -> (.*)$`)

// The process of a socket app has fds 0, 1, 2 and its socket at 3, nothing else; its
// environment carries the protocol's variables with LISTEN_PID its own pid, and the daemon's
// own protocol variables (it may run under systemd) do not reach it.
func TestSocketAppFDsAndEnv(t *testing.T) {
	closeInheritedOnExec() // what Serve does first: the test runner's fds are not the daemon's
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDS", "7")
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("WATCHDOG_USEC", "5")
	tests := []struct {
		name   string
		socket config.SocketMode
		port   string
	}{
		{name: "socket app", socket: config.SocketInstance, port: "auto:27600-27619"},
		{name: "shared socket app", socket: config.SocketShared, port: "auto:27620-27639"},
		{name: "plain app with a port", port: "auto:27640-27659"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := runningDaemon(t)
			cfg := sleeper(t, "web", 1, tt.port)
			cfg.Socket = tt.socket
			cfg.Script, cfg.Args = "sh", []string{"-c", `echo "PID=$$"; env; ls -l /proc/$$/fd; echo FDS-DONE; exec sleep 600`}
			mustStart(t, d, cfg)
			pid, port := pidsOf(d, "web")[0], portsOf(d, "web")[0]
			var out string
			pollFor(t, "the app's report", 15*time.Second, func() bool {
				b, _ := os.ReadFile(d.paths.OutLog("web", 0))
				out = string(b)
				return strings.Contains(out, "\nFDS-DONE\n")
			})
			env, fds := map[string]string{}, map[int]string{}
			sc := bufio.NewScanner(strings.NewReader(out))
			for sc.Scan() {
				line := sc.Text()
				if m := lsFD.FindStringSubmatch(line); m != nil {
					n, _ := strconv.Atoi(m[1])
					fds[n] = m[2]
				} else if k, v, ok := strings.Cut(line, "="); ok {
					env[k] = v
				}
			}
			if env["PID"] != strconv.Itoa(pid) {
				t.Fatalf("the report is from pid %s; want the instance, %d:\n%s", env["PID"], pid, out)
			}
			want := map[string]string{"PORT": strconv.Itoa(port), "NOTIFY_SOCKET": d.notifier.Address()}
			wantFDs := []int{0, 1, 2}
			if tt.socket != config.SocketNone {
				want["LISTEN_PID"], want["LISTEN_FDS"], want["LISTEN_FDNAMES"] = strconv.Itoa(pid), "1", "web"
				wantFDs = append(wantFDs, 3)
			}
			for k, v := range want {
				if env[k] != v {
					t.Errorf("%s=%q; want %q", k, env[k], v)
				}
			}
			for _, k := range protocolEnv {
				if _, ok := want[k]; !ok {
					if v, ok := env[k]; ok {
						t.Errorf("%s=%q reached the app; the daemon's own must not", k, v)
					}
				}
			}
			var got []int
			for fd := range fds {
				got = append(got, fd)
			}
			slices.Sort(got)
			if !slices.Equal(got, wantFDs) {
				t.Fatalf("the app's fds are %v; want exactly %v:\n%s", got, wantFDs, out)
			}
			if tt.socket != config.SocketNone {
				if wantLink := fmt.Sprintf("socket:[%d]", heldInodes(d, "web")[port]); fds[3] != wantLink {
					t.Fatalf("fd 3 is %s; want the daemon's socket %s", fds[3], wantLink)
				}
			}
		})
	}
}

// After the daemon is replaced (update, or a SIGKILL: the state file is the same), the next one
// takes the listeners back from the running instances, and an instance that died while no
// daemon watched starts again on its socket: for a shared socket, the very one its surviving
// sibling serves on, which a bind of its own could not get.
func TestSocketsTakenBackByTheNextDaemon(t *testing.T) {
	tests := []struct {
		name string
		mode config.SocketMode
		port string
	}{
		{name: "shared", mode: config.SocketShared, port: "27960"},
		{name: "per instance", mode: config.SocketInstance, port: "27970-27971"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			prev, err := New(home, log.New(io.Discard, "", 0))
			if err != nil {
				t.Fatal(err)
			}
			prev.Restore()
			prev.Run()
			mustStart(t, prev, socketSleeper(t, "web", 2, tt.port, tt.mode))
			ports, pids := portsOf(prev, "web"), pidsOf(prev, "web")
			inodes := heldInodes(prev, "web")
			if err := prev.Handover(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { endHandedOver(prev) })
			// The previous daemon's process is gone, and its copies of the sockets with it.
			for _, a := range prev.apps {
				for _, l := range a.listeners {
					l.Close()
				}
			}
			syscall.Kill(pids[0], syscall.SIGKILL)
			pollFor(t, "instance 0 gone", 10*time.Second, func() bool { return syscall.Kill(pids[0], 0) != nil })

			logged := &syncWriter{w: &strings.Builder{}}
			next, err := New(home, log.New(logged, "", 0))
			if err != nil {
				t.Fatal(err)
			}
			next.Restore()
			next.Run()
			t.Cleanup(next.Shutdown)
			waitOnlineNew(t, next, "web", 2, pids[:1])
			if got := pidsOf(next, "web"); got[1] != pids[1] {
				t.Fatalf("pids %v; want instance 1 still %d, taken back", got, pids[1])
			}
			if got := portsOf(next, "web"); !slices.Equal(got, ports) {
				t.Fatalf("ports %v; want %v as before", got, ports)
			}
			held := heldInodes(next, "web")
			if held[ports[1]] != inodes[ports[1]] {
				t.Errorf("the next daemon holds %v for port %d; want the socket taken back, %d", held, ports[1], inodes[ports[1]])
			}
			for k, pid := range pidsOf(next, "web") {
				if got := fdInode(pid, 3); got == 0 || got != held[ports[k]] {
					t.Errorf("instance %d (pid %d) has socket %d at fd 3; want the daemon's %d for port %d (log:\n%s)",
						k, pid, got, held[ports[k]], ports[k], logged.String())
				}
			}
			if tt.mode == config.SocketShared && held[ports[0]] != inodes[ports[0]] {
				t.Errorf("the shared socket is %d after the restart; want the one instance 1 serves on, %d", held[ports[0]], inodes[ports[0]])
			}
		})
	}
}

// endHandedOver ends what is left of a daemon that handed over, as its exit would: its loops
// end without touching the processes, which the next daemon has (and has stopped by now).
func endHandedOver(d *Daemon) {
	var loops []*supervisor.Loop
	for _, a := range d.apps {
		for _, s := range a.slots {
			if s.loop != nil {
				loops = append(loops, s.loop)
			}
		}
	}
	done := make(chan struct{})
	go func() {
		for _, l := range loops {
			l.Stop() // asked before d.mu is free: a loop waiting for it sees the stop first
		}
		close(done)
	}()
	d.mu.Unlock()
	<-done
	d.opMu.Unlock()
}

// syncWriter lets the daemon's logger and the test share a builder.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.w)
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// An update that changes how the app's sockets are held takes effect: the daemon's listener
// of the old kind goes, so the new instances are not refused the port by the daemon itself.
func TestSocketUpdate(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		from, to   config.SocketMode
		bind       string
		wantHeld   bool
		wantBindTo string // the address the held socket must be bound to
	}{
		{name: "socket to none", from: config.SocketInstance, to: config.SocketNone},
		{name: "shared to none", from: config.SocketShared, to: config.SocketNone},
		{name: "none to socket", from: config.SocketNone, to: config.SocketInstance, wantHeld: true},
		{name: "socket to shared", from: config.SocketInstance, to: config.SocketShared, wantHeld: true},
		{name: "every address to loopback", from: config.SocketInstance, to: config.SocketInstance, bind: "127.0.0.1",
			wantHeld: true, wantBindTo: "127.0.0.1"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := runningDaemon(t)
			port := strconv.Itoa(27980 + i)
			mustStart(t, d, socketSleeper(t, "web", 1, port, tt.from))
			before := heldInodes(d, "web")
			cfg := socketSleeper(t, "web", 1, port, tt.to)
			cfg.Bind = tt.bind
			if _, err := d.Start(ctx, api.StartRequest{App: cfg, IfExists: "update"}); err != nil {
				t.Fatalf("update: %v", err)
			}
			waitOnlineNew(t, d, "web", 1, nil)
			held := heldInodes(d, "web")
			p, _ := strconv.Atoi(port)
			if !tt.wantHeld {
				if len(held) != 0 {
					t.Fatalf("after the update the daemon still holds %v", held)
				}
				if err := bindErr(p); err != nil {
					t.Fatalf("port %d after the update: %v; want it free for the app to bind", p, err)
				}
				return
			}
			if held[p] == 0 {
				t.Fatalf("after the update the daemon holds %v; want port %d", held, p)
			}
			if tt.wantBindTo != "" {
				d.mu.Lock()
				got := d.apps["web"].listeners[p].Bind
				d.mu.Unlock()
				if got != tt.wantBindTo {
					t.Fatalf("the socket is bound to %q (socket %d, before %v); want %q", got, held[p], before, tt.wantBindTo)
				}
			}
		})
	}
}

// A shared socket app reloads and scales on its one socket; a reload onto another port
// moves every instance to one new socket and closes the old.
func TestSharedSocketReloadAndScale(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		req      api.TargetRequest
		reload   bool
		wantPort int // 0: the port it had
		wantN    int
	}{
		{name: "reload", req: api.TargetRequest{Target: "web"}, reload: true, wantN: 2},
		{name: "reload onto another port", req: api.TargetRequest{Target: "web", Port: "27991"}, reload: true, wantPort: 27991, wantN: 2},
		{name: "reload onto an auto range", req: api.TargetRequest{Target: "web", Port: "auto:27992-27995"}, reload: true, wantPort: 27992, wantN: 2},
		{name: "scale up", req: api.TargetRequest{Target: "web", Instances: 3}, wantN: 3},
		{name: "scale down", req: api.TargetRequest{Target: "web", Instances: 1}, wantN: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := runningDaemon(t)
			cfg := testApp(t, "web", "serve", 2, "27990")
			cfg.Socket, cfg.WaitReady = config.SocketShared, true
			mustStart(t, d, cfg)
			old, inode := pidsOf(d, "web"), heldInodes(d, "web")[27990]
			tt.req.WaitTimeout = api.Duration(10 * time.Second)
			var err error
			if tt.reload {
				_, err = d.Reload(ctx, tt.req)
			} else {
				_, err = d.Restart(ctx, tt.req)
			}
			if err != nil {
				t.Fatal(err)
			}
			waitOnlineNew(t, d, "web", tt.wantN, old)
			port := cmp.Or(tt.wantPort, 27990)
			for k, p := range portsOf(d, "web") {
				if p != port {
					t.Fatalf("instance %d is on port %d; want every instance on %d", k, p, port)
				}
			}
			held := heldInodes(d, "web")
			if len(held) != 1 || held[port] == 0 {
				t.Fatalf("sockets held %v; want one, for port %d", held, port)
			}
			if tt.wantPort == 0 && held[port] != inode {
				t.Errorf("the socket is %d; want the one it had, %d", held[port], inode)
			}
			if tt.wantPort != 0 {
				if err := bindErr(27990); err != nil {
					t.Errorf("the old port after the move: %v; want it free", err)
				}
			}
			for k, pid := range pidsOf(d, "web") {
				if got := fdInode(pid, 3); got != held[port] {
					t.Errorf("instance %d has socket %d at fd 3; want the shared %d", k, got, held[port])
				}
			}
			// Every instance serves on it: connections reach them all, the kernel spreading them.
			seen := map[string]bool{}
			for i := 0; i < 200 && len(seen) < tt.wantN; i++ {
				c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Close()
				seen[strings.TrimSpace(line)] = true
			}
			t.Logf("instances that answered within 200 connections: %d of %d", len(seen), tt.wantN)
		})
	}
}

// A restart of a shared socket app whose first instance was stopped alone keeps the port the
// others serve on, even when a lower port of its range has become free.
func TestSharedSocketRestartKeepsPort(t *testing.T) {
	ctx := context.Background()
	stranger, err := net.Listen("tcp", ":27930")
	if err != nil {
		t.Fatal(err)
	}
	d := runningDaemon(t)
	st := mustStart(t, d, socketSleeper(t, "web", 2, "auto:27930-27939", config.SocketShared))
	stranger.Close()
	port := portsOf(d, "web")[0]
	inode := heldInodes(d, "web")[port]
	if port == 27930 {
		t.Fatal("the shared port is the one a stranger held")
	}
	if _, err := d.Stop(ctx, api.TargetRequest{Target: strconv.Itoa(st.IDs[0])}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Restart(ctx, api.TargetRequest{Target: "web"}); err != nil {
		t.Fatal(err)
	}
	waitOnlineNew(t, d, "web", 2, nil)
	if got := portsOf(d, "web"); !slices.Equal(got, []int{port, port}) {
		t.Fatalf("ports after the restart %v; want both on %d, where the running instance was", got, port)
	}
	if got := heldInodes(d, "web"); len(got) != 1 || got[port] != inode {
		t.Fatalf("sockets after the restart %v; want port %d's, %d", got, port, inode)
	}
}

// A reload of a socket app onto a range that overlaps its own runs beside the old instances:
// a port in both keeps its socket, a new one is bound, one left is closed.
func TestSocketReloadOntoOverlappingRange(t *testing.T) {
	d := runningDaemon(t)
	cfg := socketSleeper(t, "web", 2, "27940-27941", config.SocketInstance)
	cfg.Ready, cfg.MinUptime = config.ReadyUptime, 100*time.Millisecond // sleep never accepts; readiness is not what is tested
	mustStart(t, d, cfg)
	old, before := pidsOf(d, "web"), heldInodes(d, "web")
	if _, err := d.Reload(context.Background(), api.TargetRequest{Target: "web", Port: "27941-27942"}); err != nil {
		t.Fatal(err)
	}
	waitOnlineNew(t, d, "web", 2, old)
	if got := portsOf(d, "web"); !slices.Equal(got, []int{27941, 27942}) {
		t.Fatalf("ports %v; want [27941 27942]", got)
	}
	held := heldInodes(d, "web")
	if len(held) != 2 || held[27941] != before[27941] || held[27942] == 0 {
		t.Fatalf("sockets %v (before %v); want 27941's kept and 27942's new", held, before)
	}
	if err := bindErr(27940); err != nil {
		t.Errorf("port 27940, left: %v; want it free", err)
	}
	for k, pid := range pidsOf(d, "web") {
		if got, want := fdInode(pid, 3), held[27941+k]; got != want {
			t.Errorf("instance %d has socket %d at fd 3; want %d", k, got, want)
		}
	}
}
