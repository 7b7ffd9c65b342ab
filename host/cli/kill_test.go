package cli

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// flockHolders finds a real flock's holder in /proc/locks by the file's inode, and hasOpen
// sees the file among the holder's descriptors; once the lock is released it is not listed.
func TestFlockHolders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	ino := st.Sys().(*syscall.Stat_t).Ino
	if pids, err := flockHolders(ino); err != nil || len(pids) != 0 {
		t.Fatalf("before locking: %v, %v; want none", pids, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	pids, err := flockHolders(ino)
	if err != nil || !slices.Equal(pids, []int{os.Getpid()}) {
		t.Fatalf("holding the lock: %v, %v; want [%d]", pids, err, os.Getpid())
	}
	if !hasOpen(os.Getpid(), path) {
		t.Errorf("hasOpen(self, %s) = false", path)
	}
	if hasOpen(os.Getpid(), path+".other") {
		t.Errorf("hasOpen of a file not open = true")
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if pids, err := flockHolders(ino); err != nil || len(pids) != 0 {
		t.Fatalf("after unlocking: %v, %v; want none", pids, err)
	}
}

// No home, or a home whose lock nobody holds, is no daemon.
func TestLockHolderNone(t *testing.T) {
	e := &Env{Home: filepath.Join(t.TempDir(), "absent")}
	if d, err := e.lockHolder(); err != nil || d.pid != 0 {
		t.Fatalf("absent home: %+v, %v", d, err)
	}
	e.Home = t.TempDir()
	if err := os.WriteFile(e.paths().Lock(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A pid file naming a live process that does not hold the lock is not believed.
	if err := os.WriteFile(e.paths().Pid(), []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := e.lockHolder(); err != nil || d.pid != 0 {
		t.Fatalf("unheld lock: %+v, %v", d, err)
	}
}
