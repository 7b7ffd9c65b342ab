package portse2e

import (
	"slices"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Acceptance 11: ports below 1024. The tests run as root here, so --port 80 either works (the
// app answers on 80) or fails with a clear error; it never crashes the CLI or the daemon.
func TestLowPortWorksOrFailsClearly(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	r := h.Run("start", harness.Echo, "--name", "web80", "--port", "80")
	if r.Code != 0 {
		harness.ErrLike(t, r.Stderr, "80")
		t.Logf("--port 80 refused: %s", r.Stderr)
		noApp(t, h, "web80")
	} else {
		rows := h.WaitList(20*time.Second, "web80 online", harness.AllOnline("web80", 1))
		if got := harness.PortsOf(rows, "web80"); !slices.Equal(got, []int{80}) {
			t.Errorf("web80 ports = %v, want [80]", got)
		}
		harness.WaitWho(t, 80, "web80", 0)
		h.OK("delete", "web80")
		waitSilent(t, 80)
	}
	// The daemon is still there and answers.
	h.OK("ping")
}
