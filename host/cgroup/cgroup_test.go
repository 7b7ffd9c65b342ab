package cgroup

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// setup makes a Manager for a fresh home in the machine's real cgroup hierarchy, or fails the
// test where the machine has none the test can use (the suite runs as root on a cgroup2 host).
func setup(t *testing.T) *Manager {
	t.Helper()
	m, why := Setup(t.TempDir())
	if m == nil {
		t.Fatalf("no cgroup for the test: %s", why)
	}
	t.Cleanup(func() {
		units, _ := m.Units()
		for _, u := range units {
			m.Remove(u)
		}
		m.Close()
		if _, err := os.Stat(m.Dir()); err == nil {
			t.Errorf("%s is left after Close", m.Dir())
		}
	})
	return m
}

// spawnInto starts a shell in the cgroup at p that leaves a setsid child behind.
func spawnInto(t *testing.T, p string) *exec.Cmd {
	t.Helper()
	fd, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	cmd := exec.Command("sh", "-c", "setsid sleep 300 & exec sleep 300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, UseCgroupFD: true, CgroupFD: fd}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	return cmd
}

func TestKillTakesSetsidChildren(t *testing.T) {
	m := setup(t)
	p := m.Path("web-0")
	cmd := spawnInto(t, p)
	deadline := time.Now().Add(5 * time.Second)
	for {
		procs, _ := Procs(p)
		if len(procs) >= 3 { // sh (exec'd into sleep), the setsid sleep, and the subshell's
			break
		}
		if len(procs) == 2 && Contains(p, cmd.Process.Pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgroup %s holds %v, want the app and its setsid child", p, procs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !Populated(p) {
		t.Fatal("Populated is false for a cgroup with processes")
	}
	u := Read(p)
	if !u.OK || u.Memory == 0 {
		t.Errorf("Read = %+v, want memory of the processes", u)
	}
	if err := KillAll(p, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if procs, _ := Procs(p); len(procs) != 0 {
		t.Fatalf("after KillAll the cgroup still holds %v", procs)
	}
	if err := m.Remove("web-0"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("%s still exists after Remove: %v", p, err)
	}
}

func TestUnitsListsWhatWasMade(t *testing.T) {
	m := setup(t)
	for _, u := range []string{"a-1", "b-2"} {
		fd, err := Open(m.Path(u))
		if err != nil {
			t.Fatal(err)
		}
		syscall.Close(fd)
	}
	units, err := m.Units()
	if err != nil || strings.Join(units, ",") != "a-1,b-2" {
		t.Fatalf("Units = %v, %v; want a-1,b-2", units, err)
	}
}

func TestFallbackReasons(t *testing.T) {
	plain := t.TempDir()
	for _, tt := range []struct{ root, want string }{
		{plain, "is not on a cgroup2 file system"},
		{"relative/dir", "is not an absolute path"},
		{"/nonexistent/pmd", "cannot be used"},
	} {
		t.Run(tt.root, func(t *testing.T) {
			t.Setenv(RootEnv, tt.root)
			m, why := Setup(t.TempDir())
			if m != nil || !strings.Contains(why, tt.want) {
				t.Fatalf("Setup with %s=%s = %v, %q; want nil and %q", RootEnv, tt.root, m, why, tt.want)
			}
		})
	}
}

// A unit's next process after a kill must live: KillAll leaves no cgroup behind to be reused
// (see KillAll for the kernel behaviour this guards against).
func TestProcessAfterKillAllLives(t *testing.T) {
	m := setup(t)
	p := m.Path("app-7")
	spawnInto(t, p)
	if err := KillAll(p, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	cmd := spawnInto(t, p)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(cmd.Process.Pid, 0); err != nil || !Contains(p, cmd.Process.Pid) {
			t.Fatalf("the process spawned after KillAll died or left the cgroup: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Read gives what the cgroup's files say: the CPU of cpu.stat, and memory from memory.current
// or, without the memory controller, the processes' resident memory.
func TestReadMeasuresTheCgroup(t *testing.T) {
	m := setup(t)
	p := m.Path("app-1")
	spawnInto(t, p)
	var u Usage
	deadline := time.Now().Add(5 * time.Second)
	for u = Read(p); u.Memory == 0 && time.Now().Before(deadline); u = Read(p) {
		time.Sleep(20 * time.Millisecond)
	}
	if !u.OK || u.Memory == 0 {
		t.Fatalf("Read(%s) = %+v; want a measure with memory", p, u)
	}
	b, err := os.ReadFile(p + "/cpu.stat")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "usage_usec ") {
		t.Fatalf("cpu.stat has no usage_usec: %q", b)
	}
	if got := Read(p + "-missing"); got.OK {
		t.Errorf("Read of a missing cgroup = %+v; want not OK", got)
	}
}

// BenchmarkRead measures one instance's cgroup, as a list does for each running instance.
func BenchmarkRead(b *testing.B) {
	m, why := Setup(b.TempDir())
	if m == nil {
		b.Fatalf("no cgroup for the benchmark: %s", why)
	}
	defer m.Close()
	p := m.Path("app-1")
	fd, err := Open(p)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	syscall.Close(fd)
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		m.Remove("app-1")
	}()
	for b.Loop() {
		if !Read(p).OK {
			b.Fatal("no measure")
		}
	}
}
