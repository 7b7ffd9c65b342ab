package notify

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const waitLimit = 10 * time.Second

type received struct {
	Sender
	Message
}

// serving is a Server whose Serve runs in a goroutine, recording what handle is given.
type serving struct {
	*Server
	got  chan received
	done chan struct{} // closed when Serve returns
}

func startServer(t *testing.T, home string) *serving {
	t.Helper()
	s, err := Listen(home)
	if err != nil {
		t.Fatalf("Listen(%q): %v", home, err)
	}
	sv := &serving{Server: s, got: make(chan received, 4096), done: make(chan struct{})}
	go func() {
		defer close(sv.done)
		s.Serve(func(from Sender, m Message) { sv.got <- received{from, m} })
	}()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case <-sv.done:
		case <-time.After(waitLimit):
			t.Errorf("Serve did not return after Close")
		}
	})
	return sv
}

func (sv *serving) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-sv.got:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("no datagram handled within %v (dropped %d)", waitLimit, sv.Dropped())
		return received{}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startChild runs the test binary as an app that sends msg to addr and lives until the returned
// stop is called (or the test ends).
func startChild(t *testing.T, addr, msg string) (pid int, stop func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=send", "NOTIFY_SOCKET="+addr, childMessageEnv+"="+msg)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v", cmd.Process.Pid, err)
		}
	}
	t.Cleanup(func() {
		if !stopped { // a failed test left it running
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd.Process.Pid, stop
}

func TestServeSeesTheChildsCredentials(t *testing.T) {
	sv := startServer(t, t.TempDir())
	tests := []struct {
		name string
		msg  string
		want Message
	}{
		{"ready", "READY=1", Message{Ready: true}},
		{"status then ready", "STATUS=Listening on :8080\nREADY=1", Message{Ready: true, Status: strPtr("Listening on :8080")}},
		{"stopping", "STOPPING=1", Message{Stopping: true}},
		{"watchdog ping", "WATCHDOG=1", Message{Watchdog: true}},
		{"claimed MAINPID is content, not the sender", "MAINPID=1\nREADY=1", Message{Ready: true, MainPID: 1}},
	}
	// All children run at once (each is a re-exec of this binary, slow to start under -race);
	// their datagrams are told apart by the sender pid the kernel reports.
	pids := make([]int, len(tests))
	for i, tc := range tests {
		var stop func()
		pids[i], stop = startChild(t, sv.Address(), tc.msg)
		defer stop()
	}
	byPid := map[int]received{}
	for range tests {
		r := sv.next(t)
		byPid[r.Pid] = r
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := byPid[pids[i]]
			if !ok {
				t.Fatalf("no datagram with the child's pid %d; senders seen: %v (the test is %d)", pids[i], keys(byPid), os.Getpid())
			}
			if r.Uid != os.Getuid() || r.Gid != os.Getgid() {
				t.Errorf("sender uid/gid %d/%d, want %d/%d", r.Uid, r.Gid, os.Getuid(), os.Getgid())
			}
			if !sameMessage(r.Message, tc.want) {
				t.Errorf("message %s, want %s", describe(r.Message), describe(tc.want))
			}
		})
	}
}

func keys(m map[int]received) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func countFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestServeClosesPassedFDs(t *testing.T) {
	sv := startServer(t, t.TempDir())
	tests := []struct {
		name    string
		msg     string
		fds     int
		handled bool
	}{
		{"fd store request", "FDSTORE=1\nREADY=1", 1, true},
		{"many fds", "FDSTORE=1", 100, true},
		{"most fds one datagram can carry", "FDSTORE=1", 253, true},
		{"unparsable datagram", "no equals sign", 3, false},
		{"datagram too long", "STATUS=" + strings.Repeat("x", MaxDatagram), 2, false},
		// Also shows a hostile datagram does not stop the server: this one follows the drops.
		{"datagram of exactly the limit", "STATUS=" + strings.Repeat("x", MaxDatagram-7), 1, true},
	}
	// A raw socket: Go's net refuses WriteMsgUnix on a connected datagram socket.
	sender, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sender)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := countFDs(t)
			dropped := sv.Dropped()
			// Pass write ends of pipes: once every copy of a write end is closed, the read end
			// reads EOF, which proves the server closed the copy it received.
			readers := make([]*os.File, tc.fds)
			writers := make([]*os.File, tc.fds)
			writeFDs := make([]int, tc.fds)
			for i := range readers {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				defer w.Close()
				readers[i], writers[i], writeFDs[i] = r, w, int(w.Fd())
			}
			to := &unix.SockaddrUnix{Name: sv.Address()}
			if err := unix.Sendmsg(sender, []byte(tc.msg), unix.UnixRights(writeFDs...), to, 0); err != nil {
				t.Fatalf("sending %d fds: %v", tc.fds, err)
			}
			for _, w := range writers {
				_ = w.Close()
			}
			if tc.handled {
				if r := sv.next(t); r.Pid != os.Getpid() {
					t.Errorf("sender pid %d, want %d", r.Pid, os.Getpid())
				}
			} else {
				waitFor(t, "the datagram to be dropped", func() bool { return sv.Dropped() == dropped+1 })
			}
			for i, r := range readers {
				_ = r.SetReadDeadline(time.Now().Add(waitLimit))
				if n, err := r.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
					t.Fatalf("pipe %d: read %d, %v; want EOF (the server kept the passed write end open)", i, n, err)
				}
				_ = r.Close()
			}
			if after := countFDs(t); after != before {
				t.Errorf("open fds %d before, %d after: the server kept passed fds", before, after)
			}
		})
	}
}

func TestTakeControl(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	dupW, err := unix.FcntlInt(w.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	creds := func(pid int32) []byte { return unix.UnixCredentials(&unix.Ucred{Pid: pid, Uid: 7, Gid: 8}) }
	tests := []struct {
		name  string
		oob   []byte
		want  Sender
		known bool
	}{
		{"credentials", creds(42), Sender{Pid: 42, Uid: 7, Gid: 8}, true},
		{"no control data", nil, Sender{}, false},
		{"pid 0: sender outside our pid namespace", creds(0), Sender{}, false},
		{"only fds", unix.UnixRights(dupW), Sender{}, false},
		{"credentials after garbage-free rights", append(unix.UnixRights(), creds(5)...), Sender{Pid: 5, Uid: 7, Gid: 8}, true},
		{"short garbage", []byte{1, 2, 3}, Sender{}, false},
		{"header claiming more than there is", append(creds(9)[:unix.SizeofCmsghdr], 0xff), Sender{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, known := takeControl(tc.oob)
			if known != tc.known || (known && got != tc.want) {
				t.Fatalf("takeControl = %+v, %v; want %+v, %v", got, known, tc.want, tc.known)
			}
		})
	}
	// The "only fds" case must have closed the duplicate it was given.
	if _, err := unix.FcntlInt(uintptr(dupW), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("fd %d passed as SCM_RIGHTS is still open after takeControl (err %v)", dupW, err)
	}
}

func TestAddressFor(t *testing.T) {
	// home + "/notify.sock" is len(home)+12 bytes; with its NUL it must fit in 108.
	homeOfLen := func(n int) string { return "/" + strings.Repeat("h", n-1) }
	abstract := regexp.MustCompile(`^@pmdaemon-notify-[0-9a-f]{16}$`)
	tests := []struct {
		name string
		home string
		file bool
	}{
		{"short home", "/home/u/.pmdaemon", true},
		{"path of 107 bytes: fits with its NUL", homeOfLen(107 - 12), true},
		{"path of 108 bytes: no room for the NUL", homeOfLen(108 - 12), false},
		{"very long home", homeOfLen(300), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, file := addressFor(tc.home)
			if file != tc.file {
				t.Fatalf("addressFor(%d-byte home) = %q, file %v; want file %v", len(tc.home), addr, file, tc.file)
			}
			if file && addr != filepath.Join(tc.home, SocketName) {
				t.Errorf("file address %q, want %q", addr, filepath.Join(tc.home, SocketName))
			}
			if !file && !abstract.MatchString(addr) {
				t.Errorf("abstract address %q does not match %s", addr, abstract)
			}
		})
	}
	a1, _ := addressFor(homeOfLen(200))
	a2, _ := addressFor(homeOfLen(201))
	a1again, _ := addressFor(homeOfLen(200))
	if a1 == a2 || a1 != a1again {
		t.Errorf("abstract names must be stable per home and differ between homes: %q %q %q", a1, a2, a1again)
	}
}

func TestListenAbstractWhenHomeIsLong(t *testing.T) {
	home := filepath.Join(t.TempDir(), strings.Repeat("long-home-", 12))
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if len(filepath.Join(home, SocketName)) < sunPathMax {
		t.Fatalf("test home %q is not long enough", home)
	}
	sv := startServer(t, home)
	if !strings.HasPrefix(sv.Address(), "@pmdaemon-notify-") {
		t.Fatalf("Address() = %q, want an abstract socket", sv.Address())
	}
	if _, err := os.Lstat(filepath.Join(home, SocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a socket file was made in the long home: %v", err)
	}
	pid, stop := startChild(t, sv.Address(), "READY=1")
	defer stop()
	if r := sv.next(t); r.Pid != pid || !r.Ready {
		t.Errorf("got %+v, want READY=1 from pid %d", r, pid)
	}
	// A second daemon on the same home must not steal the name.
	if s2, err := Listen(home); err == nil {
		s2.Close()
		t.Fatalf("second Listen on %s succeeded", home)
	} else if !strings.Contains(err.Error(), sv.Address()) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Listen error %q should name %s as in use", err, sv.Address())
	}
}

func TestListenFileSocket(t *testing.T) {
	home := t.TempDir()
	sv := startServer(t, home)
	path := filepath.Join(home, SocketName)
	if sv.Address() != path {
		t.Fatalf("Address() = %q, want %q", sv.Address(), path)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o666 {
		t.Errorf("%s has mode %v, want a socket with 0666", path, fi.Mode())
	}
	raw, err := sv.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var fcntlErr error
	if err := raw.Control(func(fd uintptr) { flags, fcntlErr = unix.FcntlInt(fd, unix.F_GETFD, 0) }); err != nil || fcntlErr != nil {
		t.Fatal(err, fcntlErr)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("the notify socket is not close-on-exec: apps and plugins would inherit it")
	}
	if err := Send(path, "READY=1"); err != nil {
		t.Fatal(err)
	}
	if r := sv.next(t); r.Pid != os.Getpid() || !r.Ready {
		t.Errorf("got %+v, want READY=1 from this process", r)
	}
}

func TestListenRelativeHomeGivesAnAbsoluteAddress(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("home", 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := Listen("home")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if want := filepath.Join(dir, "home", SocketName); s.Address() != want {
		t.Errorf("Address() = %q, want %q (NOTIFY_SOCKET must be absolute for apps in other directories)", s.Address(), want)
	}
}

func TestListenWhatIsAlreadyAtThePath(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string // "" when Listen must succeed
	}{
		{"nothing", func(t *testing.T, path string) {}, ""},
		{"stale socket of a killed daemon", func(t *testing.T, path string) {
			c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			c.Close() // a datagram socket leaves its file behind, as after SIGKILL
		}, ""},
		{"socket a running process receives on", func(t *testing.T, path string) {
			c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
		}, "in use"},
		{"regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("user data"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is not a socket"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "is not a socket"},
		{"symlink", func(t *testing.T, path string) {
			if err := os.Symlink("/dev/null", path); err != nil {
				t.Fatal(err)
			}
		}, "is not a socket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			path := filepath.Join(home, SocketName)
			tc.prepare(t, path)
			before, _ := os.Lstat(path)
			s, err := Listen(home)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Listen: %v", err)
				}
				defer s.Close()
				done := make(chan received, 1)
				go s.Serve(func(from Sender, m Message) { done <- received{from, m} })
				if err := Send(s.Address(), "READY=1"); err != nil {
					t.Fatal(err)
				}
				select {
				case r := <-done:
					if !r.Ready {
						t.Errorf("got %+v, want READY=1", r)
					}
				case <-time.After(waitLimit):
					t.Fatal("the re-made socket received nothing")
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("Listen succeeded over a %s", tc.name)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q should name %s and say %q", err, path, tc.wantErr)
			}
			after, statErr := os.Lstat(path)
			if statErr != nil || !os.SameFile(before, after) {
				t.Errorf("what was at %s was removed or replaced (%v)", path, statErr)
			}
		})
	}
}

func TestCloseEndsServe(t *testing.T) {
	tests := []struct {
		name       string
		serveFirst bool
	}{
		{"while Serve blocks", true},
		{"before Serve starts", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			goroutines := runtime.NumGoroutine()
			home := t.TempDir()
			s, err := Listen(home)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			serve := func() { defer close(done); s.Serve(func(Sender, Message) {}) }
			if tc.serveFirst {
				go serve()
				waitFor(t, "Serve to start", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.serving })
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if !tc.serveFirst {
				go serve()
			}
			select {
			case <-done:
			case <-time.After(waitLimit):
				t.Fatal("Serve did not return after Close")
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(home, SocketName)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Close left the socket file: %v", err)
			}
			waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines })
		})
	}
}

func TestCloseLeavesASocketItDidNotMake(t *testing.T) {
	home := t.TempDir()
	s, err := Listen(home)
	if err != nil {
		t.Fatal(err)
	}
	path := s.Address()
	// A newer daemon replaced the file (ours was removed by hand, say).
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("Close removed the other process's socket: %v", err)
	}
}

func TestBurstOfDatagrams(t *testing.T) {
	sv := startServer(t, t.TempDir())
	const senders, each = 10, 100
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for range senders {
		wg.Go(func() {
			for range each {
				if err := Send(sv.Address(), "READY=1\nSTATUS=burst"); err != nil {
					errs <- err
				}
			}
		})
	}
	received := 0
	waitFor(t, "every datagram to be received or dropped", func() bool {
		for {
			select {
			case <-sv.got:
				received++
				continue
			default:
			}
			return uint64(received)+sv.Dropped() >= senders*each
		}
	})
	elapsed := time.Since(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Send: %v", err)
	}
	if uint64(received)+sv.Dropped() != senders*each {
		t.Errorf("received %d + dropped %d != sent %d", received, sv.Dropped(), senders*each)
	}
	// Senders block while the queue is full rather than lose datagrams, so every one arrives.
	if received != senders*each {
		t.Errorf("received %d of %d (dropped %d)", received, senders*each, sv.Dropped())
	}
	t.Logf("%d datagrams from %d concurrent senders handled in %v", received, senders, elapsed)
}

func TestSend(t *testing.T) {
	sv := startServer(t, t.TempDir())
	tests := []struct {
		name    string
		addr    string
		wantErr string // "" when the datagram must arrive
	}{
		{"file socket", sv.Address(), ""},
		{"relative path", "notify.sock", `"notify.sock" is neither an absolute path nor an @abstract name`},
		{"empty", "", `"" is neither`},
		{"nobody there", filepath.Join(t.TempDir(), "none.sock"), "none.sock"},
		{"abstract name nobody holds", "@pmdaemon-notify-test-nobody", "@pmdaemon-notify-test-nobody"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Send(tc.addr, "READY=1")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if r := sv.next(t); !r.Ready || r.Pid != os.Getpid() {
					t.Errorf("got %+v, want READY=1 from this process", r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Send(%q) = %v, want an error containing %q", tc.addr, err, tc.wantErr)
			}
		})
	}
}

// BenchmarkServe is the cost of one datagram from send to handle, one sender at a time.
func BenchmarkServe(b *testing.B) {
	s, err := Listen(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(func(Sender, Message) { got <- struct{}{} }) }()
	defer func() { s.Close(); <-done }()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.Address(), Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := []byte("READY=1\nSTATUS=Listening on 127.0.0.1:8080")
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}
