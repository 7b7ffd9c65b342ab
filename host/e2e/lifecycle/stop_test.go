package lifecycle

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// stop kills the app's whole process group: children that the script started, and children
// that ignore SIGTERM (SIGKILL after --kill-timeout). When stop returns, nothing is left.
func TestStopKillsGroup(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		script string
		flags  []string
		// maxStop bounds how long stop may take: well under the default 5s kill timeout when
		// --kill-timeout 500ms is given.
		maxStop time.Duration
	}{
		{
			name: "children_die_on_term",
			script: `sleep 1000 &
echo $! > c1
sleep 1000 &
echo $! > c2
wait
`,
			maxStop: 4 * time.Second,
		},
		{
			name: "leader_and_child_ignore_term",
			script: `trap '' TERM
sleep 1000 &
echo $! > c1
wait
`,
			flags:   []string{"--kill-timeout", "500ms"},
			maxStop: 4 * time.Second,
		},
		{
			name: "child_ignores_term",
			script: `(trap '' TERM; exec sleep 1000) &
echo $! > c1
sleep 1000 &
echo $! > c2
wait
`,
			flags:   []string{"--kill-timeout", "500ms"},
			maxStop: 4 * time.Second,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			h := harness.NewHome(t)
			harness.WriteScript(t, dir, "group.sh", tc.script)
			h.OK(append([]string{"start", "./group.sh", "--cwd", dir, "--name", "grp"}, tc.flags...)...)
			rows := h.WaitList(10*time.Second, "grp online", harness.AllOnline("grp", 1))
			leader := rows[0].Pid
			pids := []int{leader}
			for _, f := range []string{"c1", "c2"} {
				if fileExpected(tc.script, f) {
					pids = append(pids, harness.ReadPids(t, filepath.Join(dir, f), 1)[0])
				}
			}
			for _, p := range pids {
				if !harness.Alive(p) {
					t.Fatalf("pid %d is not alive before stop", p)
				}
				if g := harness.Pgid(p); g != leader {
					t.Fatalf("pid %d is in group %d, want the leader's %d", p, g, leader)
				}
			}
			begin := time.Now()
			h.OK("stop", "grp")
			took := time.Since(begin)
			for _, p := range pids {
				if harness.Alive(p) {
					t.Errorf("pid %d is still alive after stop returned", p)
				}
			}
			if took > tc.maxStop {
				t.Errorf("stop took %s, want under %s", took, tc.maxStop)
			}
			after := harness.Rows(h.List(), "grp")
			if len(after) != 1 || after[0].Status != "stopped" || after[0].Pid != 0 {
				t.Errorf("after stop: %+v", after)
			}
			if ps := h.AppProcs(); len(ps) != 0 {
				t.Errorf("app processes left after stop: %v", ps)
			}
		})
	}
}

func fileExpected(script, name string) bool {
	return strings.Contains(script, "> "+name+"\n")
}
