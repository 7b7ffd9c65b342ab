package cli_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// scale grows and shrinks an app for good: new instances get the next ports of its spec (a
// range grows with them, an auto: range picks more, a shared socket keeps its one port), the
// running ones are not touched, scaling down stops the highest indexes and gives their ports
// back, and the saved configuration follows. What cannot be done is refused with why.
func TestScaleThroughMain(t *testing.T) {
	_, c := serveInProcess(t)
	ctx := context.Background()
	base := harness.FreePorts(t, 6)
	auto := harness.FreePorts(t, 3)
	shared := harness.FreePorts(t, 1)
	single := harness.FreePorts(t, 1)
	mustPmd(t, "start", "sleep 1000", "--name", "rng", "-i", "4", "--port", harness.PortRange(base, base+3), "--kill-timeout", "2s")
	mustPmd(t, "start", "sleep 1000", "--name", "aut", "--port", harness.AutoRange(auto, auto+2), "--kill-timeout", "2s")
	mustPmd(t, "start", "sleep 1000", "--name", "shr", "-i", "2", "--port", fmt.Sprint(shared), "--socket", "shared", "--kill-timeout", "2s")
	mustPmd(t, "start", "sleep 1000", "--name", "one", "--port", fmt.Sprint(single), "--kill-timeout", "2s")

	tests := []struct {
		name, app string
		n         int
		spec      string // the saved port spec after
		ports     []int  // by index, after
		stdout    []string
	}{
		{"range grows", "rng", 6, harness.PortRange(base, base+5), harness.Seq(base, 6),
			[]string{"[pmdaemon] scaled rng to 6: started ids", fmt.Sprintf("rng's port spec is now %d-%d (saved)", base, base+5)}},
		{"range shrinks from the top", "rng", 2, harness.PortRange(base, base+5), harness.Seq(base, 2),
			[]string{"[pmdaemon] scaled rng to 2: stopped ids"}},
		{"range regrows within its spec", "rng", 3, harness.PortRange(base, base+5), harness.Seq(base, 3),
			[]string{"[pmdaemon] scaled rng to 3: started ids"}},
		{"auto picks more", "aut", 3, harness.AutoRange(auto, auto+2), harness.Seq(auto, 3), []string{"scaled aut to 3"}},
		{"shared keeps its port", "shr", 4, fmt.Sprint(shared), []int{shared, shared, shared, shared}, []string{"scaled shr to 4"}},
		{"same count", "shr", 4, fmt.Sprint(shared), []int{shared, shared, shared, shared}, []string{"shr already runs 4 instances"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := harness.WaitRows(t, c, 15*time.Second, tt.app+" online", func(rows []api.Instance) bool {
				rs := harness.Rows(rows, tt.app)
				return len(rs) > 0 && harness.AllOnline(tt.app, len(rs))(rows)
			})
			kept := harness.Rows(before, tt.app)
			out := mustPmd(t, "scale", tt.app, fmt.Sprint(tt.n))
			for _, w := range tt.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("scale %s %d printed no %q:\n%s", tt.app, tt.n, w, out)
				}
			}
			after := harness.WaitRows(t, c, 15*time.Second, fmt.Sprintf("%s online %d times", tt.app, tt.n), harness.AllOnline(tt.app, tt.n))
			if got := harness.PortsOf(after, tt.app); !slices.Equal(got, tt.ports) {
				t.Errorf("ports by index %v, want %v", got, tt.ports)
			}
			// The instances kept run on as they were: same ids, same pids.
			now := harness.ByID(after)
			for _, k := range kept {
				if k.Index < tt.n && (now[k.ID].Pid != k.Pid || now[k.ID].Index != k.Index) {
					t.Errorf("instance id %d was touched: %+v, was %+v", k.ID, now[k.ID], k)
				}
				if k.Index >= tt.n {
					if _, still := now[k.ID]; still {
						t.Errorf("instance id %d (index %d) is still listed after scaling to %d", k.ID, k.Index, tt.n)
					}
					harness.WaitDead(t, 10*time.Second, "a scaled-down instance", k.Pid)
				}
			}
			info, err := c.Info(ctx, tt.app)
			if err != nil {
				t.Fatal(err)
			}
			if info.Config.Instances != tt.n || info.PortSpec != tt.spec {
				t.Errorf("saved config: instances %d, port %q; want %d, %q", info.Config.Instances, info.PortSpec, tt.n, tt.spec)
			}
			held, err := c.PortsAssigned(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var mine []int
			for p, app := range held {
				if app == tt.app {
					mine = append(mine, p)
				}
			}
			slices.Sort(mine)
			if want := slices.Compact(slices.Clone(tt.ports)); !slices.Equal(mine, want) {
				t.Errorf("registry holds %v for %s, want %v", mine, tt.app, want)
			}
		})
	}

	refusals := []struct {
		args []string
		want string
	}{
		{[]string{"scale", "one", "2"}, fmt.Sprintf("cannot scale one to 2: its port spec is the single port %d", single)},
		{[]string{"scale", "aut", "4"}, "cannot scale aut to 4: "},
		{[]string{"scale", "nosuch", "2"}, "process 'nosuch' not found"},
		{[]string{"scale", "0", "2"}, "scale takes an app name, not an instance id (0)"},
		{[]string{"scale", "rng", "2000"}, "instances must be between 1 and 1024, got 2000"},
	}
	for _, tt := range refusals {
		r := pmd(tt.args...)
		if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
	// A stopped app stays stopped: its new instances are listed stopped, and start with it.
	stp := harness.FreePorts(t, 3)
	mustPmd(t, "start", "sleep 1000", "--name", "stp", "--port", fmt.Sprint(stp)+"-"+fmt.Sprint(stp), "--kill-timeout", "2s")
	harness.WaitRows(t, c, 15*time.Second, "stp online", harness.AllOnline("stp", 1))
	mustPmd(t, "stop", "stp")
	mustPmd(t, "scale", "stp", "3")
	rows := harness.Rows(mustList(t, c), "stp")
	if len(rows) != 3 || slices.ContainsFunc(rows, func(r api.Instance) bool { return r.Status != "stopped" || r.Pid != 0 }) {
		t.Errorf("a stopped app scaled to 3 lists %+v, want 3 stopped instances", rows)
	}
	mustPmd(t, "restart", "stp")
	rows = harness.WaitRows(t, c, 15*time.Second, "stp online 3 times", harness.AllOnline("stp", 3))
	if got := harness.PortsOf(rows, "stp"); !slices.Equal(got, harness.Seq(stp, 3)) {
		t.Errorf("stp restarted after its scale runs on %v, want %v", got, harness.Seq(stp, 3))
	}

	// A refused scale changed nothing.
	if info, err := c.Info(ctx, "aut"); err != nil || info.Config.Instances != 3 || len(info.Instances) != 3 {
		t.Errorf("a refused scale changed aut: %+v, %v", info, err)
	}
}
