package faults

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// portHolder is a listener that is not pmdaemon's, on a port an app needs.
type portHolder struct {
	pid     int
	release func()
}

// holdPort binds port the way another program would: "test-process" listens in this test
// process on 127.0.0.1; "foreign-process" runs a python3 listener on 0.0.0.0 (a child that does
// not carry the home in its environment, so it is no app process). Both set SO_REUSEADDR, as
// servers do: the dead instance's connections may leave the port in TIME_WAIT. Either is released at
// cleanup if the test has not released it.
func holdPort(t *testing.T, how string, port int) portHolder {
	t.Helper()
	switch how {
	case "test-process":
		// A SIGKILLed instance is reported dead once its main thread is a zombie, but its other
		// threads may close its files (the listening socket) a moment later: binding is
		// retried for a second, well inside the restart delays the tests give.
		var l net.Listener
		var err error
		deadline := time.Now().Add(time.Second)
		for {
			l, err = net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
			if err == nil || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("the test cannot take port %d: %v (was the instance restarted before its restart delay ran out?)", port, err)
		}
		t.Cleanup(func() { l.Close() })
		return portHolder{os.Getpid(), func() { l.Close() }}
	case "foreign-process":
		cmd := exec.Command(python3(t), "-c", `import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
deadline = time.time() + 1
while True:
    try:
        s.bind(("0.0.0.0", int(sys.argv[1])))
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.01)
s.listen()
print("listening", flush=True)
time.sleep(1000)
`, strconv.Itoa(port))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		release := func() {
			cmd.Process.Kill()
			cmd.Wait()
		}
		t.Cleanup(release)
		line := make(chan string, 1)
		go func() {
			l, _ := bufio.NewReader(out).ReadString('\n')
			line <- l
		}()
		select {
		case l := <-line:
			if strings.TrimSpace(l) != "listening" {
				release()
				t.Fatalf("the python3 listener cannot take port %d: %q %s", port, l, stderr.String())
			}
		case <-time.After(15 * time.Second):
			release()
			t.Fatalf("the python3 listener did not take port %d within 15s", port)
		}
		return portHolder{cmd.Process.Pid, release}
	}
	t.Fatalf("holdPort: unknown holder %q", how)
	return portHolder{}
}

// A fixed-port app crashes, and while it waits out its restart delay another process takes its
// port. The daemon must not crash-loop it on EADDRINUSE and hide why: the instance ends errored
// with a reason that names the port and the holder, `info` shows it, and `restart` while the
// port is still taken fails with that message (today it prints success). Once the port is free
// again, `restart` brings it back on its port.
func TestPortsTakenWhileDownFixedPort(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"test-process", "foreign-process"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			h := harness.NewHome(t)
			p := harness.FreePorts(t, 1)
			h.OK("start", harness.Echo, "--name", "fixed", "--port", strconv.Itoa(p), "--restart-delay", "3s", "--max-restarts", "3")
			r0 := harness.Rows(h.WaitList(10*time.Second, "fixed online", harness.AllOnline("fixed", 1)), "fixed")[0]
			harness.WaitWho(t, p, "fixed", 0)
			harness.Sigkill(t, r0.Pid)
			harness.WaitDead(t, 5*time.Second, "the instance to die", r0.Pid)
			hold := holdPort(t, how, p)

			inUse := fmt.Sprintf("Port %d is already in use by another process", p)
			holder := fmt.Sprintf("pid %d", hold.pid)
			rows, _ := waitRows(t, h, 40*time.Second, "fixed errored", func(rows []api.Instance) bool {
				r := harness.Rows(rows, "fixed")
				return len(r) == 1 && r[0].Status == "errored"
			})
			if r := harness.Rows(rows, "fixed"); len(r) == 1 {
				if !strings.Contains(r[0].Reason, inUse) || !strings.Contains(r[0].Reason, holder) {
					t.Errorf("list: reason %q, want it to say %q and name the holder (%s)", r[0].Reason, inUse, holder)
				}
				if r[0].Pid != 0 {
					t.Errorf("the errored instance has pid %d", r[0].Pid)
				}
			}
			if out := h.OK("info", "fixed"); !strings.Contains(out, inUse) || !strings.Contains(out, holder) {
				t.Errorf("info does not say why fixed is errored (want %q and %q):\n%s", inUse, holder, out)
			}

			// restart while the port is still taken reports the failure.
			res := h.Run("restart", "fixed")
			if res.Code == 0 {
				t.Errorf("restart fixed with port %d held by %s exited 0: %q", p, holder, res.Stdout)
			} else {
				harness.ErrLike(t, res.Stderr, inUse, holder)
			}
			if r := harness.Rows(h.List(), "fixed"); len(r) != 1 || r[0].Status == "online" || r[0].Pid != 0 {
				t.Errorf("after the failed restart: %s", rowsText(r))
			}
			if ps := h.AppProcs(); len(ps) != 0 {
				t.Errorf("app processes with the port taken: %v", ps)
			}

			// Once the port is free, restart brings it back on its port.
			hold.release()
			h.OK("restart", "fixed")
			rows = h.WaitList(15*time.Second, "fixed online again", harness.AllOnline("fixed", 1))
			r := harness.Rows(rows, "fixed")[0]
			if port(r) != p {
				t.Errorf("fixed is back on port %d, want %d", port(r), p)
			}
			if w := harness.WaitWho(t, p, "fixed", 0); w.Pid != r.Pid {
				t.Errorf("port %d answered by pid %d, listed %d", p, w.Pid, r.Pid)
			}
		})
	}
}

// An app on an auto: range crashes and another process takes its port meanwhile: the app moves
// to another free port of its range (answered there by its pid) and never goes back to the
// taken port, through later crashes and a restart. Today it is handed the taken port again and
// crash-loops on it until errored, with free ports left in its range.
func TestPortsTakenWhileDownAutoRange(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	a := harness.FreePorts(t, 4)
	lo, hi := a, a+3
	h.OK("start", harness.Echo, "--name", "mover", "--port", fmt.Sprintf("auto:%d-%d", lo, hi), "--restart-delay", "2s")
	prev := harness.Rows(h.WaitList(10*time.Second, "mover online", harness.AllOnline("mover", 1)), "mover")[0]
	taken := port(prev)
	harness.WaitWho(t, taken, "mover", 0)
	harness.Sigkill(t, prev.Pid)
	harness.WaitDead(t, 5*time.Second, "the instance to die", prev.Pid)
	holdPort(t, "test-process", taken)

	back := 0 // list samples that show mover on the taken port
	defer func() {
		if back > 0 {
			t.Errorf("mover was listed on the taken port %d in %d samples", taken, back)
		}
	}()
	for step, how := range []string{"the crash", "a second crash", "a third crash", "restart"} {
		switch how {
		case "a second crash", "a third crash":
			harness.Sigkill(t, prev.Pid)
		case "restart":
			h.OK("restart", "mover")
		}
		rows, ok := waitRows(t, h, 30*time.Second, fmt.Sprintf("mover running again after %s", how), func(rows []api.Instance) bool {
			r := harness.Rows(rows, "mover")
			// Until its restart delay is over the instance still holds the port it had; it
			// must never run there again.
			if len(r) == 1 && port(r[0]) == taken && r[0].Pid != 0 {
				back++
			}
			return len(r) == 1 && r[0].Status == "online" && r[0].Pid != 0 && r[0].Pid != prev.Pid && port(r[0]) != taken
		})
		if !ok {
			return
		}
		r := harness.Rows(rows, "mover")[0]
		if p := port(r); p < lo || p > hi {
			t.Errorf("after %s mover is on port %d, outside its range %d-%d", how, p, lo, hi)
		}
		if w := harness.WaitWho(t, port(r), "mover", 0); w.Pid != r.Pid {
			t.Errorf("after %s port %d is answered by pid %d, listed %d", how, port(r), w.Pid, r.Pid)
		}
		t.Logf("step %d: after %s mover runs as pid %d on port %d (taken: %d)", step, how, r.Pid, port(r), taken)
		prev = r
	}
	// And it stays where it is: no crash loop, no move back.
	harness.HoldsFor(t, h.API(), 3*time.Second, "mover stays put", func(rows []api.Instance) string {
		r := harness.Rows(rows, "mover")
		if len(r) != 1 || r[0].Status != "online" || r[0].Pid != prev.Pid || port(r[0]) != port(prev) {
			return fmt.Sprintf("mover left pid %d on port %d", prev.Pid, port(prev))
		}
		return ""
	})
}
