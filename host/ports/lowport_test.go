package ports

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// privilegedPort returns a port an unprivileged user may not bind, or skips when the kernel has
// no such ports (ip_unprivileged_port_start = 0, as in some containers).
func privilegedPort(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	start := 1024
	if err == nil {
		start, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if start <= 1 {
		t.Skipf("this kernel lets every user bind any port (ip_unprivileged_port_start=%d)", start)
	}
	return start - 1
}

// A port below the unprivileged start, probed by a user without the right to bind it, gives a
// clear error saying why, not a crash and not "in use". As root the test re-runs itself as
// nobody.
func TestProbePrivilegedPortAsUser(t *testing.T) {
	port := privilegedPort(t)
	if os.Getuid() != 0 {
		err := OSProber{}.Probe(port)
		if err == nil || errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("Probe(%d) as uid %d = %v, want a permission error", port, os.Getuid(), err)
		}
		if want := fmt.Sprintf("Port %d cannot be used", port); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
		return
	}
	// Copy the test binary where nobody can run it, then run this test as nobody.
	dir, err := os.MkdirTemp("", "pmd-lowport-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ports.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestProbePrivilegedPortAsUser$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestProbePrivilegedPortAsUser") {
		t.Fatalf("the test did not pass as nobody:\n%s", out)
	}
}
