package portse2e

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// Acceptance 4: the seed's registry conflict, word for word.
func TestRegistryConflictSinglePorts(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	p := harness.FreePorts(t, 1)
	h.OK("start", harness.Echo, "--name", "app1", "--port", strconv.Itoa(p))
	h.WaitList(20*time.Second, "app1 online", harness.AllOnline("app1", 1))
	stderr := h.Fail("start", harness.Echo, "--name", "app2", "--port", strconv.Itoa(p))
	wantErr(t, stderr, "Port "+strconv.Itoa(p)+" is already assigned to process 'app1'")
	noApp(t, h, "app2")
	harness.WaitWho(t, p, "app1", 0)
}

// Acceptance 4: the registry spans apps: a range app's ports block a single-port app.
func TestRegistryConflictRangeBlocksSingle(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	p := harness.FreePorts(t, 2)
	h.OK("start", harness.Echo, "--name", "cluster", "--instances", "2", "--port", harness.PortRange(p, p+1))
	h.WaitList(20*time.Second, "cluster online", harness.AllOnline("cluster", 2))
	stderr := h.Fail("start", harness.Echo, "--name", "solo", "--port", strconv.Itoa(p+1))
	wantErr(t, stderr, "Port "+strconv.Itoa(p+1)+" is already assigned to process 'cluster'")
	noApp(t, h, "solo")
}

// Acceptance 4: and the reverse: a single-port app's port blocks a range that includes it;
// the range app starts nothing and holds nothing.
func TestRegistryConflictSingleBlocksRange(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	p := harness.FreePorts(t, 3)
	h.OK("start", harness.Echo, "--name", "solo", "--port", strconv.Itoa(p+1))
	h.WaitList(20*time.Second, "solo online", harness.AllOnline("solo", 1))
	soloPid := harness.PidsOf(h.List(), "solo")[0]
	stderr := h.Fail("start", harness.Echo, "--name", "cluster", "--instances", "3", "--port", harness.PortRange(p, p+2))
	wantErr(t, stderr, "Port "+strconv.Itoa(p+1)+" is already assigned to process 'solo'")
	noApp(t, h, "cluster")
	if ps := h.AppProcs(); len(ps) != 1 || ps[0] != soloPid {
		t.Errorf("app processes = %v, want only solo (%d)", ps, soloPid)
	}
	// p was not kept by the failed start.
	h.OK("start", harness.Echo, "--name", "first", "--port", strconv.Itoa(p))
	h.WaitList(20*time.Second, "first online", harness.AllOnline("first", 1))
	harness.WaitWho(t, p, "first", 0)
}

// Acceptance 5: ports bound by other programs, on IPv4 or IPv6, are refused with the seed's
// message; auto skips them.
func TestConflictWithOtherProgramsRefused(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 5)
	for _, c := range []struct {
		name, network, addr string
		port                int
	}{
		{"tcp4-any", "tcp4", "0.0.0.0:" + strconv.Itoa(b), b},
		{"tcp4-loopback", "tcp4", "127.0.0.1:" + strconv.Itoa(b+1), b + 1},
		{"tcp6-loopback", "tcp6", "[::1]:" + strconv.Itoa(b+2), b + 2},
		{"tcp6-any", "tcp6", "[::]:" + strconv.Itoa(b+3), b + 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			harness.Listen(t, c.network, c.addr)
			stderr := h.Fail("start", harness.Echo, "--name", "app", "--port", strconv.Itoa(c.port))
			wantErr(t, stderr, "Port "+strconv.Itoa(c.port)+" is already in use by another process")
			noApp(t, h, "app")
		})
	}
	// Auto over the four busy ports and one free one picks the free one.
	harness.Listen(t, "tcp4", "0.0.0.0:"+strconv.Itoa(b))
	harness.Listen(t, "tcp4", "127.0.0.1:"+strconv.Itoa(b+1))
	harness.Listen(t, "tcp6", "[::1]:"+strconv.Itoa(b+2))
	harness.Listen(t, "tcp6", "[::]:"+strconv.Itoa(b+3))
	h.OK("start", harness.Echo, "--name", "app", "--port", harness.AutoRange(b, b+4))
	rows := h.WaitList(20*time.Second, "app online", harness.AllOnline("app", 1))
	if got := harness.PortsOf(rows, "app"); !slices.Equal(got, []int{b + 4}) {
		t.Errorf("auto picked %v, want [%d]", got, b+4)
	}
	harness.WaitWho(t, b+4, "app", 0)
}

// Acceptance 6: a range start whose last port is bound by another program starts no instance
// and reserves nothing.
func TestConflictStartsAllOrNothing(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 4)
	l := harness.Listen(t, "tcp4", "0.0.0.0:"+strconv.Itoa(b+3))
	stderr := h.Fail("start", harness.Echo, "--name", "cluster", "--instances", "4", "--port", harness.PortRange(b, b+3))
	wantErr(t, stderr, "Port "+strconv.Itoa(b+3)+" is already in use by another process")
	noApp(t, h, "cluster")
	if ps := h.AppProcs(); len(ps) != 0 {
		t.Errorf("app processes running after a refused start: %v", ps)
	}
	for p := b; p < b+3; p++ {
		if _, err := harness.GetWho(p); err == nil {
			t.Errorf("port %d answers after a refused start", p)
		}
	}
	// Nothing reserved: another app takes the first three ports of that range.
	h.OK("start", harness.Echo, "--name", "other", "--instances", "3", "--port", harness.PortRange(b, b+2))
	rows := h.WaitList(20*time.Second, "other online", harness.AllOnline("other", 3))
	if got := harness.PortsOf(rows, "other"); !slices.Equal(got, harness.Seq(b, 3)) {
		t.Errorf("ports = %v, want %v", got, harness.Seq(b, 3))
	}
	for i := 0; i < 3; i++ {
		harness.WaitWho(t, b+i, "other", i)
	}
	// The same name can be used again once the port is free.
	l.Close()
	h.OK("start", harness.Echo, "--name", "cluster", "--port", strconv.Itoa(b+3))
	h.WaitList(20*time.Second, "cluster online", harness.AllOnline("cluster", 1))
	harness.WaitWho(t, b+3, "cluster", 0)
}
