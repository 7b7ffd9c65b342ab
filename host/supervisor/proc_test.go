package supervisor

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// procState returns the state letter of pid from /proc, or 0 when there is no such process.
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// startChild starts argv as a child of the test and makes sure it is killed and reaped.
func startChild(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func TestStartTimeAndAlive(t *testing.T) {
	self := os.Getpid()
	st, err := StartTime(self)
	if err != nil {
		t.Fatalf("StartTime(self): %v", err)
	}
	if st == 0 {
		t.Fatal("StartTime(self) = 0")
	}
	if again, _ := StartTime(self); again != st {
		t.Fatalf("StartTime(self) changed: %d then %d", st, again)
	}

	// A process that has exited and been reaped.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPid := dead.Process.Pid

	tests := []struct {
		name  string
		pid   int
		start uint64
		want  bool
	}{
		{"self", self, st, true},
		{"self with another start time", self, st + 1, false},
		{"pid 0", 0, st, false},
		{"negative pid", -1, st, false},
		{"dead pid", deadPid, st, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Alive(tt.pid, tt.start); got != tt.want {
				t.Fatalf("Alive(%d, %d) = %v, want %v", tt.pid, tt.start, got, tt.want)
			}
		})
	}
	if procState(deadPid) == 0 {
		if _, err := StartTime(deadPid); err == nil {
			t.Fatal("StartTime of a dead pid: want an error")
		}
	}
}

func TestStartTimeWeirdComm(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	// comm with spaces and parentheses: the parser must use the last ')'.
	link := filepath.Join(t.TempDir(), "we) ird (x")
	if err := os.Symlink(sleep, link); err != nil {
		t.Fatal(err)
	}
	cmd := startChild(t, link, "1000")
	st, err := StartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatalf("StartTime: %v", err)
	}
	if !Alive(cmd.Process.Pid, st) {
		t.Fatal("Alive = false for a live process with an odd name")
	}
	self, _ := StartTime(os.Getpid())
	if st < self {
		t.Fatalf("child's start time %d is before the test's %d", st, self)
	}
}

func TestAliveZombie(t *testing.T) {
	cmd := exec.Command("sleep", "0.1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	st, err := StartTime(pid)
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("StartTime of a live child: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for procState(pid) != 'Z' {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("child did not become a zombie")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if Alive(pid, st) {
		t.Fatal("Alive = true for a zombie")
	}
	if _, err := StartTime(pid); err == nil {
		t.Fatal("StartTime of a zombie: want an error")
	}
}
