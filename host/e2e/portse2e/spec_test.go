package portse2e

import (
	"strconv"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Acceptance 1: a bad --port spec is refused before anything runs, with an error that quotes
// the spec and says what is wrong.
func TestSpecInvalidRefusedBeforeStart(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	for _, c := range []struct {
		spec string
		why  string // what the message must say is wrong
	}{
		{"abc", "not a port number"},
		{"0", "out of range"},
		{"70000", "out of range"},
		{"3003-3000", "reversed"},
		{"auto:", "needs a range"},
		{"3000-", "no end port"},
		{"auto:5000", "needs a range"},
	} {
		t.Run(c.spec, func(t *testing.T) {
			r := h.Run("start", harness.Echo, "--name", "bad", "--port", c.spec)
			if r.Code == 0 {
				t.Fatalf("start --port %s succeeded:\n%s", c.spec, r.Stdout)
			}
			harness.ErrLike(t, r.Stderr, `"`+c.spec+`"`, c.why)
			if n := strings.Count(strings.TrimRight(r.Stderr, "\n"), "\n"); n != 0 {
				t.Errorf("error is not one line: %q", r.Stderr)
			}
		})
	}
	// A single port with more than one instance: suggest a range or auto:.
	t.Run("single-port-2-instances", func(t *testing.T) {
		p := harness.FreePorts(t, 2)
		r := h.Run("start", harness.Echo, "--name", "bad", "--instances", "2", "--port", strconv.Itoa(p))
		if r.Code == 0 {
			t.Fatalf("start --instances 2 --port %d succeeded:\n%s", p, r.Stdout)
		}
		harness.ErrLike(t, r.Stderr, strconv.Itoa(p), "2 instances", harness.PortRange(p, p+1), "auto:")
	})
	noApp(t, h, "bad")
	if ps := h.AppProcs(); len(ps) != 0 {
		t.Errorf("app processes running after refused starts: %v", ps)
	}
}
