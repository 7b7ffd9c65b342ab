package faults

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// A daemon that dies while the CLI waits for its answer (here: killed -9 during a
// `start --wait-ready` of an app that never gets ready) is reported as that, with where to
// look and what to do next, instead of `Error: daemon: Post "http://pmdaemon/v1/start": EOF`.
// And what it says to do works: `list` brings a daemon back, which shows the app.
func TestCLIWhenDaemonDiesDuringRequest(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("ping")
	daemon := oneDaemon(t, h)
	res := make(chan harness.Result, 1)
	go func() {
		res <- h.Exec("start", "sleep 1000", "--name", "never", "--health-script", "false",
			"--wait-ready", "--wait-timeout", "2m")
	}()
	// Kill it once the instance is spawned and recorded, so the next daemon takes it back.
	harness.Eventually(t, 20*time.Second, "the instance recorded with its pid in state.json", func() bool {
		f, err := stateFile(h.Dir)
		if err != nil {
			return false
		}
		a := stateApp(f, "never")
		return a != nil && len(a.Instances) == 1 && a.Instances[0].Pid > 0 && harness.Alive(a.Instances[0].Pid)
	})
	select {
	case r := <-res:
		t.Fatalf("start --wait-ready of an app that is never ready returned: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	default:
	}
	sigkillDaemon(t, h, daemon)
	var r harness.Result
	select {
	case r = <-res:
	case <-time.After(30 * time.Second):
		t.Fatal("the CLI still waits 30s after the daemon died")
	}
	if r.Code == 0 {
		t.Fatalf("the CLI succeeded although its daemon died: %s", r.Stdout)
	}
	want := "Error: the daemon stopped while handling start (it may have crashed: see " + filepath.Join(h.Dir, "daemon.log") +
		"); run 'pmdaemon list' to see what is running\n"
	if r.Stderr != want {
		t.Errorf("stderr:\n%q\nwant\n%q", r.Stderr, want)
	}
	if strings.Contains(r.Stderr, "EOF") {
		t.Errorf("stderr shows the transport's error: %q", r.Stderr)
	}
	h.WaitList(20*time.Second, "never taken back", func(rows []api.Instance) bool {
		return harness.AllOnline("never", 1)(rows)
	})
}
