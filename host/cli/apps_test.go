package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// An app's whole life through cli.Main against a real daemon: start, list, list --json,
// info, info --json, stop and delete of two real `sleep` instances on two real ports, with the
// refusals on the way (unknown target, a second app of the same name). Each step checks the
// exit code and the words the user reads; the app's state is checked through the typed API.
func TestAppsLifecycleThroughMain(t *testing.T) {
	_, c := serveInProcess(t)
	base := harness.FreePorts(t, 2)
	ports := fmt.Sprintf("%d-%d", base, base+1)
	var pids []int // the two instances' pids, once online

	steps := []struct {
		args   []string
		code   int
		stdout []string // each must appear in stdout
		stderr []string // each must appear in stderr; none given: stderr must be empty
		check  func(t *testing.T, r run)
	}{
		{
			args: []string{"start", "sleep 1000", "--name", "nap", "-i", "2", "--port", ports, "--kill-timeout", "2s"},
			stdout: []string{
				fmt.Sprintf("[pmdaemon] started nap (2 instances, ids 0,1, ports %d,%d)", base, base+1),
				"│ ID │ Name", "│ nap ",
			},
			check: func(t *testing.T, r run) {
				rows := harness.WaitRows(t, c, 15*time.Second, "nap online twice", harness.AllOnline("nap", 2))
				pids = harness.PidsOf(rows, "nap")
				for _, p := range pids {
					// The daemon resolves the command in PATH: argv[0] is sleep's full path.
					b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
					argv := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
					if len(argv) != 2 || filepath.Base(argv[0]) != "sleep" || argv[1] != "1000" {
						t.Errorf("instance pid %d runs %q, want sleep 1000", p, argv)
					}
				}
			},
		},
		{
			args:   []string{"list"},
			stdout: []string{"│ online ", strconv.Itoa(base), strconv.Itoa(base + 1)},
			check: func(t *testing.T, r run) {
				for _, p := range pids {
					if !strings.Contains(r.stdout, " "+strconv.Itoa(p)+" ") {
						t.Errorf("list does not show pid %d:\n%s", p, r.stdout)
					}
				}
			},
		},
		{
			args: []string{"ls", "--json"},
			check: func(t *testing.T, r run) {
				var rows []api.Instance
				if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
					t.Fatalf("list --json is not JSON: %v\n%s", err, r.stdout)
				}
				if got := harness.PortsOf(rows, "nap"); !slices.Equal(got, []int{base, base + 1}) {
					t.Errorf("list --json ports %v, want [%d %d]", got, base, base+1)
				}
				if got := harness.PidsOf(rows, "nap"); !slices.Equal(got, pids) {
					t.Errorf("list --json pids %v, the API said %v", got, pids)
				}
			},
		},
		{
			args:   []string{"info", "nap"},
			stdout: []string{"name:                  nap", "script:                sleep 1000", "kill timeout:          2s", fmt.Sprintf("ports (live):          %d,%d", base, base+1)},
		},
		{
			args: []string{"show", "nap", "--json"},
			check: func(t *testing.T, r run) {
				var a api.App
				if err := json.Unmarshal([]byte(r.stdout), &a); err != nil {
					t.Fatalf("info --json is not JSON: %v\n%s", err, r.stdout)
				}
				if a.Name != "nap" || a.Config.KillTimeout.Std() != 2*time.Second || a.PortSpec != ports || len(a.Instances) != 2 {
					t.Errorf("info --json: name %q, kill timeout %s, port spec %q, %d instances; want nap, 2s, %s, 2",
						a.Name, a.Config.KillTimeout, a.PortSpec, len(a.Instances), ports)
				}
			},
		},
		{args: []string{"info", "ghost"}, code: 1, stderr: []string{"Error: process 'ghost' not found\n"}},
		{args: []string{"start", "sleep 1000", "--name", "nap"}, code: 1, stderr: []string{"Error: process 'nap' already exists"}},
		{
			args:   []string{"stop", "nap"},
			stdout: []string{"[pmdaemon] stopped nap (ids 0,1)\n", "│ 0  │ nap  │ stopped │ -   │ -    │"}, // ports released
			check: func(t *testing.T, r run) {
				harness.WaitDead(t, 10*time.Second, "the stopped instances to exit", pids...)
				rows := harness.WaitRows(t, c, 15*time.Second, "nap stopped", func(rows []api.Instance) bool {
					rs := harness.Rows(rows, "nap")
					return len(rs) == 2 && rs[0].Status == "stopped" && rs[1].Status == "stopped"
				})
				if got := harness.PidsOf(rows, "nap"); !slices.Equal(got, []int{0, 0}) {
					t.Errorf("stopped instances still have pids %v", got)
				}
			},
		},
		{
			args:   []string{"delete", "nap"},
			stdout: []string{"[pmdaemon] deleted nap (ids 0,1)"},
		},
		{
			args:   []string{"list", "--json"},
			stdout: []string{"[]"},
		},
		{args: []string{"stop", "nap"}, code: 1, stderr: []string{"Error: process 'nap' not found\n"}},
	}
	for _, st := range steps {
		if !t.Run(strings.Join(st.args, " "), func(t *testing.T) {
			r := pmd(st.args...)
			if r.code != st.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, st.code, r.stdout, r.stderr)
			}
			for _, w := range st.stdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout does not show %q:\n%s", w, r.stdout)
				}
			}
			if len(st.stderr) == 0 && r.stderr != "" {
				t.Errorf("stderr: %q, want nothing", r.stderr)
			}
			for _, w := range st.stderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not mention %q", r.stderr, w)
				}
			}
			if st.check != nil {
				st.check(t, r)
			}
		}) {
			break // later steps build on this one
		}
	}
}
