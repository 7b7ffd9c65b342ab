package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// SIGTERM or SIGINT to the daemon is a graceful shutdown: every instance is stopped, in
// parallel and each within its kill timeout, the state is saved with them wanted on their
// ports, the daemon removes its socket and pid file and exits, and the next CLI call brings
// them all back on the same ports.
func TestDaemonSignalShutdown(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			h := harness.NewHome(t)
			web, slow := harness.FreePorts(t, 2), harness.FreePorts(t, 4)
			const kt = 1500 * time.Millisecond
			// web exits on SIGTERM at once; slow ignores it and is SIGKILLed at its kill timeout.
			h.OK("start", harness.Echo, "--name", "web", "--instances", "2", "--port", fmt.Sprintf("%d-%d", web, web+1))
			h.OK("start", `sh -c 'trap "" TERM; while true; do sleep 0.1; done'`, "--name", "slow", "--instances", "2",
				"--port", fmt.Sprintf("auto:%d-%d", slow, slow+3), "--kill-timeout", kt.String())
			before := h.WaitList(10*time.Second, "web and slow online", func(rows []api.Instance) bool {
				return harness.AllOnline("web", 2)(rows) && harness.AllOnline("slow", 2)(rows)
			})
			for _, r := range harness.Rows(before, "web") {
				harness.WaitWho(t, port(r), "web", r.Index)
			}
			procs := h.AppProcs()
			d := oneDaemon(t, h)

			begin := time.Now()
			if err := syscall.Kill(d, sig); err != nil {
				t.Fatal(err)
			}
			harness.WaitDead(t, 15*time.Second, "the daemon to exit", d)
			took := time.Since(begin)
			t.Logf("%v: the daemon stopped 4 instances and exited in %s (slow's kill timeout %s)", sig, took.Round(time.Millisecond), kt)
			if took < kt {
				t.Errorf("the daemon exited after %s, before slow's kill timeout %s: it did not wait for it", took, kt)
			}
			if took > 2*kt {
				t.Errorf("the daemon took %s to exit: not the kill timeout %s of instances stopped in parallel", took, kt)
			}
			for _, p := range procs {
				if harness.Alive(p) {
					t.Errorf("app process %d alive after the daemon exited", p)
				}
			}
			if ps := h.Processes(); len(ps) != 0 {
				t.Errorf("processes of the home after the daemon exited: %v", ps)
			}
			for _, f := range []string{"daemon.sock", "daemon.pid"} {
				if _, err := os.Stat(filepath.Join(h.Dir, f)); err == nil {
					t.Errorf("%s left behind by a graceful shutdown", f)
				}
			}
			if log := h.DaemonLog(); !strings.Contains(log, "daemon stopped") {
				t.Errorf("daemon.log does not say the daemon stopped:\n%s", log)
			}
			f, err := stateFile(h.Dir)
			if err != nil {
				t.Fatal(err)
			}
			prev := harness.ByID(before)
			for _, a := range f.Apps {
				for _, in := range a.Instances {
					b := prev[in.ID]
					if !in.Wanted || in.Status != "online" || in.Port != port(b) || in.Pid != 0 {
						t.Errorf("state.json after shutdown: %s %+v; want wanted, online, port %d, no pid", a.Config.Name, in, port(b))
					}
				}
			}

			h.List() // the next daemon
			after := h.WaitList(15*time.Second, "web and slow back", func(rows []api.Instance) bool {
				return harness.AllOnline("web", 2)(rows) && harness.AllOnline("slow", 2)(rows) && len(rows) == 4
			})
			for _, r := range after {
				b := prev[r.ID]
				if r.Name != b.Name || r.Index != b.Index || port(r) != port(b) || r.Pid == b.Pid {
					t.Errorf("after the restart: %+v; want %s[%d] on port %d with a new pid (was %d)", r, b.Name, b.Index, port(b), b.Pid)
				}
			}
			for _, r := range harness.Rows(after, "web") {
				if w := harness.WaitWho(t, port(r), "web", r.Index); w.Pid != r.Pid {
					t.Errorf("port %d answered by %d, listed %d", port(r), w.Pid, r.Pid)
				}
			}
			if d := duplicates(after); d != "" {
				t.Errorf("after the restart rows share: %s", d)
			}
		})
	}
}
