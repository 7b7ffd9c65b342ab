package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/sockets"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// socketSleeper is a socket app running sleep: the daemon holds its sockets whatever it runs.
func socketSleeper(t *testing.T, name string, instances int, port string, mode config.SocketMode) config.App {
	cfg := sleeper(t, name, instances, port)
	cfg.Socket = mode
	return cfg
}

// bindErr is what binding port on every address now gives: nil when the port is free.
func bindErr(port int) error {
	l, err := sockets.Listen("", port)
	if err == nil {
		l.Close()
	}
	return err
}

// heldInodes are the inodes of the sockets the daemon holds for app, by port.
func heldInodes(d *Daemon, app string) map[int]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[int]uint64{}
	if a := d.apps[app]; a != nil {
		for p, l := range a.listeners {
			out[p] = l.Inode
		}
	}
	return out
}

// fdInode is the inode of the socket at fd of pid, 0 when it is not a socket.
func fdInode(pid, fd int) uint64 {
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
	if err != nil {
		return 0
	}
	n, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0
	}
	ino, _ := strconv.ParseUint(strings.TrimSuffix(n, "]"), 10, 64)
	return ino
}

// openSockets counts this process's open sockets: the daemon's listeners among them. (Other
// fds come and go with the daemon's own work, such as the log watcher it makes on first use.)
func openSockets(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(link, "socket:") {
			n++
		}
	}
	return n
}

func portsOf(d *Daemon, app string) []int {
	var out []int
	for _, r := range rows(d, app) {
		if r.Port != nil {
			out = append(out, *r.Port)
		}
	}
	return out
}

// waitOnlineNew waits until app has n online instances, none of them a pid in old.
func waitOnlineNew(t *testing.T, d *Daemon, app string, n int, old []int) {
	t.Helper()
	pollFor(t, fmt.Sprintf("%d new online instances of %s", n, app), 15*time.Second, func() bool {
		rs := rows(d, app)
		fresh := 0
		for _, r := range rs {
			if r.Status == string(supervisor.Online) && r.Pid > 0 && !slices.Contains(old, r.Pid) {
				fresh++
			}
		}
		return len(rs) == n && fresh == n
	})
}

// A socket app's ports are bound by the daemon from its start, and the very sockets stay
// through every way an instance is replaced; stop and delete close them.
func TestSocketHeldAcrossLifecycle(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		op   func(t *testing.T, d *Daemon, pids []int)
		// held: the ports still held by the same sockets after op; wantRows: instances after.
		held     bool
		wantRows int
	}{
		{name: "restart", held: true, wantRows: 2, op: func(t *testing.T, d *Daemon, pids []int) {
			if _, err := d.Restart(ctx, api.TargetRequest{Target: "web"}); err != nil {
				t.Fatal(err)
			}
			waitOnlineNew(t, d, "web", 2, pids)
		}},
		{name: "reload", held: true, wantRows: 2, op: func(t *testing.T, d *Daemon, pids []int) {
			d.mu.Lock()
			d.apps["web"].cfg.Ready = config.ReadyUptime // sleep never accepts; readiness is not what is tested
			d.apps["web"].cfg.MinUptime = 100 * time.Millisecond
			d.mu.Unlock()
			if _, err := d.Reload(ctx, api.TargetRequest{Target: "web"}); err != nil {
				t.Fatal(err)
			}
			waitOnlineNew(t, d, "web", 2, pids)
		}},
		{name: "crash", held: true, wantRows: 2, op: func(t *testing.T, d *Daemon, pids []int) {
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGKILL)
			}
			waitOnlineNew(t, d, "web", 2, pids)
		}},
		{name: "stop", wantRows: 2, op: func(t *testing.T, d *Daemon, pids []int) {
			if _, err := d.Stop(ctx, api.TargetRequest{Target: "web"}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "delete", wantRows: 0, op: func(t *testing.T, d *Daemon, pids []int) {
			if _, err := d.Delete(ctx, api.TargetRequest{Target: "web"}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := runningDaemon(t)
			spec := fmt.Sprintf("auto:%d-%d", 27000+20*i, 27019+20*i)
			fdsBefore := openSockets(t)
			mustStart(t, d, socketSleeper(t, "web", 2, spec, config.SocketInstance))
			ports, pids := portsOf(d, "web"), pidsOf(d, "web")
			inodes := heldInodes(d, "web")
			if len(ports) != 2 || len(inodes) != 2 {
				t.Fatalf("ports %v, sockets held %v; want two of each", ports, inodes)
			}
			for k, p := range ports {
				if err := bindErr(p); !errors.Is(err, syscall.EADDRINUSE) {
					t.Fatalf("binding port %d beside the daemon: %v; want EADDRINUSE", p, err)
				}
				if got := fdInode(pids[k], 3); got != inodes[p] {
					t.Fatalf("instance %d has socket %d at fd 3; want the daemon's %d", k, got, inodes[p])
				}
			}
			tt.op(t, d, pids)
			if got := len(rows(d, "web")); got != tt.wantRows {
				t.Fatalf("%d instances after; want %d", got, tt.wantRows)
			}
			if !tt.held {
				for _, p := range ports {
					if err := bindErr(p); err != nil {
						t.Errorf("port %d after %s: %v; want it free", p, tt.name, err)
					}
				}
				if got := heldInodes(d, "web"); len(got) != 0 {
					t.Errorf("sockets still held after %s: %v", tt.name, got)
				}
				pollFor(t, "the daemon's sockets back to their count before the start", 5*time.Second,
					func() bool { return openSockets(t) <= fdsBefore })
				return
			}
			if got := heldInodes(d, "web"); !mapsEqual(got, inodes) {
				t.Fatalf("sockets after %s: %v; want the same as before, %v", tt.name, got, inodes)
			}
			if got := portsOf(d, "web"); !slices.Equal(got, ports) {
				t.Fatalf("ports after %s: %v; want %v", tt.name, got, ports)
			}
			for k, pid := range pidsOf(d, "web") {
				if got := fdInode(pid, 3); got != inodes[ports[k]] {
					t.Errorf("new instance %d (pid %d) has socket %d at fd 3; want the same socket %d", k, pid, got, inodes[ports[k]])
				}
			}
		})
	}
}

func mapsEqual(a, b map[int]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A shared socket is one port for every instance; it stays held while any wanted instance is
// on it and is closed with the last.
func TestSharedSocketPort(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		op   func(*Daemon, context.Context, api.TargetRequest) (*api.Result, error)
	}{
		{name: "stop", op: (*Daemon).Stop},
		{name: "delete", op: (*Daemon).Delete},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := runningDaemon(t)
			spec := fmt.Sprintf("auto:%d-%d", 27200+20*i, 27219+20*i)
			st := mustStart(t, d, socketSleeper(t, "web", 3, spec, config.SocketShared))
			ports := portsOf(d, "web")
			if len(ports) != 3 || ports[0] != ports[1] || ports[1] != ports[2] {
				t.Fatalf("ports %v; want one port for the three instances", ports)
			}
			port := ports[0]
			inodes := heldInodes(d, "web")
			if len(inodes) != 1 {
				t.Fatalf("sockets held %v; want one", inodes)
			}
			for k, pid := range pidsOf(d, "web") {
				if got := fdInode(pid, 3); got != inodes[port] {
					t.Fatalf("instance %d has socket %d at fd 3; want the shared %d", k, got, inodes[port])
				}
			}
			for k, id := range st.IDs {
				if _, err := tt.op(d, ctx, api.TargetRequest{Target: strconv.Itoa(id)}); err != nil {
					t.Fatal(err)
				}
				last := k == len(st.IDs)-1
				err := bindErr(port)
				if !last {
					if !errors.Is(err, syscall.EADDRINUSE) {
						t.Fatalf("after %s of %d of 3 instances, binding port %d: %v; want it still held", tt.name, k+1, port, err)
					}
					if got := heldInodes(d, "web"); got[port] != inodes[port] {
						t.Fatalf("after %s of %d of 3 instances the socket is %v; want %d", tt.name, k+1, got, inodes[port])
					}
					continue
				}
				if err != nil {
					t.Fatalf("after %s of the last instance, binding port %d: %v; want it free", tt.name, port, err)
				}
			}
		})
	}
}

// A stopped instance of a shared app that is started again rejoins the others' socket.
func TestSharedSocketInstanceRejoins(t *testing.T) {
	ctx := context.Background()
	d := runningDaemon(t)
	st := mustStart(t, d, socketSleeper(t, "web", 2, "auto:27300-27319", config.SocketShared))
	port := portsOf(d, "web")[0]
	inode := heldInodes(d, "web")[port]
	target := api.TargetRequest{Target: strconv.Itoa(st.IDs[0])}
	if _, err := d.Stop(ctx, target); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Restart(ctx, target); err != nil {
		t.Fatal(err)
	}
	waitOnlineNew(t, d, "web", 2, nil)
	if got := portsOf(d, "web"); !slices.Equal(got, []int{port, port}) {
		t.Fatalf("ports %v; want both on %d", got, port)
	}
	for k, pid := range pidsOf(d, "web") {
		if got := fdInode(pid, 3); got != inode {
			t.Fatalf("instance %d has socket %d at fd 3; want the shared %d", k, got, inode)
		}
	}
}

// A start, update or reload that fails leaves no socket open and no port bound: what its
// allocation bound is closed when the operation ends.
func TestFailedOperationLeavesNoSocket(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T, d *Daemon)
		op    func(d *Daemon) error
		want  string // what the error says
		free  []int  // ports that must be bindable afterwards
	}{
		{
			name: "start on a fixed range whose last port a stranger holds",
			op: func(d *Daemon) error {
				_, err := d.Start(ctx, api.StartRequest{App: socketSleeper(t, "web", 3, "27400-27402", config.SocketInstance)})
				return err
			},
			want: "27402", free: []int{27400, 27401},
		},
		{
			name: "shared start on a taken port",
			op: func(d *Daemon) error {
				_, err := d.Start(ctx, api.StartRequest{App: socketSleeper(t, "web", 2, "27402", config.SocketShared)})
				return err
			},
			want: "27402",
		},
		{
			name: "start on an auto range with too few free ports",
			op: func(d *Daemon) error {
				_, err := d.Start(ctx, api.StartRequest{App: socketSleeper(t, "web", 3, "auto:27400-27402", config.SocketInstance)})
				return err
			},
			want: "Not enough free ports", free: []int{27400, 27401},
		},
		{
			name: "start whose name is taken",
			setup: func(t *testing.T, d *Daemon) {
				mustStart(t, d, sleeper(t, "web", 1, ""))
			},
			op: func(d *Daemon) error {
				_, err := d.Start(ctx, api.StartRequest{App: socketSleeper(t, "web", 2, "27400-27401", config.SocketInstance)})
				return err
			},
			want: "already exists", free: []int{27400, 27401},
		},
		{
			name: "update onto a range a stranger holds part of",
			setup: func(t *testing.T, d *Daemon) {
				mustStart(t, d, socketSleeper(t, "web", 1, "27410", config.SocketInstance))
			},
			op: func(d *Daemon) error {
				_, err := d.Start(ctx, api.StartRequest{App: socketSleeper(t, "web", 3, "27400-27402", config.SocketInstance), IfExists: "update"})
				return err
			},
			want: "27402", free: []int{27400, 27401},
		},
		{
			name: "reload onto a range a stranger holds part of",
			setup: func(t *testing.T, d *Daemon) {
				mustStart(t, d, socketSleeper(t, "web", 3, "27410-27412", config.SocketInstance))
			},
			op: func(d *Daemon) error {
				_, err := d.Reload(ctx, api.TargetRequest{Target: "web", Port: "27400-27402"})
				return err
			},
			want: "27402", free: []int{27400, 27401},
		},
		{
			name: "reload whose new instances are never ready",
			setup: func(t *testing.T, d *Daemon) {
				mustStart(t, d, socketSleeper(t, "web", 2, "27410-27411", config.SocketInstance))
			},
			op: func(d *Daemon) error {
				_, err := d.Reload(ctx, api.TargetRequest{Target: "web", Port: "27400-27401", WaitTimeout: api.Duration(300 * time.Millisecond)})
				return err
			},
			want: "did not accept a connection", free: []int{27400, 27401},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stranger, err := net.Listen("tcp", ":27402")
			if err != nil {
				t.Fatal(err)
			}
			defer stranger.Close()
			d := runningDaemon(t)
			if tt.setup != nil {
				tt.setup(t, d)
			}
			heldBefore := heldInodes(d, "web")
			fdsBefore := openSockets(t)
			err = tt.op(d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want one saying %q", err, tt.want)
			}
			for _, p := range tt.free {
				if err := bindErr(p); err != nil {
					t.Errorf("port %d after the failure: %v; want it free", p, err)
				}
			}
			if got := heldInodes(d, "web"); !mapsEqual(got, heldBefore) {
				t.Errorf("sockets held after the failure %v; want those before, %v", got, heldBefore)
			}
			pollFor(t, "the daemon's sockets back to their count before the operation", 5*time.Second,
				func() bool { return openSockets(t) <= fdsBefore })
		})
	}
}

// Scaling a socket app binds the new instances' ports and closes the removed ones'; the
// instances that stay keep their sockets.
func TestSocketScale(t *testing.T) {
	ctx := context.Background()
	d := runningDaemon(t)
	mustStart(t, d, socketSleeper(t, "web", 2, "auto:27500-27519", config.SocketInstance))
	before := heldInodes(d, "web")
	ports := portsOf(d, "web")
	if _, err := d.Restart(ctx, api.TargetRequest{Target: "web", Instances: 3}); err != nil {
		t.Fatal(err)
	}
	up := heldInodes(d, "web")
	grown := portsOf(d, "web")
	if len(up) != 3 || len(grown) != 3 {
		t.Fatalf("after scaling to 3: ports %v, sockets %v", grown, up)
	}
	for _, p := range ports {
		if up[p] != before[p] {
			t.Errorf("port %d's socket changed from %d to %d on scale up", p, before[p], up[p])
		}
	}
	if _, err := d.Restart(ctx, api.TargetRequest{Target: "web", Instances: 1}); err != nil {
		t.Fatal(err)
	}
	down := heldInodes(d, "web")
	if len(down) != 1 || down[grown[0]] != up[grown[0]] {
		t.Fatalf("after scaling to 1: sockets %v; want only port %d's, %d", down, grown[0], up[grown[0]])
	}
	for _, p := range grown[1:] {
		if err := bindErr(p); err != nil {
			t.Errorf("port %d of a removed instance: %v; want it free", p, err)
		}
	}
}
