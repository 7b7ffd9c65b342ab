package plugine2e

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// A plugin that crashes, hangs, fails or answers nonsense gives an error naming it; the daemon
// keeps running; with the fault gone (the "once" marker exists) the next call starts the
// plugin afresh and succeeds.
func TestAllocatorFaultsAreContained(t *testing.T) {
	for _, tt := range []struct {
		mode string
		want []string
	}{
		{"crash", []string{"plugin 'bad'", "crashed during Allocate", "started afresh on next use"}},
		{"hang", []string{"plugin 'bad'", "did not answer Allocate within 500ms"}},
		{"error", []string{"plugin 'bad'", "Allocate failed: faulty plugin failed on purpose"}},
		{"outside", []string{"plugin 'bad'", "answered with port 1, which is not one of the", "candidate ports"}},
		{"dupes", []string{"plugin 'bad'", "more than once"}},
		{"toofew", []string{"plugin 'bad'", "allowed 1 port(s) for 2 instance(s) without denying"}},
		{"deny", []string{"denied by policy 'bad': faulty says no"}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			h := harness.NewHome(t)
			marker := filepath.Join(t.TempDir(), "once")
			h.OK("plugin", "add", "bad", faulty, "--timeout", "500ms",
				"--config", `{"mode": "`+tt.mode+`", "once": "`+marker+`"}`)
			// plugin add itself ran Describe and Configure only; the fault is in Allocate.
			os.Remove(marker)
			pid := h.DaemonPid()
			base := harness.FreePorts(t, 20)
			spec := harness.AutoRange(base, base+19)
			stderr := h.Fail("start", harness.Echo, "--name", "web", "-i", "2", "--port", spec)
			harness.ErrLike(t, stderr, tt.want...)
			pingOK(t, h, pid)
			if rows := h.List(); len(rows) != 0 {
				t.Fatalf("a failed allocation left apps behind: %+v", rows)
			}
			// The fault happened once; the same request now succeeds.
			h.OK("start", harness.Echo, "--name", "web", "-i", "2", "--port", spec)
			h.WaitList(wait, "web online", harness.AllOnline("web", 2))
			row := pluginRow(t, h, "bad")
			switch tt.mode {
			case "crash", "hang":
				if row.Starts != 2 {
					t.Errorf("plugin started %d times, want 2 (once at add, once afresh after the fault)", row.Starts)
				}
			default:
				if row.Starts != 1 {
					t.Errorf("plugin started %d times, want 1: a plugin that answered is not restarted", row.Starts)
				}
			}
			if row.Status != "running" {
				t.Errorf("status %q after a good call, want running", row.Status)
			}
		})
	}
}

// A hook that crashes or hangs on `starting` never stops an app from starting: the start goes
// ahead with a warning naming the plugin. A veto does stop it.
func TestStartingHookFaultsAndVeto(t *testing.T) {
	for _, tt := range []struct {
		mode    string
		vetoed  bool
		warning string
	}{
		{"hook-crash", false, "plugin 'hook': crashed during Handle(starting)"},
		{"hook-hang", false, "plugin 'hook': did not answer Handle(starting) within 500ms"},
		{"veto", true, ""},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			h := harness.NewHome(t)
			h.OK("plugin", "add", "hook", faulty, "--timeout", "500ms", "--config", `{"mode": "`+tt.mode+`"}`)
			pid := h.DaemonPid()
			r := h.Run("start", harness.Echo, "--name", "web", "--port", strconv.Itoa(harness.FreePorts(t, 1)))
			if tt.vetoed {
				if r.Code == 0 {
					t.Fatal("a vetoed start succeeded")
				}
				harness.ErrLike(t, r.Stderr, "start of 'web' vetoed by plugin 'hook': faulty vetoes web")
				if rows := h.List(); len(rows) != 0 {
					t.Fatalf("a vetoed start left apps behind: %+v", rows)
				}
				return
			}
			if r.Code != 0 {
				t.Fatalf("start failed because of a broken hook: %s", r.Stderr)
			}
			if !contains(r.Stderr, tt.warning) {
				t.Errorf("stderr %q does not warn %q", r.Stderr, tt.warning)
			}
			h.WaitList(wait, "web online", harness.AllOnline("web", 1))
			pingOK(t, h, pid)
		})
	}
}

// Bad registrations are refused with an error naming what is wrong, and change nothing.
func TestBadPluginRegistrations(t *testing.T) {
	h := harness.NewHome(t)
	dir := t.TempDir()
	notExec := filepath.Join(dir, "plain")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	script := harness.WriteScript(t, dir, "script", "#!/bin/sh\necho not a plugin\nsleep 30\n")
	h.OK("plugin", "add", "good", eventlog, "--config", `{"file": "`+filepath.Join(dir, "ev.log")+`"}`)
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing", []string{"x", filepath.Join(dir, "nope")}, []string{"cannot use", "nope", "no such file"}},
		{"directory", []string{"x", dir}, []string{"is not a regular file"}},
		{"not executable", []string{"x", notExec}, []string{"is not executable"}},
		{"not a plugin", []string{"x", script}, []string{"plugin 'x'", "not a pmdaemon plugin", "not a plugin"}},
		{"exits at once", []string{"x", "/bin/true"}, []string{"plugin 'x'", "ended without a handshake"}},
		{"stdout garbage", []string{"x", garbage}, []string{"plugin 'x'", "wrote to stdout before the handshake", "hello from a plugin"}},
		{"wrong handshake", []string{"x", badshake}, []string{"plugin 'x'", "another plugin protocol version", "99"}},
		{"config not JSON", []string{"x", eventlog, "--config", `{"file": `}, []string{"--config is not valid JSON"}},
		{"config trailing data", []string{"x", eventlog, "--config", `{} {}`}, []string{"--config is not valid JSON"}},
		{"config refused", []string{"x", eventlog, "--config", `{"fiel": "/tmp/x"}`}, []string{"plugin 'x' refused its configuration"}},
		{"duplicate name", []string{"good", eventlog, "--config", `{"file": "/tmp/y"}`}, []string{"a plugin named 'good' is already registered"}},
		{"bad name", []string{"no spaces", eventlog}, []string{"plugin name \"no spaces\" is not valid"}},
		{"bad timeout", []string{"x", eventlog, "--timeout", "-1s"}, []string{"timeout \"-1s\""}},
		{"one argument", []string{"x"}, []string{"plugin add takes NAME and PATH"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stderr := h.Fail(append([]string{"plugin", "add"}, tt.args...)...)
			harness.ErrLike(t, stderr, tt.want...)
		})
	}
	rows := plugins(t, h)
	if len(rows) != 1 || rows[0].Name != "good" || rows[0].Status != "running" {
		t.Fatalf("bad registrations changed the plugin list: %+v", rows)
	}
	harness.ErrLike(t, h.Fail("plugin", "remove", "nope"), "plugin 'nope' not found")
}

// A registered binary that changes is refused: it is pinned by sha256.
func TestChangedPluginBinaryIsRefused(t *testing.T) {
	h := harness.NewHome(t)
	bin := filepath.Join(t.TempDir(), "policy")
	copyFile(t, faulty, bin)
	h.OK("plugin", "add", "policy", bin, "--config", `{"mode": "ok"}`)
	h.OK("kill") // the plugin process ends; the next daemon starts it on first use
	f, err := os.OpenFile(bin, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("tampered"))
	f.Close()
	base := harness.FreePorts(t, 4)
	stderr := h.Fail("start", harness.Echo, "--name", "web", "--port", harness.AutoRange(base, base+3))
	harness.ErrLike(t, stderr, "plugin 'policy'", "has changed since it was added", "refusing to run it", "pmdaemon plugin trust policy")
	row := pluginRow(t, h, "policy")
	if !contains(row.Status, "changed") {
		t.Errorf("status %q, want it to say the binary changed", row.Status)
	}
	// The owner re-pins it; its config and place are kept and it runs again.
	h.OK("plugin", "trust", "policy")
	after := pluginRow(t, h, "policy")
	if after.SHA256 == row.SHA256 || after.Status != "running" || !contains(string(after.Config), `"ok"`) {
		t.Fatalf("after trust: %+v", after)
	}
	h.OK("start", harness.Echo, "--name", "web", "--port", harness.AutoRange(base, base+3))
	harness.ErrLike(t, h.Fail("plugin", "trust", "nope"), "plugin 'nope' not found")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// A hook that hangs on every event cannot hold up its removal (or anything waiting behind
// it): what is queued for it is dropped, not delivered one timeout at a time.
func TestRemovingAHungHookIsPrompt(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("plugin", "add", "hang", faulty, "--timeout", "300ms", "--config", `{"mode": "events-hang"}`)
	// A crash loop makes events faster than the hook fails to handle them.
	h.OK("start", "sh -c 'exit 1'", "--name", "crash", "--max-restarts", "40", "--min-uptime", "1s")
	h.WaitList(wait, "a queue of events", func(rows []api.Instance) bool {
		r := harness.Rows(rows, "crash")
		return len(r) == 1 && r[0].Restarts >= 20
	})
	start := time.Now()
	h.OK("plugin", "remove", "hang")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("plugin remove took %s with a hung hook's queue, want it prompt", took)
	}
	start = time.Now()
	h.OK("start", "sleep 1000", "--name", "after")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a start after the removal took %s", took)
	}
}
