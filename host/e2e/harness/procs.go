package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/procfs"
)

// Pgid is the process group of pid, 0 when pid is gone.
func Pgid(pid int) int {
	st, err := procfs.Read(pid)
	if err != nil {
		return 0
	}
	return st.Pgid
}

// Ppid is the parent of pid, 0 when pid is gone.
func Ppid(pid int) int {
	st, err := procfs.Read(pid)
	if err != nil {
		return 0
	}
	return st.Ppid
}

// CPUTicks is the user+system CPU time of pid itself (children excluded), in clock ticks.
func CPUTicks(t testing.TB, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("reading the stat of %d: %v", pid, err)
	}
	// After the command's closing parenthesis, f[0] is field 3 (state); utime and stime are
	// fields 14 and 15.
	f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+1:])
	if len(f) < 13 {
		t.Fatalf("malformed /proc/%d/stat: %q", pid, b)
	}
	u, err1 := strconv.Atoi(string(f[11]))
	s, err2 := strconv.Atoi(string(f[12]))
	if err1 != nil || err2 != nil {
		t.Fatalf("malformed /proc/%d/stat: %q", pid, b)
	}
	return u + s
}

// ClockTicks is `getconf CLK_TCK`, the unit of CPUTicks.
func ClockTicks(t testing.TB) int {
	t.Helper()
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		t.Fatalf("getconf CLK_TCK: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n <= 0 {
		t.Fatalf("getconf CLK_TCK: %q", out)
	}
	return n
}

// ReadPids waits (up to 10s) until path holds at least n complete lines of pids, as a test
// app writes them, and returns the first n.
func ReadPids(t testing.TB, path string, n int) []int {
	t.Helper()
	var pids []int
	Eventually(t, 10*time.Second, fmt.Sprintf("%d pids in %s", n, path), func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pids = pids[:0]
		for _, l := range strings.Fields(string(b)) {
			p, err := strconv.Atoi(l)
			if err != nil || p <= 0 {
				return false
			}
			pids = append(pids, p)
		}
		return len(pids) >= n
	})
	return pids[:n]
}
