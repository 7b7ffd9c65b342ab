package faults

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
	"github.com/pmdaemon/pmdaemon/host/procfs"
)

// groupMembers lists the live (non-zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	all, _ := procfs.All()
	var out []int
	for _, st := range all {
		if st.Pgid == pgid && !st.Zombie() {
			out = append(out, st.Pid)
		}
	}
	return out
}

var termScripts = map[string]struct {
	body string
	kids int // pids the script writes to ./kids
	// ignores: something in the group outlives SIGTERM, so the kill timeout must run out.
	ignores bool
}{
	// The leader and everything it runs ignore SIGTERM.
	"leader_ignores": {body: "trap '' TERM\necho $$ >> kids\nwhile true; do sleep 0.1; done\n", kids: 1, ignores: true},
	// The leader exits on SIGTERM at once; its three children ignore it. Each process writes
	// its pid once its trap is set.
	"children_ignore": {body: `trap 'exit 0' TERM
for i in 1 2 3; do
  sh -c 'trap "" TERM; echo $$ >> kids; while true; do sleep 0.1; done' &
done
while true; do sleep 0.1; done
`, kids: 3, ignores: true},
	// Everything exits on SIGTERM: no reason to wait for the kill timeout.
	"prompt": {body: "sleep 1000 &\necho $! >> kids\nsleep 1000\n", kids: 1},
}

// stop, restart, delete and the daemon's kill each end the whole process group of an
// instance: when something ignores SIGTERM they wait the kill timeout and no more, then
// SIGKILL the group; when everything exits on SIGTERM they do not wait it out. When the
// command returns, no process of the old group is left.
func TestKillTimeoutOnEveryPath(t *testing.T) {
	t.Parallel()
	for _, verb := range []string{"stop", "restart", "delete", "kill"} {
		for _, name := range []string{"leader_ignores", "children_ignore", "prompt"} {
			sc := termScripts[name]
			t.Run(verb+"_"+name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				h := harness.NewHome(t)
				harness.WriteScript(t, dir, "app.sh", sc.body)
				kt := 500 * time.Millisecond
				if !sc.ignores {
					kt = 4 * time.Second
				}
				h.OK("start", "./app.sh", "--cwd", dir, "--name", "grp", "--kill-timeout", kt.String())
				before := harness.Rows(h.WaitList(10*time.Second, "grp online", harness.AllOnline("grp", 1)), "grp")[0]
				leader := before.Pid
				pids := append([]int{leader}, harness.ReadPids(t, filepath.Join(dir, "kids"), sc.kids)...)
				for _, p := range pids {
					if g := harness.Pgid(p); g != leader {
						t.Fatalf("pid %d is in group %d, want the leader's %d", p, g, leader)
					}
				}

				begin := time.Now()
				args := []string{verb, "grp"}
				if verb == "kill" {
					args = args[:1]
				}
				h.OK(args...)
				took := time.Since(begin)
				t.Logf("%s took %s (kill timeout %s)", verb, took.Round(time.Millisecond), kt)
				if sc.ignores && (took < kt || took > kt+3*time.Second) {
					t.Errorf("%s took %s, want the kill timeout %s and at most 3s more", verb, took, kt)
				}
				if !sc.ignores && took > kt/2 {
					t.Errorf("%s took %s with an app that exits on SIGTERM (kill timeout %s): it waited for nothing", verb, took, kt)
				}
				for _, p := range pids {
					if harness.Alive(p) {
						t.Errorf("pid %d is alive after %s returned", p, verb)
					}
				}
				if m := groupMembers(leader); len(m) != 0 {
					t.Errorf("the old group %d still has %v after %s returned", leader, m, verb)
				}
				switch verb {
				case "stop":
					if r := harness.Rows(h.List(), "grp"); len(r) != 1 || r[0].Status != "stopped" || r[0].Pid != 0 {
						t.Errorf("after stop: %+v", r)
					}
				case "restart":
					rows := h.WaitList(10*time.Second, "grp online again", harness.AllOnline("grp", 1))
					r := harness.Rows(rows, "grp")[0]
					if r.Pid == leader || r.Restarts != before.Restarts+1 || r.ID != before.ID {
						t.Errorf("after restart: %+v (before %+v)", r, before)
					}
					if g := harness.Pgid(r.Pid); g != r.Pid {
						t.Errorf("the new instance %d is in group %d, want its own", r.Pid, g)
					}
				case "delete":
					if rows := h.List(); len(rows) != 0 {
						t.Errorf("after delete: %+v", rows)
					}
				case "kill":
					if ps := h.Processes(); len(ps) != 0 {
						t.Errorf("processes of the home after kill: %v", ps)
					}
				}
				if verb != "restart" && verb != "kill" {
					if ps := h.AppProcs(); len(ps) != 0 {
						t.Errorf("app processes after %s: %v", verb, ps)
					}
				}
			})
		}
	}
}

// What an instance leaves in its process group never outlives it, also for an instance taken
// back from a daemon killed with SIGKILL: when the leader exits on its own its orphans (which
// ignore SIGTERM) are SIGKILLed before the restart, and a stop of a taken-back instance waits
// its kill timeout and kills the whole group.
func TestGroupEndsWithInstance(t *testing.T) {
	t.Parallel()
	const script = `for i in 1 2; do
  sh -c 'trap "" TERM; echo $$ >> kids; while true; do sleep 0.1; done' &
done
while [ ! -e exit-now ]; do sleep 0.05; done
rm exit-now
exit 3
`
	cases := []struct {
		name    string
		adopted bool   // the daemon is SIGKILLed and a new one takes the instance back first
		end     string // "exit": the leader exits on its own; "stop": pmdaemon stop
	}{
		{"fresh_leader_exits", false, "exit"},
		{"adopted_leader_exits", true, "exit"},
		{"adopted_stop", true, "stop"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			h := harness.NewHome(t)
			harness.WriteScript(t, dir, "app.sh", script)
			kt := 500 * time.Millisecond
			h.OK("start", "./app.sh", "--cwd", dir, "--name", "grp", "--kill-timeout", kt.String())
			before := harness.Rows(h.WaitList(10*time.Second, "grp online", harness.AllOnline("grp", 1)), "grp")[0]
			kids := harness.ReadPids(t, filepath.Join(dir, "kids"), 2)
			if tc.adopted {
				old := h.DaemonPid()
				sigkillDaemon(t, h, old)
				rows := h.WaitList(10*time.Second, "grp back online", harness.AllOnline("grp", 1))
				if r := harness.Rows(rows, "grp"); r[0].Pid != before.Pid {
					t.Fatalf("grp not taken back: %+v (pid was %d)", r, before.Pid)
				}
			}
			switch tc.end {
			case "exit":
				if err := os.WriteFile(filepath.Join(dir, "exit-now"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				rows := h.WaitList(10*time.Second, "grp restarted", func(rows []api.Instance) bool {
					r := harness.Rows(rows, "grp")
					return len(r) == 1 && r[0].Status == "online" && r[0].Pid != 0 && r[0].Pid != before.Pid
				})
				harness.WaitDead(t, 5*time.Second, "the old leader's orphans to be killed", kids...)
				if m := groupMembers(before.Pid); len(m) != 0 {
					t.Errorf("the old group %d still has %v", before.Pid, m)
				}
				r := harness.Rows(rows, "grp")[0]
				// The new incarnation's own children are alive and in its group.
				now := harness.ReadPids(t, filepath.Join(dir, "kids"), 4)[2:]
				for _, p := range now {
					if !harness.Alive(p) || harness.Pgid(p) != r.Pid {
						t.Errorf("new child %d: alive %v, group %d, want alive in %d", p, harness.Alive(p), harness.Pgid(p), r.Pid)
					}
				}
			case "stop":
				begin := time.Now()
				h.OK("stop", "grp")
				took := time.Since(begin)
				t.Logf("stop of a taken-back group took %s (kill timeout %s)", took.Round(time.Millisecond), kt)
				if took < kt || took > kt+3*time.Second {
					t.Errorf("stop took %s, want the kill timeout %s and at most 3s more", took, kt)
				}
				for _, p := range append(kids, before.Pid) {
					if harness.Alive(p) {
						t.Errorf("pid %d alive after stop returned", p)
					}
				}
				if m := groupMembers(before.Pid); len(m) != 0 {
					t.Errorf("the group %d still has %v after stop", before.Pid, m)
				}
				if ps := h.AppProcs(); len(ps) != 0 {
					t.Errorf("app processes after stop: %v", ps)
				}
			}
		})
	}
}
