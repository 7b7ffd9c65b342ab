package main

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as PM2's "PM2 v7.0.4: God" has.
	s := "5336 (PM2 v7.0.4: God (x)) S 1 5336 5336 0 -1 4194560 9512 0 0 0 48 12 0 0 20 0 11 0 123456 1115000832 14300 18446744073709551615 1 1 0 0 0 0 0 16781312 17922 0 0 0 17 1 0 0 0 0 0\n"
	p, err := parseStat(s)
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{Pid: 5336, Comm: "PM2 v7.0.4: God (x)", State: 'S', Ppid: 1, Utime: 48, Stime: 12, StartTime: 123456}
	if p != want {
		t.Errorf("got %+v\nwant %+v", p, want)
	}
	for _, bad := range []string{"", "12 sleep S 1", "12 (sleep) S 1 2 3", "x (sleep) S 1 5336 5336 0 -1 4194560 9512 0 0 0 48 12 0 0 20 0 11 0 123456 1"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	s := "Name:\tpmdaemon\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1234 kB\nVmRSS:\t   18044 kB\nRssAnon:\t 9000 kB\n"
	kb, err := parseVmRSS(s)
	if err != nil || kb != 18044 {
		t.Errorf("parseVmRSS = %d, %v", kb, err)
	}
	if _, err := parseVmRSS("Name:\tzombie\nState:\tZ (zombie)\n"); err == nil {
		t.Error("no error without VmRSS")
	}
	if n, ok := statusField(s, "VmRSS"); !ok || n != 18044 {
		t.Errorf("statusField VmRSS = %d %v", n, ok)
	}
	if _, ok := statusField(s, "Threads"); ok {
		t.Error("statusField found a missing field")
	}
	if _, err := parseVmRSS("VmRSS:\t12 MB\n"); err == nil {
		t.Error("no error for an odd unit")
	}
}

func TestCPUPercent(t *testing.T) {
	if got := cpuPercent(30, 100, 60); got != 0.5 {
		t.Errorf("30 ticks at 100 Hz over 60 s = %v%%, want 0.5", got)
	}
	if got := cpuPercent(200, 100, 1); got != 200 {
		t.Errorf("two cores = %v%%, want 200", got)
	}
	if cpuPercent(5, 100, 0) != 0 {
		t.Error("zero window")
	}
}

func TestEnvironContains(t *testing.T) {
	env := []byte("PATH=/bin\x00PMDAEMON_HOME=/tmp/pmdbench-42/pmdaemon-home\x00")
	if !environContains(env, "/tmp/pmdbench-42") {
		t.Error("home not found")
	}
	if environContains(env, "/tmp/pmdbench-43") || environContains(env, "") {
		t.Error("false match")
	}
}

// The /proc readers against real processes: this test's own and a child's.
func TestProcReaders(t *testing.T) {
	self, err := readStat(os.Getpid())
	if err != nil || self.Pid != os.Getpid() || self.Ppid != os.Getppid() {
		t.Fatalf("readStat(self) = %+v, %v", self, err)
	}
	if mb, err := rssMB(os.Getpid()); err != nil || mb <= 0 {
		t.Errorf("rssMB(self) = %v, %v", mb, err)
	}
	if threads(os.Getpid()) < 1 {
		t.Error("threads(self) < 1")
	}
	if _, err := cpuTicks(os.Getpid()); err != nil {
		t.Error(err)
	}
	cmd := exec.Command("sleep", "30")
	cmd.Env = append(os.Environ(), "BENCH_TEST_MARK=/tmp/mark-"+t.Name())
	if err := cmd.Start(); err != nil {
		t.Fatal("cannot start sleep:", err)
	}
	pid := cmd.Process.Pid
	defer cmd.Wait()
	defer cmd.Process.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for !liveChildren(os.Getpid(), "sleep")[pid] {
		if time.Now().After(deadline) {
			t.Fatalf("child %d not found by liveChildren", pid)
		}
		time.Sleep(time.Millisecond)
	}
	if !alive(pid) {
		t.Error("child not alive")
	}
	known := pidSnapshot()
	delete(known, pid)
	if got := newChild(os.Getpid(), "sleep", known); got != pid {
		t.Errorf("newChild = %d, want %d", got, pid)
	}
	if got := newChild(os.Getpid(), "sleep", known); got != pid || known[pid] {
		t.Errorf("newChild again = %d (known %v), want %d", got, known[pid], pid)
	}
	if got := newChild(os.Getpid()+1e6, "sleep", known); got != 0 || !known[pid] {
		t.Errorf("newChild of another parent = %d", got)
	}
	found := processesWithEnv("/tmp/mark-" + t.Name())
	if len(found) != 1 || found[0] != pid {
		t.Errorf("processesWithEnv = %v, want [%d]", found, pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if alive(pid) {
		t.Error("reaped child still alive")
	}
	if alive(0) || alive(-1) {
		t.Error("alive of pid <= 0")
	}
	if hz := clockTicks(); hz <= 0 {
		t.Error("clockTicks", hz)
	}
}

func BenchmarkNewChild(b *testing.B) {
	known := pidSnapshot()
	for i := 0; i < b.N; i++ {
		newChild(1, "sleep", known)
	}
}

func TestFreeBlock(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	got, err := freeBlock(busy-1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got <= busy-1+2 && got+3 > busy {
		t.Errorf("freeBlock gave %d..%d, which holds busy port %d", got, got+2, busy)
	}
}
