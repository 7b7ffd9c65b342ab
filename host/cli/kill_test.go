package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/procfs"
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

// appProcs reads the state file leniently, for a kill when the daemon does not answer: an app
// whose config is null or missing still has its live processes listed, with the default kill
// timeout, and the one with a config has its own.
func TestAppProcsOfAStateFileWithoutConfigs(t *testing.T) {
	self, err := procfs.Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	inst := fmt.Sprintf(`"instances":[{"id":0,"index":0,"pid":%d,"pid_start":%d,"status":"online"}]`, os.Getpid(), self.StartTime)
	for _, tc := range []struct {
		name, app string
		want      time.Duration
	}{
		{"null config", `{"config":null,` + inst + `}`, config.DefaultKillTimeout},
		{"no config", `{` + inst + `}`, config.DefaultKillTimeout},
		{"a config", `{"config":{"name":"web","kill_timeout":2000000000},` + inst + `}`, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Env{Home: t.TempDir()}
			data := `{"version":1,"next_id":1,"apps":[` + tc.app + `]}`
			if err := os.WriteFile(e.paths().State(), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			procs, longest := e.appProcs()
			p := proc{pid: os.Getpid(), start: self.StartTime}
			if got, ok := procs[p]; !ok || got != tc.want || longest != tc.want {
				t.Fatalf("appProcs = %v (longest %s); want pid %d with %s", procs, longest, os.Getpid(), tc.want)
			}
		})
	}
}
