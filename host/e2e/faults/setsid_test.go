package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// escapesScript starts three children that leave the instance's process group or tree, each
// writing "KIND PID" to ./kids once it runs as itself, then becomes `sleep`:
//   - setsid: a new session (and so a new process group);
//   - double-fork: a grandchild whose parent exits at once, so it is reparented away;
//   - setsid-ignores-term: a new session, ignoring SIGTERM (SIG_IGN survives exec).
const escapesScript = `#!/bin/sh
setsid sh -c 'echo "setsid $$" >> kids; exec sleep 1000' &
(sh -c 'echo "double-fork $$" >> kids; exec sleep 1000' &)
setsid sh -c 'trap "" TERM; echo "setsid-ignores-term $$" >> kids; exec sleep 1000' &
exec sleep 1000
`

// kid is a child an app wrote into its kids file.
type kid struct {
	kind string
	pid  int
}

func (k kid) String() string { return fmt.Sprintf("%s %d", k.kind, k.pid) }

// readKids waits until path holds at least n complete "KIND PID" lines and returns the first n.
func readKids(t *testing.T, path string, n int) []kid {
	t.Helper()
	var kids []kid
	harness.Eventually(t, 15*time.Second, fmt.Sprintf("%d children in %s", n, path), func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		kids = kids[:0]
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) != 2 {
				continue
			}
			p, err := strconv.Atoi(f[1])
			if err != nil {
				return false
			}
			kids = append(kids, kid{f[0], p})
		}
		return len(kids) >= n
	})
	return kids[:n]
}

// waitGone waits until none of procs is alive. Those still alive at the deadline fail the test
// (by kind, so the message says which escape worked) and are killed.
func waitGone(t *testing.T, timeout time.Duration, after string, procs []kid) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var alive []kid
		for _, k := range procs {
			if harness.Alive(k.pid) {
				alive = append(alive, k)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: still alive %s later: %v", after, timeout, alive)
			for _, k := range alive {
				syscall.Kill(k.pid, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitAppProcs waits until the app processes of h are exactly want (the transient shells of a
// starting script come and go) and reports the difference at the deadline.
func waitAppProcs(t *testing.T, h *harness.Home, timeout time.Duration, what string, want []int) {
	t.Helper()
	want = sorted(want)
	deadline := time.Now().Add(timeout)
	for {
		got := sorted(h.AppProcs())
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			var d []string
			for _, p := range got {
				if !slices.Contains(want, p) {
					d = append(d, describeProc(p))
				}
			}
			t.Errorf("%s: app processes %v, want exactly %v; extra:\n  %s", what, got, want, strings.Join(d, "\n  "))
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// checkCgroupHolds checks, in cgroup mode, that row r lists a cgroup holding its pid and pids.
func checkCgroupHolds(t *testing.T, r api.Instance, pids []int) {
	t.Helper()
	if m := inOwnCgroup(r); m != "" {
		t.Errorf("%s[%d] (pid %d): %s", r.Name, r.Index, r.Pid, m)
		return
	}
	in, _ := cgroupProcs(r.Cgroup)
	for _, p := range pids {
		if !slices.Contains(in, p) {
			t.Errorf("%s[%d]: child %d is not in the instance's cgroup %s (holds %v)", r.Name, r.Index, p, r.Cgroup, in)
		}
	}
}

// groupModeEnd is how a process-group-mode test ends clean: delete everything, then `kill`
// and a new daemon start, which must kill every child that escaped the process groups.
func groupModeEnd(t *testing.T, h *harness.Home, escaped []kid) {
	t.Helper()
	if len(h.List()) > 0 {
		h.OK("delete", "all")
	}
	h.OK("kill")
	h.OK("ping")
	waitGone(t, 5*time.Second, "delete all, kill and a new daemon start (process-group mode)", escaped)
	waitAppProcs(t, h, 10*time.Second, "after delete all, kill and a new daemon start", nil)
}

func pidsOf(kids []kid) []int {
	out := make([]int, len(kids))
	for i, k := range kids {
		out[i] = k.pid
	}
	return out
}

// An app whose children escape its process group (setsid, a double fork, a setsid child that
// ignores SIGTERM) loses all of them with the instance: after stop, restart, delete, the
// daemon's kill and an automatic restart after a crash (kill -9 of the instance), none of the
// old children is alive. That is cgroup mode (cgroup.kill). The process-group fallback promises
// less, and the test holds it to exactly that: the process group (the instance and its
// double-forked child) dies at once, and what left the group with setsid dies at the next
// daemon start, which kills every process of the home that no instance owns.
func TestSetsidChildrenDieWithInstance(t *testing.T) {
	t.Parallel()
	for _, mode := range processModes {
		for _, verb := range []string{"stop", "restart", "delete", "kill", "crash"} {
			t.Run(mode+"/"+verb, func(t *testing.T) {
				t.Parallel()
				setsidCase(t, mode, verb)
			})
		}
	}
}

func setsidCase(t *testing.T, mode, verb string) {
	h := modeHome(t, mode)
	checkMode(t, h, mode)
	dir := t.TempDir()
	harness.WriteScript(t, dir, "escapes.sh", escapesScript)
	kidsFile := filepath.Join(dir, "kids")
	h.OK("start", "./escapes.sh", "--cwd", dir, "--name", "esc", "--kill-timeout", "500ms")
	row := harness.Rows(h.WaitList(10*time.Second, "esc online", harness.AllOnline("esc", 1)), "esc")[0]
	kids := readKids(t, kidsFile, 3)
	old := append([]kid{{"instance", row.Pid}}, kids...)
	for _, k := range kids {
		if !harness.Alive(k.pid) {
			t.Fatalf("child %v is not running", k)
		}
	}
	if mode == cgroupMode {
		checkCgroupHolds(t, row, pidsOf(kids))
	}
	waitAppProcs(t, h, 10*time.Second, "esc started", pidsOf(old))

	switch verb {
	case "stop", "restart", "delete":
		h.OK(verb, "esc")
	case "kill":
		h.OK("kill")
	case "crash":
		harness.Sigkill(t, row.Pid)
	}

	// What must be gone now: everything in cgroup mode; the process group in the fallback.
	gone := old
	if mode == groupMode {
		gone = slices.DeleteFunc(slices.Clone(old), func(k kid) bool { return strings.HasPrefix(k.kind, "setsid") })
	}
	waitGone(t, 5*time.Second, fmt.Sprintf("%s of esc (%s mode)", verb, mode), gone)

	// The instance runs again after restart and crash: a new process with new children.
	var current []kid
	if verb == "restart" || verb == "crash" {
		rows := h.WaitList(15*time.Second, "esc running again", func(rows []api.Instance) bool {
			r := harness.Rows(rows, "esc")
			return len(r) == 1 && r[0].Status == "online" && r[0].Pid != 0 && r[0].Pid != row.Pid
		})
		now := harness.Rows(rows, "esc")[0]
		current = append([]kid{{"instance", now.Pid}}, readKids(t, kidsFile, 6)[3:]...)
		if mode == cgroupMode {
			checkCgroupHolds(t, now, pidsOf(current[1:]))
			waitAppProcs(t, h, 10*time.Second, fmt.Sprintf("after %s", verb), pidsOf(current))
		}
	}
	switch verb {
	case "stop":
		if r := harness.Rows(h.List(), "esc"); len(r) != 1 || r[0].Status != "stopped" || r[0].Pid != 0 {
			t.Errorf("after stop: %+v", r)
		}
	case "delete":
		if rows := h.List(); len(rows) != 0 {
			t.Errorf("after delete: %s", rowsText(rows))
		}
	case "kill":
		if mode == cgroupMode {
			if ps := h.Processes(); len(ps) != 0 {
				t.Errorf("processes of the home after kill: %v", ps)
			}
		}
	}
	if mode == cgroupMode {
		if verb == "stop" || verb == "delete" {
			waitAppProcs(t, h, 10*time.Second, "after "+verb, nil)
		}
		return
	}
	// Fallback: the children that escaped die at the next daemon start.
	if verb != "kill" {
		h.OK("kill")
	}
	h.OK("ping")
	waitGone(t, 5*time.Second, fmt.Sprintf("%s of esc, then kill and a new daemon start (process-group mode)", verb), append(old, current...))
	groupModeEnd(t, h, nil)
}

// memHog is a python program that holds 60 MB, written into the app's directory.
const memHog = "import time\nb = b'x' * (60 << 20)\ntime.sleep(1000)\n"

// An app with --max-memory 40M whose setsid child holds 60 MB is restarted on every metrics
// tick; each restart must take the child with it. In cgroup mode, after several memory restarts
// every earlier child is dead and the app is down to its two processes (the instance and one
// child); today each restart leaves a 60 MB orphan behind. In the fallback the
// orphans are allowed until the next daemon start, which must kill every one of them.
func TestSetsidMaxMemoryRestartLeavesNoOrphans(t *testing.T) {
	t.Parallel()
	py := python3(t)
	for _, mode := range processModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := modeHome(t, mode)
			checkMode(t, h, mode)
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "hog.py"), []byte(memHog), 0o644); err != nil {
				t.Fatal(err)
			}
			harness.WriteScript(t, dir, "mem.sh", fmt.Sprintf("#!/bin/sh\nsetsid sh -c 'echo \"hog $$\" >> kids; exec %s hog.py' &\nexec sleep 1000\n", py))
			kidsFile := filepath.Join(dir, "kids")
			h.OK("start", "./mem.sh", "--cwd", dir, "--name", "mem", "--max-memory", "40M", "--kill-timeout", "500ms")

			// Watch across at least four memory restarts: how many app processes there are at
			// any moment, and whether each earlier hog is dead.
			const restarts = 4
			most := 0
			deadline := time.Now().Add(60 * time.Second)
			var rows []api.Instance
			for {
				procs := h.AppProcs()
				most = max(most, len(procs))
				rows = apiList(t, h)
				if r := harness.Rows(rows, "mem"); len(r) == 1 && r[0].Restarts >= restarts {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("mem was not restarted %d times for memory within 60s:\n%s", restarts, rowsText(rows))
				}
				time.Sleep(100 * time.Millisecond)
			}
			r := harness.Rows(rows, "mem")[0]
			t.Logf("%s mode: %d restarts (%s); at most %d app processes at once", mode, r.Restarts, r.Reason, most)
			if !strings.Contains(strings.ToLower(r.Reason), "memory") {
				t.Errorf("the last restart's reason %q does not mention memory", r.Reason)
			}
			hogs := readKids(t, kidsFile, restarts)
			if mode == cgroupMode {
				// The app is down to its two processes (polled: a process being killed may be
				// counted for a moment), and every hog before the last restart's is gone.
				var procs []int
				deadline := time.Now().Add(5 * time.Second)
				for procs = h.AppProcs(); len(procs) > 2 && time.Now().Before(deadline); procs = h.AppProcs() {
					time.Sleep(50 * time.Millisecond)
				}
				if len(procs) > 2 {
					var d []string
					for _, p := range procs {
						d = append(d, describeProc(p))
					}
					t.Errorf("after %d memory restarts the app has %d processes (at most %d at once meanwhile), want at most 2 (the instance and its hog):\n  %s",
						restarts, len(procs), most, strings.Join(d, "\n  "))
				}
				waitGone(t, 5*time.Second, fmt.Sprintf("%d memory restarts (cgroup mode)", restarts), hogs[:restarts-1])
				return
			}
			// Fallback: the orphans die at the next daemon start.
			h.OK("kill")
			h.OK("ping")
			waitGone(t, 5*time.Second, fmt.Sprintf("%d memory restarts, then kill and a new daemon start (process-group mode)", restarts), hogs)
			b, _ := os.ReadFile(kidsFile)
			groupModeEnd(t, h, readKids(t, kidsFile, len(strings.Fields(string(b)))/2))
		})
	}
}
