package plugine2e

import (
	"slices"
	"strconv"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

const monitoring = `{"ranges": {"9000-9999": "monitoring"}}`

func TestReservedRangeDeniesAFixedPort(t *testing.T) {
	h := harness.NewHome(t)
	mustBeFree(t, 9100)
	h.OK("plugin", "add", "reserved-range", reservedRange, "--config", monitoring)
	stderr := h.Fail("start", harness.Echo, "--name", "mon", "--port", "9100")
	harness.ErrLike(t, stderr, "Error: Port 9100 is reserved by policy 'reserved-range': monitoring (9000-9999)")
	if rows := h.List(); len(rows) != 0 {
		t.Fatalf("a denied start left apps behind: %+v", rows)
	}
	// A range that touches the reserved block is denied at its first reserved port.
	stderr = h.Fail("start", harness.Echo, "--name", "mon", "-i", "4", "--port", "8998-9001")
	harness.ErrLike(t, stderr, "Port 9000 is reserved by policy 'reserved-range'")
	// Outside the reserved ranges the policy allows the spec as it is.
	base := harness.FreePorts(t, 2)
	h.OK("start", harness.Echo, "--name", "ok", "-i", "2", "--port", harness.PortRange(base, base+1))
	h.WaitList(wait, "ok online", harness.AllOnline("ok", 2))
	if got := harness.PortsOf(h.List(), "ok"); !slices.Equal(got, harness.Seq(base, 2)) {
		t.Fatalf("ports %v, want %v", got, harness.Seq(base, 2))
	}
	// Removing the policy lifts the reservation.
	h.OK("plugin", "remove", "reserved-range")
	h.OK("start", harness.Echo, "--name", "mon", "--port", "9100")
	harness.WaitWho(t, 9100, "mon", 0)
}

func TestReservedRangeMakesAutoSkipReservedPorts(t *testing.T) {
	h := harness.NewHome(t)
	mustBeFree(t, harness.Seq(8990, 21)...)
	h.OK("plugin", "add", "reserved-range", reservedRange, "--config", monitoring)
	// Another program holds 8990-8995: the candidates are 8996-9010, and the policy leaves
	// only 8996-8999 of them.
	for _, p := range harness.Seq(8990, 6) {
		harness.Listen(t, "tcp", "127.0.0.1:"+strconv.Itoa(p))
	}
	h.OK("start", harness.Echo, "--name", "web", "-i", "4", "--port", "auto:8990-9010")
	rows := h.WaitList(wait, "web online", harness.AllOnline("web", 4))
	if got := harness.PortsOf(rows, "web"); !slices.Equal(got, []int{8996, 8997, 8998, 8999}) {
		t.Fatalf("auto:8990-9010 gave %v, want 8996-8999 (9000-9010 are reserved)", got)
	}
	for i, p := range harness.Seq(8996, 4) {
		harness.WaitWho(t, p, "web", i)
	}
	// Every port left in the range is reserved: the next app is refused, naming the policy.
	stderr := h.Fail("start", harness.Echo, "--name", "more", "--port", "auto:8990-9010")
	harness.ErrLike(t, stderr, "policy 'reserved-range'", "auto:8990-9010", "reserved")
	if len(harness.Rows(h.List(), "more")) != 0 {
		t.Fatal("a denied app was created")
	}
}
