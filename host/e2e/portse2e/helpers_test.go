package portse2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

func url(port int, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", port, path) }

// envOf asks the echo app on port for one of its environment variables.
func envOf(t *testing.T, port int, name string) string {
	t.Helper()
	v, err := harness.EchoEnv(port, name)
	if err != nil {
		t.Fatalf("GET /env?name=%s on %d: %v", name, port, err)
	}
	return v
}

// waitSilent waits until nothing answers HTTP on port.
func waitSilent(t *testing.T, port int) {
	t.Helper()
	harness.Eventually(t, 15*time.Second, fmt.Sprintf("port %d to stop answering", port), func() bool {
		_, err := harness.Get(url(port, "/"))
		return err != nil
	})
}

// wantErr checks the CLI error contract word for word: stderr is exactly "Error: <msg>\n".
func wantErr(t *testing.T, stderr, msg string) {
	t.Helper()
	if got := strings.TrimRight(stderr, "\n"); got != "Error: "+msg {
		t.Errorf("stderr:\n  got  %q\n  want %q", stderr, "Error: "+msg+"\n")
	}
}

// noApp checks that list has no row for name.
func noApp(t *testing.T, h *harness.Home, name string) {
	t.Helper()
	if rs := harness.Rows(h.List(), name); len(rs) != 0 {
		t.Errorf("list has rows for %s after a failed start: %+v", name, rs)
	}
}
