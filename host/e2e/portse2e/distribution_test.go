package portse2e

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Acceptance 2: --instances 4 --port A-(A+3) gives instance i port A+i, with PORT,
// PM2_INSTANCE_ID and NODE_APP_INSTANCE set per instance.
func TestRangeGivesEachInstanceItsPort(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	a := harness.FreePorts(t, 4)
	h.OK("start", harness.Echo, "--name", "web-cluster", "--instances", "4", "--port", harness.PortRange(a, a+3))
	rows := h.WaitList(20*time.Second, "4 instances of web-cluster online", harness.AllOnline("web-cluster", 4))
	if got := harness.PortsOf(rows, "web-cluster"); !slices.Equal(got, harness.Seq(a, 4)) {
		t.Errorf("ports by instance = %v, want %v", got, harness.Seq(a, 4))
	}
	pids := harness.PidsOf(rows, "web-cluster")
	for i := 0; i < 4; i++ {
		w := harness.WaitWho(t, a+i, "web-cluster", i)
		if w.Pid != pids[i] {
			t.Errorf("port %d answered by pid %d, list says instance %d is pid %d", a+i, w.Pid, i, pids[i])
		}
		for k, want := range map[string]string{"PORT": strconv.Itoa(a + i), "PM2_INSTANCE_ID": strconv.Itoa(i), "NODE_APP_INSTANCE": strconv.Itoa(i)} {
			if got := envOf(t, a+i, k); got != want {
				t.Errorf("instance %d: %s=%q, want %q", i, k, got, want)
			}
		}
	}
}

// Acceptance 2: a range with fewer ports than instances is refused with the seed's message.
func TestRangeTooSmall(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	a := harness.FreePorts(t, 4)
	stderr := h.Fail("start", harness.Echo, "--name", "small", "--instances", "4", "--port", harness.PortRange(a, a+1))
	wantErr(t, stderr, "Port range "+harness.PortRange(a, a+1)+" has only 2 ports but 4 instances requested")
	noApp(t, h, "small")
	if ps := h.AppProcs(); len(ps) != 0 {
		t.Errorf("app processes running after a refused start: %v", ps)
	}
}

// A range larger than the instance count holds only the ports used (DESIGN §4).
func TestRangeLargerThanInstances(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	a := harness.FreePorts(t, 5)
	h.OK("start", harness.Echo, "--name", "wide", "--instances", "2", "--port", harness.PortRange(a, a+4))
	rows := h.WaitList(20*time.Second, "wide online", harness.AllOnline("wide", 2))
	if got := harness.PortsOf(rows, "wide"); !slices.Equal(got, harness.Seq(a, 2)) {
		t.Errorf("ports = %v, want %v", got, harness.Seq(a, 2))
	}
	h.OK("start", harness.Echo, "--name", "rest", "--port", strconv.Itoa(a+2))
	h.WaitList(20*time.Second, "rest online", harness.AllOnline("rest", 1))
	harness.WaitWho(t, a+2, "rest", 0)
}

// Acceptance 3: the seed's auto example. Of base..base+10, base+1, base+3 and base+4 are
// taken by other programs, so 3 instances get base, base+2 and base+5.
func TestAutoSkipsBusyPorts(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	base := harness.FreePorts(t, 11)
	harness.Listen(t, "tcp4", "0.0.0.0:"+strconv.Itoa(base+1))
	harness.Listen(t, "tcp4", "127.0.0.1:"+strconv.Itoa(base+3))
	harness.Listen(t, "tcp6", "[::]:"+strconv.Itoa(base+4))
	h.OK("start", harness.Echo, "--name", "workers", "--instances", "3", "--port", harness.AutoRange(base, base+10))
	rows := h.WaitList(20*time.Second, "workers online", harness.AllOnline("workers", 3))
	want := []int{base, base + 2, base + 5}
	if got := harness.PortsOf(rows, "workers"); !slices.Equal(got, want) {
		t.Errorf("ports by instance = %v, want %v", got, want)
	}
	for i, p := range want {
		harness.WaitWho(t, p, "workers", i)
		if got := envOf(t, p, "PORT"); got != strconv.Itoa(p) {
			t.Errorf("instance %d: PORT=%q, want %d", i, got, p)
		}
	}
	// Auto also skips ports another app holds in the registry.
	h.OK("start", harness.Echo, "--name", "more", "--port", harness.AutoRange(base, base+10))
	rows = h.WaitList(20*time.Second, "more online", harness.AllOnline("more", 1))
	if got := harness.PortsOf(rows, "more"); !slices.Equal(got, []int{base + 6}) {
		t.Errorf("second auto app got %v, want [%d]", got, base+6)
	}
}

// Acceptance 3: too few free ports in an auto range is a clear error naming the range, how
// many are free and how many are needed; nothing starts and nothing is held.
func TestAutoTooFewFree(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 4)
	harness.Listen(t, "tcp4", "0.0.0.0:"+strconv.Itoa(b+1))
	harness.Listen(t, "tcp4", "0.0.0.0:"+strconv.Itoa(b+2))
	stderr := h.Fail("start", harness.Echo, "--name", "workers", "--instances", "3", "--port", harness.AutoRange(b, b+3))
	harness.ErrLike(t, stderr, harness.PortRange(b, b+3), "2 free", "3 needed")
	noApp(t, h, "workers")
	if ps := h.AppProcs(); len(ps) != 0 {
		t.Errorf("app processes running after a refused start: %v", ps)
	}
	// Nothing was reserved: b and b+3 can be taken.
	h.OK("start", harness.Echo, "--name", "two", "--instances", "2", "--port", harness.AutoRange(b, b+3))
	rows := h.WaitList(20*time.Second, "two online", harness.AllOnline("two", 2))
	if got := harness.PortsOf(rows, "two"); !slices.Equal(got, []int{b, b + 3}) {
		t.Errorf("ports = %v, want [%d %d]", got, b, b+3)
	}
}
