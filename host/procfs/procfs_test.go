package procfs

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestParseTrickyComm(t *testing.T) {
	line := []byte("42 (we) ird (x) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10 18446744073709551615")
	s, err := parse(42, line)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != 'S' || s.Ppid != 7 || s.Pgid != 42 || s.StartTime != 123456 {
		t.Fatalf("parsed %+v", s)
	}
	for _, bad := range []string{"", "42 (x", "42 (x) S 1 2", "42 (x) S a 42 42 0 -1 0 0 0 0 0 0 0 0 0 0 0 1 0 9 0"} {
		if _, err := parse(42, []byte(bad)); err == nil {
			t.Errorf("parse(%q) succeeded", bad)
		}
	}
}

func TestReadSelfAndChild(t *testing.T) {
	self, err := Read(os.Getpid())
	if err != nil || self.Ppid != os.Getppid() || self.StartTime == 0 {
		t.Fatalf("Read(self) = %+v, %v", self, err)
	}
	cmd := exec.Command("sleep", "100")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	s, err := Read(pid)
	if err != nil || s.Ppid != os.Getpid() || s.Pgid != pid || s.Zombie() || !Alive(pid) {
		t.Fatalf("child: %+v, %v", s, err)
	}
	cmd.Process.Kill()
	// Before it is reaped the child is a zombie: not alive.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := Read(pid)
		if err != nil || s.Zombie() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("killed child never became a zombie")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if Alive(pid) {
		t.Error("a killed, unreaped child counts as alive")
	}
	cmd.Wait()
	if _, err := Read(pid); err == nil {
		t.Error("a reaped child still has a stat")
	}
	all, err := All()
	if err != nil || len(all) == 0 {
		t.Fatalf("All: %d, %v", len(all), err)
	}
}
