package bench

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// startSleepers starts n instances of sleep in h and waits until all are online.
func startSleepers(b *testing.B, h *harness.Home, n int) {
	b.Helper()
	h.OK("start", "sleep 100000", "--name", "sleepers", "--instances", strconv.Itoa(n))
	h.WaitList(60*time.Second, "all online", harness.AllOnline("sleepers", n))
}

// BenchmarkListJSON100 is the latency of one `pmdaemon list --json` (a whole CLI process) with
// 100 instances running. Target: under 10 ms (PM2 7 on this kind of machine: about 155 ms).
func BenchmarkListJSON100(b *testing.B) {
	h := harness.NewHome(b)
	startSleepers(b, h, 100)
	env := append(os.Environ(), "PMDAEMON_HOME="+h.Dir, "GORACE=atexit_sleep_ms=0")
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(harness.Bin, "list", "--json")
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil || !bytes.Contains(out, []byte(`"sleepers"`)) {
			b.Fatalf("list --json: %v", err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/list")
}

// BenchmarkDaemonRSS reports the daemon's resident memory idle and with 100 instances.
// Targets: 15 MB idle, 25 MB with 100 instances (PM2 7: 57 MB / 84 MB).
func BenchmarkDaemonRSS(b *testing.B) {
	for i := 0; i < b.N; i++ {
		h := harness.NewHome(b)
		h.OK("ping")
		pid := h.DaemonPid()
		// Let the daemon run a metrics tick or two, as it would in use.
		idle := settledRSS(b, pid)
		startSleepers(b, h, 100)
		busy := settledRSS(b, pid)
		b.ReportMetric(idle, "MB-idle")
		b.ReportMetric(busy, "MB-100")
		h.OK("kill")
	}
}

// settledRSS waits through two metrics ticks and returns VmRSS in MB.
func settledRSS(b *testing.B, pid int) float64 {
	b.Helper()
	time.Sleep(4500 * time.Millisecond) // measurement window, not synchronisation
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(rest)[0])
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
