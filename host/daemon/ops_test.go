package daemon

import (
	"context"
	"errors"
	"io"
	"log"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/supervisor"
)

// These tests run the daemon's operations in-process: a Daemon on a temporary home, running
// real short-lived processes (sleep), with no API and no mocks.

// runningDaemon makes a running daemon on a fresh home; its cleanup stops every instance.
func runningDaemon(t testing.TB) *Daemon {
	t.Helper()
	d, err := New(t.TempDir(), log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	d.Restore()
	d.Run()
	t.Cleanup(d.Shutdown)
	return d
}

// sleeper is an app running sleep, quick to stop.
func sleeper(t *testing.T, name string, instances int, port string) config.App {
	cfg := config.NewApp()
	cfg.Name, cfg.Script, cfg.Args, cfg.Cwd = name, "sleep", []string{"600"}, t.TempDir()
	cfg.Instances, cfg.Port, cfg.KillTimeout = instances, port, time.Second
	return cfg
}

func mustStart(t *testing.T, d *Daemon, cfg config.App) *api.Started {
	t.Helper()
	st, err := d.Start(context.Background(), api.StartRequest{App: cfg})
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Name, err)
	}
	return st
}

// rows lists the instances of app as list shows them.
func rows(d *Daemon, app string) []api.Instance {
	var out []api.Instance
	for _, r := range d.List() {
		if r.Name == app {
			out = append(out, r)
		}
	}
	return out
}

func pidsOf(d *Daemon, app string) []int {
	var out []int
	for _, r := range rows(d, app) {
		out = append(out, r.Pid)
	}
	return out
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func TestReplaceOrder(t *testing.T) {
	tests := []struct {
		name    string
		old     []int // each old instance's port
		ports   []int // the plan's ports; nil for none
		n       int
		want    []int
		wantErr bool
	}{
		{name: "shift up frees ports from the top", old: []int{3000, 3001, 3002}, ports: []int{3001, 3002, 3003}, n: 3, want: []int{2, 1, 0}},
		{name: "shift down frees ports from the bottom", old: []int{3001, 3002, 3003}, ports: []int{3000, 3001, 3002}, n: 3, want: []int{0, 1, 2}},
		{name: "same ports in place", old: []int{3000, 3001}, ports: []int{3000, 3001}, n: 2, want: []int{0, 1}},
		{name: "no ports", old: []int{0, 0}, ports: nil, n: 2, want: []int{0, 1}},
		{name: "grows onto a held port after its holder moves", old: []int{3000}, ports: []int{3001, 3000}, n: 2, want: []int{0, 1}},
		{name: "shrinks", old: []int{3000, 3001, 3002}, ports: []int{3000}, n: 1, want: []int{0}},
		{name: "a swap has no order", old: []int{3000, 3001}, ports: []int{3001, 3000}, n: 2, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var old []*slot
			for i, p := range tt.old {
				old = append(old, &slot{index: i, port: p})
			}
			got, err := replaceOrder(old, &plan{ports: tt.ports, n: tt.n})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "swap ports") {
					t.Fatalf("replaceOrder = %v, %v; want the swap error", got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("replaceOrder = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestPlanOverrides(t *testing.T) {
	cfg := config.NewApp()
	cfg.Port = "3000-3001"
	running := appNow{cfg: cfg, liveSpec: "3000-3001", held: []int{3000, 3001}}
	overridden := appNow{cfg: cfg, liveSpec: "4000-4001", override: "4000-4001", held: []int{4000, 4001}}
	tests := []struct {
		name         string
		now          appNow
		req          api.TargetRequest
		reload       bool
		wantSpec     string
		wantOverride string
		wantN        int
		wantKeep     []int
		wantErr      string
	}{
		{name: "plain restart keeps everything", now: running, wantSpec: "3000-3001", wantN: 2, wantKeep: []int{3000, 3001}},
		{name: "new port is an override", now: running, req: api.TargetRequest{Port: "5000-5001"}, wantSpec: "5000-5001", wantOverride: "5000-5001", wantN: 2},
		{name: "the saved port ends the override", now: overridden, req: api.TargetRequest{Port: "3000-3001"}, wantSpec: "3000-3001", wantN: 2},
		{name: "same spec as live keeps ports", now: overridden, req: api.TargetRequest{Port: "4000-4001"}, wantSpec: "4000-4001", wantOverride: "4000-4001", wantN: 2, wantKeep: []int{4000, 4001}},
		{name: "reload onto a range takes its size", now: running, req: api.TargetRequest{Port: "5000-5003"}, reload: true, wantSpec: "5000-5003", wantOverride: "5000-5003", wantN: 4},
		{name: "restart onto a range keeps the count", now: running, req: api.TargetRequest{Port: "5000-5003"}, wantSpec: "5000-5003", wantOverride: "5000-5003", wantN: 2},
		{name: "instances override the count", now: running, req: api.TargetRequest{Instances: 1}, wantSpec: "3000-3001", wantN: 1, wantKeep: []int{3000, 3001}},
		{name: "negative instances", now: running, req: api.TargetRequest{Instances: -1}, wantErr: "instances must be at least 1, got -1"},
		{name: "bad port spec", now: running, req: api.TargetRequest{Port: "nonsense"}, wantErr: "nonsense"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := planOverrides(tt.now, tt.req, tt.reload)
			if tt.wantErr != "" {
				var ue *UserError
				if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want a UserError saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.spec != tt.wantSpec || p.override != tt.wantOverride || p.n != tt.wantN || !slices.Equal(p.keep, tt.wantKeep) {
				t.Fatalf("plan = spec %q override %q n %d keep %v; want %q %q %d %v",
					p.spec, p.override, p.n, p.keep, tt.wantSpec, tt.wantOverride, tt.wantN, tt.wantKeep)
			}
		})
	}
}

func TestResolveTarget(t *testing.T) {
	d := runningDaemon(t)
	web := mustStart(t, d, sleeper(t, "web", 2, ""))
	api1 := mustStart(t, d, sleeper(t, "api", 1, ""))
	tests := []struct {
		target   string
		apps     []string
		slotID   int // -1: whole apps
		notFound bool
		userErr  bool
	}{
		{target: "all", apps: []string{"web", "api"}, slotID: -1},
		{target: "web", apps: []string{"web"}, slotID: -1},
		{target: strconv.Itoa(web.IDs[1]), apps: []string{"web"}, slotID: web.IDs[1]},
		{target: strconv.Itoa(api1.IDs[0]), apps: []string{"api"}, slotID: api1.IDs[0]},
		{target: " " + strconv.Itoa(web.IDs[0]), notFound: true}, // taken as given, never trimmed
		{target: "all ", notFound: true},
		{target: "+1", notFound: true},
		{target: "99", notFound: true},
		{target: "nope", notFound: true},
		{target: "", userErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			d.mu.Lock()
			ts, err := d.resolve(tt.target)
			d.mu.Unlock()
			var nf *NotFoundError
			var ue *UserError
			switch {
			case tt.notFound:
				if !errors.As(err, &nf) || nf.Target != tt.target {
					t.Fatalf("resolve(%q) = %v, %v; want not found", tt.target, ts, err)
				}
				return
			case tt.userErr:
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no target given") {
					t.Fatalf("resolve(%q) = %v, %v; want a UserError", tt.target, ts, err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			var apps []string
			for _, x := range ts {
				apps = append(apps, x.app.cfg.Name)
				if (tt.slotID < 0) != (x.slot == nil) || x.slot != nil && x.slot.id != tt.slotID {
					t.Fatalf("resolve(%q) slot = %+v; want id %d", tt.target, x.slot, tt.slotID)
				}
			}
			if !slices.Equal(apps, tt.apps) {
				t.Fatalf("resolve(%q) = %v; want %v", tt.target, apps, tt.apps)
			}
		})
	}
}

// Stop and delete share one path: both stop the processes; stop keeps the instances listed
// without ports, delete forgets them.
func TestStopAndDelete(t *testing.T) {
	tests := []struct {
		name      string
		op        func(*Daemon, context.Context, api.TargetRequest) (*api.Result, error)
		byID      bool
		wantRows  int
		wantPorts int // ports the registry still holds for the app
	}{
		{name: "stop app", op: (*Daemon).Stop, wantRows: 2},
		{name: "stop one instance", op: (*Daemon).Stop, byID: true, wantRows: 2, wantPorts: 1},
		{name: "delete app", op: (*Daemon).Delete, wantRows: 0},
		{name: "delete one instance", op: (*Daemon).Delete, byID: true, wantRows: 1, wantPorts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := runningDaemon(t)
			st := mustStart(t, d, sleeper(t, "web", 2, "auto:42100-42199"))
			pids := pidsOf(d, "web")
			target := "web"
			if tt.byID {
				target = strconv.Itoa(st.IDs[0])
			}
			if _, err := tt.op(d, context.Background(), api.TargetRequest{Target: target}); err != nil {
				t.Fatal(err)
			}
			if alive(pids[0]) {
				t.Errorf("pid %d of the target still runs", pids[0])
			}
			if tt.byID && !alive(pids[1]) {
				t.Errorf("pid %d, not targeted, was stopped", pids[1])
			}
			if got := len(rows(d, "web")); got != tt.wantRows {
				t.Errorf("%d rows listed; want %d", got, tt.wantRows)
			}
			held := 0
			for _, app := range d.PortsAssigned() {
				if app == "web" {
					held++
				}
			}
			if held != tt.wantPorts {
				t.Errorf("registry holds %d ports for web; want %d", held, tt.wantPorts)
			}
		})
	}
}

// A request whose client left while it waited for its turn does nothing.
func TestOperationOfAGoneClientDoesNothing(t *testing.T) {
	d := runningDaemon(t)
	mustStart(t, d, sleeper(t, "web", 1, ""))
	pid := pidsOf(d, "web")[0]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ops := map[string]func() error{
		"stop":    func() error { _, err := d.Stop(ctx, api.TargetRequest{Target: "web"}); return err },
		"delete":  func() error { _, err := d.Delete(ctx, api.TargetRequest{Target: "web"}); return err },
		"restart": func() error { _, err := d.Restart(ctx, api.TargetRequest{Target: "web"}); return err },
		"reload":  func() error { _, err := d.Reload(ctx, api.TargetRequest{Target: "web"}); return err },
		"start": func() error {
			_, err := d.Start(ctx, api.StartRequest{App: sleeper(t, "other", 1, "")})
			return err
		},
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v; want context.Canceled", name, err)
		}
	}
	if got := pidsOf(d, "web"); len(got) != 1 || got[0] != pid || !alive(pid) {
		t.Fatalf("web pids = %v; want %d untouched", got, pid)
	}
	if len(rows(d, "other")) != 0 {
		t.Fatal("the start of a gone client started its app")
	}
}

// cancelOnceSpawned cancels ctx once n instances of app not in exclude are online, so the
// operation is cut off in its wait for readiness (or after 10s, which fails the test's wait).
func cancelOnceSpawned(ctx context.Context, d *Daemon, app string, n int, exclude []int, cancel context.CancelFunc) {
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for ctx.Err() == nil && time.Now().Before(deadline) {
			fresh := 0
			for _, r := range rows(d, app) {
				if r.Pid > 0 && r.Status == string(supervisor.Online) && !slices.Contains(exclude, r.Pid) {
					fresh++
				}
			}
			if fresh >= n {
				break
			}
			time.Sleep(5 * time.Millisecond) // test-side polling of list; the daemon itself waits on events
		}
		cancel()
	}()
}

// A start whose client goes away during the wait for readiness ends at once; the instances it
// launched keep running, supervised.
func TestStartWaitEndsWithItsClient(t *testing.T) {
	d := runningDaemon(t)
	cfg := sleeper(t, "web", 2, "")
	cfg.MinUptime, cfg.WaitReady = time.Minute, true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelOnceSpawned(ctx, d, "web", 2, nil, cancel)
	begun := time.Now()
	_, err := d.Start(ctx, api.StartRequest{App: cfg})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	if took := time.Since(begun); took > 10*time.Second {
		t.Fatalf("start returned after %s: the wait did not end with its client", took)
	}
	rs := rows(d, "web")
	if len(rs) != 2 {
		t.Fatalf("%d instances listed; want 2", len(rs))
	}
	for _, r := range rs {
		if r.Status != string(supervisor.Online) || !alive(r.Pid) {
			t.Fatalf("instance %+v is not running; a start whose client left keeps its instances", r)
		}
	}
}

// A reload whose client goes away is rolled back: side by side, the new instances stop and
// the old ones, never stopped, run on; one at a time, the app is put back on its old ports.
func TestReloadOfAGoneClientRollsBack(t *testing.T) {
	tests := []struct {
		name string
		port string // the reload's --port
	}{
		{name: "side by side", port: "auto:42300-42399"},
		{name: "one at a time", port: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := runningDaemon(t)
			cfg := sleeper(t, "web", 2, "auto:42200-42299")
			mustStart(t, d, cfg)
			d.mu.Lock()
			d.apps["web"].cfg.MinUptime = time.Minute // the new instances are never ready
			d.mu.Unlock()
			before := rows(d, "web")
			oldPids := pidsOf(d, "web")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cancelOnceSpawned(ctx, d, "web", 1, oldPids, cancel)
			_, err := d.Reload(ctx, api.TargetRequest{Target: "web", Port: tt.port})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v; want context.Canceled", err)
			}
			after := rows(d, "web")
			if len(after) != len(before) {
				t.Fatalf("%d instances after; want %d", len(after), len(before))
			}
			for i, r := range after {
				if r.ID != before[i].ID || *r.Port != *before[i].Port {
					t.Errorf("instance %d is id %d port %d; want id %d port %d as before", i, r.ID, *r.Port, before[i].ID, *before[i].Port)
				}
			}
			if tt.port != "" {
				for i, r := range after {
					if r.Pid != oldPids[i] || !alive(r.Pid) {
						t.Errorf("instance %d pid %d; want the old pid %d still running", i, r.Pid, oldPids[i])
					}
				}
			}
			d.mu.Lock()
			rb := d.apps["web"].rollback
			d.mu.Unlock()
			if rb != nil {
				t.Errorf("rollback record left behind: %+v", rb)
			}
		})
	}
}
