package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// TestWriterWritesWhatMarshalWould writes one file through a series of changes, as the
// daemon does, and checks after each that the file holds exactly what json.Marshal makes of
// the whole File: what the writer kept from an earlier write must never show.
func TestWriterWritesWhatMarshalWould(t *testing.T) {
	f := sampleFile()
	f.Apps[0].ConfigGen, f.Apps[1].ConfigGen = 1, 2
	gen := uint64(2)
	newGen := func() uint64 { gen++; return gen }
	steps := []struct {
		name   string
		change func()
	}{
		{"first write", func() {}},
		{"nothing changed", func() {}},
		{"an instance goes online", func() {
			in := &f.Apps[1].Instances[0]
			in.Status, in.Pid, in.StartedAt = "online", 4242, time.Date(2025, 3, 4, 6, 0, 0, 0, time.UTC)
		}},
		{"an instance restarts", func() { f.Apps[0].Instances[1].Restarts++ }},
		{"a config changes", func() {
			cfg := *f.Apps[0].Config
			cfg.Script = "node2"
			f.Apps[0].Config, f.Apps[0].ConfigGen = &cfg, newGen()
		}},
		{"a port override is set", func() { f.Apps[1].PortOverride = "7000" }},
		{"an instance is added", func() {
			f.Apps[1].Instances = append(f.Apps[1].Instances, Instance{ID: 4, Index: 1, Status: "launching"})
			f.NextID = 5
		}},
		{"instances become empty", func() { f.Apps[1].Instances = []Instance{} }},
		{"instances become null", func() { f.Apps[1].Instances = nil }},
		{"a rolling reload records a rollback", func() {
			f.Apps[0].Rollback = &Rollback{Override: "6000-6001", Ports: []int{6000, 6001}}
		}},
		{"the rollback ends", func() { f.Apps[0].Rollback = nil }},
		{"held sockets", func() { f.Apps[0].Sockets = map[int]uint64{6000: 77} }},
		{"a plugin is added", func() {
			f.Plugins = []Plugin{{Name: "p", Path: "/bin/p", SHA256: "ab", Kinds: []string{"hook"}, Timeout: time.Second}}
		}},
		{"an app is deleted", func() { f.Apps = f.Apps[:1] }},
		{"an app is made again under the same name, with a new config", func() {
			cfg := config.NewApp()
			cfg.Name, cfg.Script = "worker", "./worker-v2"
			f.Apps = append(f.Apps, App{Config: &cfg, ConfigGen: newGen(), CreatedAt: time.Date(2025, 3, 5, 0, 0, 0, 0, time.UTC)})
		}},
		{"an app without a config number", func() {
			f.Apps[1].ConfigGen = 0
			f.Apps[1].Config.Script = "./worker-v3"
		}},
		{"an app without a config", func() {
			f.Apps = append(f.Apps, App{CreatedAt: time.Date(2025, 3, 6, 0, 0, 0, 0, time.UTC)})
		}},
		{"no apps", func() { f.Apps = []App{} }},
		{"apps null", func() { f.Apps = nil }},
	}
	path := filepath.Join(t.TempDir(), "state.json")
	w := NewWriter(path)
	for _, st := range steps {
		st.change()
		if err := w.Write(f); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append(want, '\n')) {
			t.Fatalf("%s: the file differs from json.Marshal's\n got: %s\nwant: %s", st.name, got, want)
		}
		back, err := Load(path)
		if slices.ContainsFunc(f.Apps, func(a App) bool { return a.Config == nil }) {
			if err == nil || !strings.Contains(err.Error(), "no config") {
				t.Fatalf("%s: an app without a config loaded: %v", st.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: the file does not load: %v", st.name, err)
		}
		if len(back.Apps) != len(f.Apps) {
			t.Fatalf("%s: %d apps loaded, %d written", st.name, len(back.Apps), len(f.Apps))
		}
	}
}

// TestWriterReusesAnUnchangedConfig shows that the writer encodes a config again only when
// its number changes: a config changed under the same number is the caller's bug, and the
// file keeps the config of that number.
func TestWriterReusesAnUnchangedConfig(t *testing.T) {
	f := sampleFile()
	f.Apps[0].ConfigGen, f.Apps[1].ConfigGen = 1, 2
	path := filepath.Join(t.TempDir(), "state.json")
	w := NewWriter(path)
	if err := w.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Apps[0].Config.Script = "changed-without-a-number"
	if err := w.Write(f); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Apps[0].Config.Script != "node" {
		t.Fatalf("script %q: the writer encoded a config whose number had not changed", back.Apps[0].Config.Script)
	}
	f.Apps[0].ConfigGen = 3
	if err := w.Write(f); err != nil {
		t.Fatal(err)
	}
	if back, err = Load(path); err != nil || back.Apps[0].Config.Script != "changed-without-a-number" {
		t.Fatalf("after a new number: %v, %+v", err, back)
	}
}

// BenchmarkWriter4500 is a write of 4500 apps after one instance changed: what the daemon
// does on every change beside 4500 running apps (BenchmarkSave1000 encodes everything).
func BenchmarkWriter4500(b *testing.B) {
	f := &File{Version: Version, NextID: 4500}
	for i := range 4500 {
		a := config.NewApp()
		a.Name, a.Script, a.Cwd, a.Port = fmt.Sprintf("app-%d", i), "node server.js", "/srv/app", fmt.Sprint(20000+i)
		a.Env = map[string]string{"NODE_ENV": "production"}
		f.Apps = append(f.Apps, App{Config: &a, ConfigGen: uint64(i + 1), CreatedAt: time.Now(), Instances: []Instance{{
			ID: i, Wanted: true, Port: 20000 + i, Pid: 100000 + i, PidStart: 123456, StartedAt: time.Now(), Status: "online",
		}}})
	}
	w := NewWriter(filepath.Join(b.TempDir(), "state.json"))
	for b.Loop() {
		f.Apps[0].Instances[0].Restarts++
		if err := w.Write(f); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWriterAfterAFailedWrite: a write that fails leaves nothing behind and the next one,
// once the directory can be written again, writes the whole file.
func TestWriterAfterAFailedWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	path := filepath.Join(dir, "state.json")
	f := sampleFile()
	f.Apps[0].ConfigGen, f.Apps[1].ConfigGen = 1, 2
	w := NewWriter(path)
	if err := w.Write(f); err == nil {
		t.Fatal("a write into a missing directory succeeded")
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(f); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(f)
	if !bytes.Equal(got, append(want, '\n')) {
		t.Fatalf("after a failed write the file is\n%s\nwant\n%s", got, want)
	}
	noTempFiles(t, dir)
}
