package sockets

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// deadPid is the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// acceptOne makes a connection to the port and accepts it on the listener's socket: the
// proof that this copy of the socket serves the port.
func acceptOne(t *testing.T, l *Listener) {
	t.Helper()
	f, err := l.Dup()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr, _, dual, err := listenerAddr(l)
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.DialTimeout("tcp", probeTarget(addr, dual, l.Port), 5*time.Second)
	if err != nil {
		t.Fatalf("connecting to port %d: %v", l.Port, err)
	}
	defer client.Close()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	server, err := ln.Accept()
	if err != nil {
		t.Fatalf("accepting on the recovered socket of port %d: %v", l.Port, err)
	}
	server.Close()
}

// After the daemon lost its copy (a SIGKILL closes it), the socket is taken back from an
// instance that still has it, and it serves the port: it accepts, and keeps the port after
// the instance is gone too.
func TestRecoverFromARunningInstance(t *testing.T) {
	for _, bind := range []string{"", "127.0.0.1", "::1"} {
		t.Run(fmt.Sprintf("%q", bind), func(t *testing.T) {
			needIPv6(t, bind)
			l, err := Listen(bind, 0)
			if err != nil {
				t.Fatal(err)
			}
			app := startChild(t, "hold", l.File)
			port, inode := l.Port, l.Inode
			l.Close()

			// The first pids have exited or lack the socket: the one that has it wins.
			got, err := Recover([]int{deadPid(t), os.Getpid(), app.pid()}, inode, port, bind)
			if err != nil {
				t.Fatalf("Recover: %v", err)
			}
			defer got.Close()
			if got.Inode != inode || got.Port != port || got.Bind != bind {
				t.Fatalf("recovered %+v, want inode %d port %d bind %q", got, inode, port, bind)
			}
			acceptOne(t, got)
			app.stop()
			acceptOne(t, got)
			if again, err := Listen(bind, port); err == nil {
				again.Close()
				t.Fatalf("port %d could be bound again while the recovered socket holds it", port)
			}
		})
	}
}

// When no process has the socket, the error names the port, the inode and the pids looked
// in, and why a process could not be looked in.
func TestRecoverErrors(t *testing.T) {
	l := listen(t, "127.0.0.1", 0)
	app := startChild(t, "hold", l.File)
	dead := deadPid(t)
	tests := []struct {
		name    string
		pids    []int
		inode   uint64
		port    int
		bind    string
		wantErr []string
	}{
		{"another inode", []int{app.pid()}, l.Inode + 1000000, l.Port, "127.0.0.1",
			[]string{fmt.Sprintf("port %d: socket inode %d is not open in any of pids [%d]", l.Port, l.Inode+1000000, app.pid())}},
		{"no pids", nil, l.Inode, l.Port, "127.0.0.1",
			[]string{fmt.Sprintf("socket inode %d is not open in any of pids []", l.Inode)}},
		{"an exited process", []int{dead}, l.Inode, l.Port, "127.0.0.1",
			[]string{fmt.Sprintf("cannot take the listening socket of port %d from pid %d", l.Port, dead), "the process has exited"}},
		{"the wrong port", []int{app.pid()}, l.Inode, l.Port + 1, "127.0.0.1",
			[]string{fmt.Sprintf("it listens on port %d, not %d", l.Port, l.Port+1), fmt.Sprintf("pid %d", app.pid())}},
		{"a bad bind", []int{app.pid()}, l.Inode, l.Port, "nope",
			[]string{`bind address "nope" is not an IP address`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Recover(tt.pids, tt.inode, tt.port, tt.bind)
			if err == nil {
				got.Close()
				t.Fatal("Recover succeeded; want an error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// A daemon without the right to another user's process says which process and why, rather
// than that the socket is nowhere. As root the test runs Recover as nobody against itself.
func TestRecoverWithoutPermission(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: an unprivileged run has no process of another user that holds a socket of this test")
	}
	l := listen(t, "127.0.0.1", 0)
	out := runAsNobody(t, "recover", "PID="+strconv.Itoa(os.Getpid()),
		"INODE="+strconv.FormatUint(l.Inode, 10), "PORT="+strconv.Itoa(l.Port))
	want := fmt.Sprintf("cannot take the listening socket of port %d from pid %d", l.Port, os.Getpid())
	if !strings.Contains(out, want) || !strings.Contains(out, "permission denied") || !strings.Contains(out, "ptrace access") {
		t.Fatalf("as nobody, Recover printed:\n%s\nwant %q, permission denied and the ptrace hint", out, want)
	}
	t.Logf("as nobody: %s", out)
}
