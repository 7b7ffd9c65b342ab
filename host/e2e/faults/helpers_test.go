package faults

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
	"github.com/pmdaemon/pmdaemon/host/procfs"
	"github.com/pmdaemon/pmdaemon/host/state"
)

// oneDaemon waits until exactly one daemon process runs in h (losers of a start race exit at
// once) and returns its pid, which must be the one in daemon.pid.
func oneDaemon(t *testing.T, h *harness.Home) int {
	t.Helper()
	harness.Eventually(t, 10*time.Second, "exactly one daemon process", func() bool {
		return len(h.DaemonProcs()) == 1
	})
	ds := h.DaemonProcs()
	if d := h.DaemonPid(); len(ds) != 1 || ds[0] != d {
		t.Fatalf("daemon processes %v, daemon.pid %d", ds, d)
	}
	return ds[0]
}

// stateFile reads state.json as it is on disk, without any of state.Load's side effects.
func stateFile(dir string) (*state.File, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var f state.File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("state.json does not parse: %v\n%s", err, b)
	}
	return &f, nil
}

// stateApp returns app name of f, or nil.
func stateApp(f *state.File, name string) *state.App {
	for i := range f.Apps {
		if f.Apps[i].Config.Name == name {
			return &f.Apps[i]
		}
	}
	return nil
}

// sorted returns a sorted copy of xs.
func sorted(xs []int) []int {
	out := slices.Clone(xs)
	slices.Sort(out)
	return out
}

// onlinePids returns the pids of the rows that have one, sorted.
func onlinePids(rows []api.Instance) []int {
	var out []int
	for _, r := range rows {
		if r.Pid != 0 {
			out = append(out, r.Pid)
		}
	}
	return sorted(out)
}

// duplicates reports pids or ports held by two rows ("" when there are none).
func duplicates(rows []api.Instance) string {
	pids, ports := map[int]int{}, map[int]int{}
	var msg []string
	for _, r := range rows {
		if r.Pid != 0 {
			if o, ok := pids[r.Pid]; ok {
				msg = append(msg, fmt.Sprintf("pid %d on ids %d and %d", r.Pid, o, r.ID))
			}
			pids[r.Pid] = r.ID
		}
		if r.Port != nil {
			if o, ok := ports[*r.Port]; ok {
				msg = append(msg, fmt.Sprintf("port %d on ids %d and %d", *r.Port, o, r.ID))
			}
			ports[*r.Port] = r.ID
		}
	}
	return strings.Join(msg, "; ")
}

// port returns a row's port, 0 for none.
func port(r api.Instance) int {
	if r.Port == nil {
		return 0
	}
	return *r.Port
}

// stranger starts `sleep 1000` in its own process group, outside any pmdaemon home, and kills
// it at cleanup. It stands for an unrelated process that got a pid pmdaemon once knew.
func stranger(t *testing.T) (pid int, start uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	st, err := procfs.Read(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid, st.StartTime
}

// settled is a WaitList condition: no row is in a passing state.
func settled(rows []api.Instance) bool {
	for _, r := range rows {
		switch r.Status {
		case "online", "stopped", "errored":
		default:
			return false
		}
		if r.Status == "online" && r.Pid == 0 {
			return false
		}
	}
	return true
}

// stateMatches compares state.json with the rows: same ids, apps, indexes, statuses, pids and
// ports, and every online instance is wanted (the next daemon brings it back).
func stateMatches(h *harness.Home, rows []api.Instance) error {
	f, err := stateFile(h.Dir)
	if err != nil {
		return err
	}
	type inst struct {
		name       string
		index, pid int
		port       int
		status     string
	}
	fromState, wanted := map[int]inst{}, map[int]bool{}
	for _, a := range f.Apps {
		for _, in := range a.Instances {
			fromState[in.ID] = inst{a.Config.Name, in.Index, in.Pid, in.Port, in.Status}
			wanted[in.ID] = in.Wanted
		}
	}
	if len(fromState) != len(rows) {
		return fmt.Errorf("state.json has %d instances, list %d", len(fromState), len(rows))
	}
	for _, r := range rows {
		s, ok := fromState[r.ID]
		want := inst{r.Name, r.Index, r.Pid, port(r), r.Status}
		if !ok || s != want {
			return fmt.Errorf("id %d: state.json %+v, list %+v", r.ID, s, want)
		}
		if r.Status == "online" && !wanted[r.ID] {
			return fmt.Errorf("id %d (%s[%d]) is online but not wanted in state.json", r.ID, r.Name, r.Index)
		}
	}
	return nil
}

// sigkillDaemon kills daemon pid of h with SIGKILL and waits until it is gone for good: not
// only its main thread (a zombie main thread still has live threads holding the socket) but
// every thread, so that its socket refuses connections. See TestCLIAfterDaemonDiesMidRequest
// for what a CLI call meets before that.
func sigkillDaemon(t *testing.T, h *harness.Home, pid int) {
	t.Helper()
	harness.Sigkill(t, pid)
	harness.WaitDead(t, 10*time.Second, "the daemon to die", pid)
	sock := filepath.Join(h.Dir, "daemon.sock")
	harness.Eventually(t, 10*time.Second, "the dead daemon's socket to refuse connections", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			return false
		}
		return true
	})
}
