package pluginhost

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// Real plugin binaries, built once for the package.
var reservedRange, eventlog, faulty string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost-bin-")
	if err != nil {
		panic(err)
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, b := range []struct {
		dst *string
		pkg string
	}{
		{&reservedRange, "./plugins/reserved-range"},
		{&eventlog, "./examples/plugins/eventlog"},
		{&faulty, "./host/e2e/plugine2e/testplugins/faulty"},
	} {
		*b.dst = filepath.Join(dir, filepath.Base(b.pkg))
		cmd := exec.Command("go", "build", "-o", *b.dst, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b.pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newManager(t testing.TB) *Manager {
	m := NewManager(io.Discard)
	t.Cleanup(m.Close)
	return m
}

func add(t testing.TB, m *Manager, name, path, config string) *Plugin {
	t.Helper()
	p, err := m.Probe(AddRequest{Name: name, Path: path, Config: json.RawMessage(config)})
	if err != nil {
		t.Fatalf("probe %s: %v", name, err)
	}
	if err := m.Add(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func seq(a, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = a + i
	}
	return out
}

// Each allocator sees what the one before it allowed: reserved-range drops 9000-9010, then
// "highest" allows the top two of what is left, which must be 8998-8999, not 9009-9010.
func TestAllocatorChainPassesCandidatesOn(t *testing.T) {
	m := newManager(t)
	add(t, m, "reserved", reservedRange, `{"ranges": {"9000-9999": "monitoring"}}`)
	add(t, m, "highest", faulty, `{"mode": "highest"}`)
	got, err := m.Allocate(sdk.AllocateRequest{App: "web", Instances: 2, Spec: "auto:8990-9010", Candidates: seq(8990, 21)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{8998, 8999}) {
		t.Fatalf("chain allowed %v, want [8998 8999]", got)
	}
	// In the other order, "highest" sees every candidate and picks reserved ports, which the
	// policy after it then denies.
	m2 := newManager(t)
	add(t, m2, "highest", faulty, `{"mode": "highest"}`)
	add(t, m2, "reserved", reservedRange, `{"ranges": {"9000-9999": "monitoring"}}`)
	_, err = m2.Allocate(sdk.AllocateRequest{App: "web", Instances: 2, Spec: "auto:8990-9010", Candidates: seq(8990, 21)})
	var de *DenialError
	if !errors.As(err, &de) || de.Plugin != "reserved" {
		t.Fatalf("err %v, want a denial by reserved", err)
	}
}

func TestCheckAllowed(t *testing.T) {
	cands := []int{10, 11, 12, 13}
	for _, tt := range []struct {
		got  []int
		need int
		want []int
		err  string
	}{
		{[]int{13, 11}, 2, []int{11, 13}, ""},
		{cands, 4, cands, ""},
		{[]int{10, 99}, 2, nil, "port 99, which is not one of the 4 candidate ports"},
		{[]int{10, 10}, 2, nil, "port 10 more than once"},
		{[]int{10}, 2, nil, "allowed 1 port(s) for 2 instance(s)"},
		{nil, 1, nil, "allowed 0 port(s) for 1 instance(s)"},
	} {
		got, err := checkAllowed(tt.got, cands, tt.need)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("checkAllowed(%v, %d): err %v, want %q", tt.got, tt.need, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("checkAllowed(%v, %d) = %v, %v; want %v", tt.got, tt.need, got, err, tt.want)
		}
	}
}

// Events reach a hook in the order they were emitted, and Flush returns once they have.
func TestEventsAreDeliveredInOrder(t *testing.T) {
	m := newManager(t)
	file := filepath.Join(t.TempDir(), "events.log")
	add(t, m, "log", eventlog, `{"file": "`+file+`"}`)
	const n = 200
	for i := 0; i < n; i++ {
		m.Emit(sdk.Event{Kind: sdk.Started, App: "web", Instance: i, Pid: 1000 + i, Time: time.Now()})
	}
	m.Flush()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	i := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev struct {
			Instance int `json:"instance"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Instance != i {
			t.Fatalf("event %d is instance %d: out of order", i, ev.Instance)
		}
		i++
	}
	if i != n {
		t.Fatalf("Flush returned with %d of %d events delivered", i, n)
	}
}

// A registered plugin is not started until it is used, and a changed binary is refused with
// the sha256 named.
func TestLazyStartAndPinning(t *testing.T) {
	m := newManager(t)
	bin := filepath.Join(t.TempDir(), "policy")
	b, _ := os.ReadFile(faulty)
	os.WriteFile(bin, b, 0o755)
	sum, _ := Hash(bin)
	m.Load([]Spec{{Name: "policy", Path: bin, SHA256: sum, Kinds: []string{sdk.KindAllocator, sdk.KindHook}, Config: json.RawMessage(`{"mode":"ok"}`)}})
	if st := m.List()[0].Status; st != "idle" {
		t.Fatalf("status %q before first use, want idle", st)
	}
	if _, err := m.Allocate(sdk.AllocateRequest{App: "a", Instances: 1, Spec: "auto:1-2", Candidates: []int{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if st := m.List()[0].Status; st != "running" {
		t.Fatalf("status %q after use, want running", st)
	}
	p, _ := m.Get("policy")
	p.Kill()
	os.WriteFile(bin, append(b, 'x'), 0o755)
	_, err := m.Allocate(sdk.AllocateRequest{App: "a", Instances: 1, Spec: "auto:1-2", Candidates: []int{1, 2}})
	if err == nil || !strings.Contains(err.Error(), "has changed since it was added (sha256 "+sum[:12]) {
		t.Fatalf("err %v, want the changed-binary refusal", err)
	}
	if st := m.List()[0].Status; !strings.HasPrefix(st, "changed") {
		t.Fatalf("status %q, want changed", st)
	}
}

// Within one operation, a hook that hangs on a starting call is asked once, not once per
// instance: the other starts skip it (one warning says so), while the other hooks are still
// asked and can still veto. The next operation asks it again. Before, ten starts cost ten
// timeouts and ten plugin restarts.
func TestStartingSkipsAHungHookForTheOperation(t *testing.T) {
	const timeout = 300 * time.Millisecond
	m := newManager(t)
	for _, h := range []struct{ name, mode string }{{"hang", "hook-hang"}, {"veto", "veto"}} {
		p, err := m.Probe(AddRequest{Name: h.name, Path: faulty, Timeout: timeout, Config: json.RawMessage(`{"mode": "` + h.mode + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	for op := 0; op < 2; op++ {
		end := m.Operation()
		begin := time.Now()
		var warnings []string
		for i := 0; i < 10; i++ {
			w, err := m.Starting(sdk.Event{Kind: sdk.Starting, App: "web", Instance: i, Time: time.Now()})
			warnings = append(warnings, w...)
			var veto *VetoError
			if !errors.As(err, &veto) || veto.Plugin != "veto" {
				t.Errorf("operation %d, start %d: %v; want the veto of plugin 'veto'", op, i, err)
			}
		}
		end()
		took := time.Since(begin)
		t.Logf("operation %d: 10 starting calls took %s", op, took.Round(time.Millisecond))
		if limit := 4*timeout + 2*time.Second; took > limit {
			t.Errorf("operation %d: 10 starting calls took %s, more than %s", op, took, limit)
		}
		want := "plugin 'hang': did not answer Handle(starting) within 300ms; it was stopped and will be started afresh on next use" +
			" (the start went ahead; the plugin is not asked about the other starts of this operation)"
		if len(warnings) != 1 || warnings[0] != want {
			t.Errorf("operation %d: warnings %q; want one: %q", op, warnings, want)
		}
	}
	// Outside an operation each call stands alone, as before.
	w, _ := m.Starting(sdk.Event{Kind: sdk.Starting, App: "web", Time: time.Now()})
	if len(w) != 1 || !strings.HasSuffix(w[0], " (the start went ahead)") {
		t.Errorf("a starting call outside an operation: warnings %q", w)
	}
	// A nested Operation joins the one in progress; its end does not end it.
	end := m.Operation()
	m.Operation()()
	m.Starting(sdk.Event{Kind: sdk.Starting, App: "web", Time: time.Now()})
	begin := time.Now()
	if w, _ := m.Starting(sdk.Event{Kind: sdk.Starting, App: "web", Time: time.Now()}); len(w) != 0 || time.Since(begin) > timeout {
		t.Errorf("after a nested operation ended, the hung hook was asked again: %q", w)
	}
	end()
}

// BenchmarkAllocation is the daemon's allocation path (candidates from the registry and a real
// OS bind probe, the policy chain, the pick) for 4 instances in a 100-port auto: range, with
// the built-in allocator only and with one real allocator plugin (reserved-range, over gRPC).
// With policies the whole range is probed, so that they can choose; without, only enough
// ports are.
func BenchmarkAllocation(b *testing.B) {
	spec, err := ports.ParseSpec("auto:20000-20099")
	if err != nil {
		b.Fatal(err)
	}
	req := ports.Request{App: "web", Instances: 4, Spec: spec}
	allocate := func(b *testing.B, m *Manager, limit int) {
		reg := ports.NewRegistry()
		out, cands, err := ports.Prepare(req, nil, reg, ports.OSProber{}, limit)
		if err != nil {
			b.Fatal(err)
		}
		cands, err = m.Allocate(sdk.AllocateRequest{App: req.App, Instances: 4, Spec: spec.String(), Candidates: cands, Assignments: reg.Assigned()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ports.Fill(req, out, cands); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("builtin", func(b *testing.B) {
		m := newManager(b)
		for b.Loop() {
			allocate(b, m, 0)
		}
	})
	b.Run("one-plugin", func(b *testing.B) {
		m := newManager(b)
		add(b, m, "reserved", reservedRange, `{"ranges": {"20050-20059": "monitoring"}}`)
		for b.Loop() {
			allocate(b, m, 4096)
		}
	})
}
