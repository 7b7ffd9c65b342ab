package state

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// BenchmarkSave1000 writes the state of 1000 apps (one instance each) the way the daemon
// does after a change: encode, temp file, fsync, rename, fsync of the directory.
func BenchmarkSave1000(b *testing.B) {
	f := &File{Version: Version, NextID: 1000}
	for i := 0; i < 1000; i++ {
		a := config.NewApp()
		a.Name, a.Script, a.Cwd, a.Port = fmt.Sprintf("app-%d", i), "node server.js", "/srv/app", fmt.Sprint(20000+i)
		a.Env = map[string]string{"NODE_ENV": "production"}
		f.Apps = append(f.Apps, App{Config: &a, CreatedAt: time.Now(), Instances: []Instance{{
			ID: i, Wanted: true, Port: 20000 + i, Pid: 100000 + i, PidStart: 123456, StartedAt: time.Now(), Status: "online",
		}}})
	}
	path := filepath.Join(b.TempDir(), "state.json")
	for b.Loop() {
		if err := Save(path, f); err != nil {
			b.Fatal(err)
		}
	}
}
