package ports

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// privilegedPort returns the kernel's first unprivileged port (so that the port below it is
// one an unprivileged user may not bind), or skips when the kernel has no such ports
// (ip_unprivileged_port_start = 0 or 1, as in some containers): then EACCES cannot happen.
func privilegedPort(t *testing.T) int {
	start := unprivilegedStart()
	if start <= 1 {
		t.Skipf("this kernel lets every user bind any port (ip_unprivileged_port_start=%d)", start)
	}
	return start
}

// asNobody runs the test named name again, as the user nobody, and fails unless it passes
// there. It returns false in that re-run (and whenever the tests run unprivileged), where the
// caller does the test itself.
func asNobody(t *testing.T, name string) bool {
	if os.Getuid() != 0 {
		return false
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
	cmd := exec.Command(bin, "-test.run=^"+name+"$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("the test did not pass as nobody:\n%s", out)
	}
	t.Logf("as nobody:\n%s", out)
	return true
}

// A port below the unprivileged start, probed by a user without the right to bind it, gives a
// clear error saying why, not a crash and not "in use". As root the test re-runs itself as
// nobody.
func TestProbePrivilegedPortAsUser(t *testing.T) {
	port := privilegedPort(t) - 1
	if asNobody(t, "TestProbePrivilegedPortAsUser") {
		return
	}
	err := OSProber{}.Probe(port)
	if !errors.Is(err, ErrPrivileged) || errors.Is(err, ErrInUse) {
		t.Fatalf("Probe(%d) as uid %d = %v, want a permission error", port, os.Getuid(), err)
	}
	for _, want := range []string{fmt.Sprintf("Port %d cannot be used: permission denied", port), "needs privileges", "CAP_NET_BIND_SERVICE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// As a user who may not bind low ports, an auto: range that starts below the unprivileged
// start skips those ports (they are not usable by us) and takes the first free ones above,
// while a fixed low port stays an error that says it needs privileges. Before, the first
// low port of the range aborted the whole allocation with "permission denied".
func TestAllocateSkipsPrivilegedPortsAsUser(t *testing.T) {
	start := privilegedPort(t)
	if asNobody(t, "TestAllocateSkipsPrivilegedPortsAsUser") {
		return
	}
	lo, hi := max(1, start-4), min(65535, start+200)
	// What the range offers this user: its free ports at or above start.
	var free []int
	for p := start; p <= hi && len(free) < 3; p++ {
		if (OSProber{}).Probe(p) == nil {
			free = append(free, p)
		}
	}
	if len(free) < 3 {
		t.Fatalf("fewer than 3 free ports in %d-%d on this machine", start, hi)
	}
	tests := []struct {
		name      string
		spec      string
		instances int
		want      []int
		err       []string
	}{
		{"auto range starting low", fmt.Sprintf("auto:%d-%d", lo, hi), 3, free, nil},
		{"auto range all low", fmt.Sprintf("auto:%d-%d", lo, start-1), 1, nil,
			[]string{fmt.Sprintf("Not enough free ports in auto:%d-%d: 0 free, 1 needed (%d port(s) of the range need privileges", lo, start-1, start-lo), "CAP_NET_BIND_SERVICE"}},
		{"fixed low port", fmt.Sprint(start - 1), 1, nil,
			[]string{fmt.Sprintf("Port %d cannot be used: permission denied (it needs privileges", start-1), "CAP_NET_BIND_SERVICE"}},
		{"fixed range reaching low", fmt.Sprintf("%d-%d", start-1, start), 2, nil,
			[]string{fmt.Sprintf("Port %d cannot be used", start-1), "needs privileges"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := ParseSpec(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Allocate(Request{App: "web", Instances: tt.instances, Spec: spec}, NewRegistry(), OSProber{})
			if tt.err == nil {
				if err != nil || !slices.Equal(got, tt.want) {
					t.Fatalf("Allocate(%s) = %v, %v; want %v", tt.spec, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Allocate(%s) = %v, want an error", tt.spec, got)
			}
			for _, w := range tt.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
