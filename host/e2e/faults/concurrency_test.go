package faults

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Fifty CLI calls at once (start, stop, restart, delete, list, info on ten app names sharing
// one auto port range): each succeeds or fails with a clean "Error: ...", the daemon survives
// (same pid), and the end state is consistent: list == state.json == live processes, every
// online instance answers on its own port, no port or pid is shared, no process is
// unaccounted for, and the next daemon brings back exactly what was online.
func TestConcurrentMixedCLICalls(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("ping")
	daemon := oneDaemon(t, h)
	base := harness.FreePorts(t, 30)
	spec := fmt.Sprintf("auto:%d-%d", base, base+29)
	names := make([]string, 10)
	for i := range names {
		names[i] = fmt.Sprintf("app%d", i)
	}
	start := func(name string, n int) []string {
		return []string{"start", harness.Echo, "--name", name, "--instances", fmt.Sprint(n), "--port", spec, "--kill-timeout", "2s"}
	}
	// Half the names exist before the storm, so stop/restart/delete have something to hit.
	for _, n := range names[:5] {
		h.OK(start(n, 1+len(n)%2)...)
	}
	h.WaitList(15*time.Second, "the first five apps online", func(rows []api.Instance) bool {
		for _, n := range names[:5] {
			if len(harness.Rows(rows, n)) == 0 || !harness.AllOnline(n, len(harness.Rows(rows, n)))(rows) {
				return false
			}
		}
		return true
	})

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var calls [][]string
	for i := 0; i < 50; i++ {
		name := names[rng.IntN(len(names))]
		switch k := rng.IntN(12); {
		case k < 4:
			calls = append(calls, start(name, 1+rng.IntN(2)))
		case k < 6:
			calls = append(calls, []string{"stop", name})
		case k < 8:
			calls = append(calls, []string{"restart", name})
		case k < 9:
			calls = append(calls, []string{"delete", name})
		case k < 10:
			calls = append(calls, []string{"list", "--json"})
		case k < 11:
			calls = append(calls, []string{"info", name})
		default:
			calls = append(calls, []string{"restart", "all"})
		}
	}
	results := make([]harness.Result, len(calls))
	took := make([]time.Duration, len(calls))
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, args := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			begin := time.Now()
			results[i] = h.Exec(args...)
			took[i] = time.Since(begin)
		}()
	}
	begin := time.Now()
	close(gate)
	wg.Wait()
	t.Logf("50 concurrent calls done in %s (slowest %s)", time.Since(begin).Round(time.Millisecond), slices.Max(took).Round(time.Millisecond))

	tally := map[string]int{}
	for i, r := range results {
		verb := calls[i][0]
		if r.Code == 0 {
			tally[verb+" ok"]++
			continue
		}
		if r.Code != 1 {
			t.Errorf("%s: exit %d, stderr %q", strings.Join(calls[i], " "), r.Code, r.Stderr)
		}
		harness.ErrLike(t, r.Stderr)
		msg := strings.TrimSpace(r.Stderr)
		for _, n := range names {
			msg = strings.ReplaceAll(msg, "'"+n+"'", "'X'")
		}
		tally[verb+": "+msg]++
	}
	keys := make([]string, 0, len(tally))
	for k := range tally {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%3d × %s", tally[k], k)
	}

	if d := oneDaemon(t, h); d != daemon {
		t.Fatalf("the daemon changed from %d to %d during the storm:\n%s", daemon, d, h.DaemonLog())
	}
	rows := h.WaitList(20*time.Second, "every instance settled", settled)
	checkConsistent(t, h, rows)

	// The next daemon brings back exactly what was online, on the same ports.
	h.OK("kill")
	again := h.WaitList(20*time.Second, "the same instances back", func(now []api.Instance) bool {
		if len(now) != len(rows) || !settled(now) {
			return false
		}
		m := harness.ByID(now)
		for _, r := range rows {
			n := m[r.ID]
			if n.Name != r.Name || n.Status != r.Status || port(n) != port(r) {
				return false
			}
		}
		return true
	})
	checkConsistent(t, h, again)
}

// checkConsistent checks rows (settled) against state.json, the live processes and the ports.
func checkConsistent(t *testing.T, h *harness.Home, rows []api.Instance) {
	t.Helper()
	if len(harness.ByID(rows)) != len(rows) {
		t.Errorf("duplicate ids: %+v", rows)
	}
	if d := duplicates(rows); d != "" {
		t.Errorf("rows share: %s", d)
	}
	online := 0
	for _, r := range rows {
		switch r.Status {
		case "online":
			online++
			if !harness.Alive(r.Pid) {
				t.Errorf("%s[%d] online with dead pid %d", r.Name, r.Index, r.Pid)
			} else if w := harness.WaitWho(t, port(r), r.Name, r.Index); w.Pid != r.Pid {
				t.Errorf("%s[%d]: port %d answered by pid %d, listed %d", r.Name, r.Index, port(r), w.Pid, r.Pid)
			}
		case "stopped":
			if r.Pid != 0 || r.Port != nil {
				t.Errorf("stopped %s[%d] has pid %d port %d", r.Name, r.Index, r.Pid, port(r))
			}
		default:
			t.Errorf("%s[%d] is %s (%s)", r.Name, r.Index, r.Status, r.Reason)
		}
	}
	if got := sorted(h.AppProcs()); !slices.Equal(got, onlinePids(rows)) {
		t.Errorf("app processes %v, online pids %v", got, onlinePids(rows))
	}
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err = stateMatches(h, rows); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("state.json does not match the list: %v", err)
	}
	t.Logf("%d rows, %d online", len(rows), online)
}

// `restart all` with several stopped apps on one auto range (found by the storm above): each
// app must get its own free ports, as consecutive `restart NAME` calls would give them. Today
// the apps are planned one by one without the earlier plans' ports being held, so two plans
// pick the same port, the second app's reservation fails with "Port N is already assigned to
// process 'a'", and that app and every app after it stay stopped.
func TestRestartAllStoppedAppsOnSharedAutoRange(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	base := harness.FreePorts(t, 6)
	spec := fmt.Sprintf("auto:%d-%d", base, base+5)
	for _, n := range []string{"a", "b", "c"} {
		h.OK("start", harness.Echo, "--name", n, "--port", spec)
	}
	h.WaitList(10*time.Second, "a, b and c online", func(rows []api.Instance) bool {
		return harness.AllOnline("a", 1)(rows) && harness.AllOnline("b", 1)(rows) && harness.AllOnline("c", 1)(rows)
	})
	h.OK("stop", "all")
	r := h.Run("restart", "all")
	if r.Code != 0 {
		t.Errorf("restart all: exit %d, stderr %q", r.Code, r.Stderr)
	}
	rows := h.List()
	for _, n := range []string{"a", "b", "c"} {
		if rs := harness.Rows(rows, n); len(rs) != 1 || rs[0].Status != "online" {
			t.Errorf("%s after restart all:\n%s", n, rowsText(rs))
		}
	}
	if d := duplicates(rows); d != "" {
		t.Errorf("rows share: %s", d)
	}
	// Whatever restart all did, the daemon is consistent with itself.
	rows = h.WaitList(10*time.Second, "settled", settled)
	checkConsistent(t, h, rows)
}
