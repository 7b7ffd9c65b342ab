package portse2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Acceptance 8: `restart web-app --port P2` moves the app; info shows configured vs live;
// save writes the configured spec.
func TestRestartPortOverride(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 2)
	p, p2 := b, b+1
	h.OK("start", harness.Echo, "--name", "web-app", "--port", strconv.Itoa(p))
	h.WaitList(20*time.Second, "web-app online", harness.AllOnline("web-app", 1))
	harness.WaitWho(t, p, "web-app", 0)

	h.OK("restart", "web-app", "--port", strconv.Itoa(p2))
	rows := h.WaitList(20*time.Second, "web-app online", harness.AllOnline("web-app", 1))
	if got := harness.PortsOf(rows, "web-app"); !slices.Equal(got, []int{p2}) {
		t.Errorf("ports after override = %v, want [%d]", got, p2)
	}
	harness.WaitWho(t, p2, "web-app", 0)
	if got := envOf(t, p2, "PORT"); got != strconv.Itoa(p2) {
		t.Errorf("PORT=%q after override, want %d", got, p2)
	}
	if _, err := harness.GetWho(p); err == nil {
		t.Errorf("old port %d still answers after restart --port %d", p, p2)
	}
	checkOverride(t, h.Info("web-app"), strconv.Itoa(p), strconv.Itoa(p2), true, []int{p2})

	// save writes the configured spec, not the live one.
	h.OK("save")
	b2, err := os.ReadFile(filepath.Join(h.Dir, "dump.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dump struct {
		Apps []struct {
			Name string          `json:"name"`
			Port json.RawMessage `json:"port"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(b2, &dump); err != nil {
		t.Fatalf("dump.json: %v\n%s", err, b2)
	}
	if len(dump.Apps) != 1 || dump.Apps[0].Name != "web-app" || string(dump.Apps[0].Port) != `"`+strconv.Itoa(p)+`"` {
		t.Errorf("dump.json apps = %s, want web-app with port %q", b2, strconv.Itoa(p))
	}

	// A plain restart keeps the live ports.
	h.OK("restart", "web-app")
	h.WaitList(20*time.Second, "web-app online", harness.AllOnline("web-app", 1))
	harness.WaitWho(t, p2, "web-app", 0)
	checkOverride(t, h.Info("web-app"), strconv.Itoa(p), strconv.Itoa(p2), true, []int{p2})

	// The live port is held, the old one is not.
	wantErr(t, h.Fail("start", harness.Echo, "--name", "other", "--port", strconv.Itoa(p2)),
		"Port "+strconv.Itoa(p2)+" is already assigned to process 'web-app'")
	h.OK("start", harness.Echo, "--name", "other", "--port", strconv.Itoa(p))
	h.WaitList(20*time.Second, "other online", harness.AllOnline("other", 1))
	harness.WaitWho(t, p, "other", 0)
}

func checkOverride(t *testing.T, a api.App, spec, live string, override bool, ports []int) {
	t.Helper()
	if a.PortSpec != spec || a.LivePortSpec != live || a.PortOverride != override || !slices.Equal(a.Ports, ports) {
		t.Errorf("info: port_spec %q live_port_spec %q port_override %v ports %v; want %q %q %v %v",
			a.PortSpec, a.LivePortSpec, a.PortOverride, a.Ports, spec, live, override, ports)
	}
	if a.Config.Port != spec {
		t.Errorf("info: config.port %q, want the configured %q", a.Config.Port, spec)
	}
}

// Acceptance 8: `reload api --port A-(A+3)` on a single-instance app ends as 4 instances on
// A..A+3, and at no sampled moment during the reload does nothing answer.
func TestReloadToRangeIsGraceful(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	p := harness.FreePorts(t, 1)
	a := harness.FreePorts(t, 4)
	// Without a health check an instance is ready once online for min_uptime (1s by default),
	// which promises no gap only to an app that listens within it: 3s leaves a race-built echo
	// app room to listen on a machine loaded by the other suites.
	h.OK("start", harness.Echo, "--name", "api", "--port", strconv.Itoa(p), "--min-uptime", "3s")
	h.WaitList(20*time.Second, "api online", harness.AllOnline("api", 1))
	harness.WaitWho(t, p, "api", 0)

	all := append([]int{p}, harness.Seq(a, 4)...)
	var (
		mu            sync.Mutex
		rounds, holes int
		answered      = map[int]int{}
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			got := 0
			for _, port := range all {
				if w, err := harness.GetWho(port); err == nil && w.App == "api" {
					got = port
					break
				}
			}
			mu.Lock()
			rounds++
			if got == 0 {
				holes++
			} else {
				answered[got]++
			}
			mu.Unlock()
		}
	}()
	harness.Eventually(t, 10*time.Second, "the sampler to run", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return rounds > 0
	})

	h.OK("reload", "api", "--port", harness.PortRange(a, a+3))
	rows := h.WaitList(20*time.Second, "4 instances of api online", harness.AllOnline("api", 4))
	for i := 0; i < 4; i++ {
		harness.WaitWho(t, a+i, "api", i)
	}
	close(stop)
	<-done
	mu.Lock()
	t.Logf("reload sampled %d times: %d with nothing answering; answers by port: %v", rounds, holes, answered)
	if holes > 0 {
		t.Errorf("during the reload, %d of %d samples found no instance answering", holes, rounds)
	}
	mu.Unlock()

	if got := harness.PortsOf(rows, "api"); !slices.Equal(got, harness.Seq(a, 4)) {
		t.Errorf("ports after reload = %v, want %v", got, harness.Seq(a, 4))
	}
	waitSilent(t, p)
	checkOverride(t, h.Info("api"), strconv.Itoa(p), harness.PortRange(a, a+3), true, harness.Seq(a, 4))
	// The old port is free again for others.
	h.OK("start", harness.Echo, "--name", "other", "--port", strconv.Itoa(p))
	h.WaitList(20*time.Second, "other online", harness.AllOnline("other", 1))
	harness.WaitWho(t, p, "other", 0)
}

// Acceptance 8: a failed override leaves the app running as it was.
func TestFailedOverrideChangesNothing(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 6)
	p, held, busy, r := b, b+1, b+2, b+3 // r, r+1, r+2 for a range override
	h.OK("start", harness.Echo, "--name", "web", "--port", strconv.Itoa(p))
	h.OK("start", harness.Echo, "--name", "holder", "--port", strconv.Itoa(held))
	harness.Listen(t, "tcp4", "0.0.0.0:"+strconv.Itoa(busy))
	harness.Listen(t, "tcp6", "[::]:"+strconv.Itoa(r+1))
	rows := h.WaitList(20*time.Second, "web and holder online", func(rows []api.Instance) bool {
		return harness.AllOnline("web", 1)(rows) && harness.AllOnline("holder", 1)(rows)
	})
	pid := harness.PidsOf(rows, "web")[0]
	harness.WaitWho(t, p, "web", 0)

	for _, c := range []struct {
		args []string
		msg  string   // exact message, or
		like []string // words of a product message
	}{
		{args: []string{"restart", "web", "--port", harness.PortRange(b+5, b+2)}, like: []string{harness.PortRange(b+5, b+2), "reversed"}},
		{args: []string{"reload", "web", "--port", harness.PortRange(b+5, b+2)}, like: []string{harness.PortRange(b+5, b+2), "reversed"}},
		{args: []string{"restart", "web", "--port", "70000"}, like: []string{"70000", "out of range"}},
		{args: []string{"reload", "web", "--port", "70000"}, like: []string{"70000", "out of range"}},
		{args: []string{"restart", "web", "--port", strconv.Itoa(held)}, msg: "Port " + strconv.Itoa(held) + " is already assigned to process 'holder'"},
		{args: []string{"reload", "web", "--port", strconv.Itoa(held)}, msg: "Port " + strconv.Itoa(held) + " is already assigned to process 'holder'"},
		{args: []string{"restart", "web", "--port", strconv.Itoa(busy)}, msg: "Port " + strconv.Itoa(busy) + " is already in use by another process"},
		{args: []string{"restart", "web", "--instances", "3", "--port", harness.PortRange(r, r+2)}, msg: "Port " + strconv.Itoa(r+1) + " is already in use by another process"},
		{args: []string{"reload", "web", "--port", harness.PortRange(r, r+2)}, msg: "Port " + strconv.Itoa(r+1) + " is already in use by another process"},
		{args: []string{"restart", "web", "--instances", "2", "--port", harness.PortRange(b, b+1)}, msg: "Port " + strconv.Itoa(held) + " is already assigned to process 'holder'"},
	} {
		stderr := h.Fail(c.args...)
		if c.msg != "" {
			wantErr(t, stderr, c.msg)
		} else {
			harness.ErrLike(t, stderr, c.like...)
		}
		rows := h.List()
		rs := harness.Rows(rows, "web")
		if len(rs) != 1 || rs[0].Status != "online" || rs[0].Pid != pid || rs[0].Port == nil || *rs[0].Port != p {
			t.Errorf("after failed %s: web rows %+v, want one online row pid %d port %d", strings.Join(c.args, " "), rs, pid, p)
		}
		if w, err := harness.GetWho(p); err != nil || w.Pid != pid {
			t.Errorf("after failed %s: port %d answers %+v %v, want pid %d", strings.Join(c.args, " "), p, w, err, pid)
		}
		checkOverride(t, h.Info("web"), strconv.Itoa(p), strconv.Itoa(p), false, []int{p})
	}
	if got := harness.PidsOf(h.List(), "holder"); len(got) != 1 || got[0] == 0 {
		t.Errorf("holder rows changed: %v", got)
	}
	// The failed overrides reserved nothing: r and r+2 can be taken by another app.
	h.OK("start", harness.Echo, "--name", "probe", "--instances", "1", "--port", strconv.Itoa(r))
	h.OK("start", harness.Echo, "--name", "probe2", "--port", strconv.Itoa(r+2))
	h.WaitList(20*time.Second, "probes online", func(rows []api.Instance) bool {
		return harness.AllOnline("probe", 1)(rows) && harness.AllOnline("probe2", 1)(rows)
	})
	harness.WaitWho(t, r, "probe", 0)
	harness.WaitWho(t, r+2, "probe2", 0)
}
