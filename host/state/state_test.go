package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
)

func sampleFile() *File {
	created := time.Date(2025, 3, 4, 5, 6, 7, 8000, time.UTC)
	web := config.NewApp()
	web.Name, web.Script, web.Args, web.Cwd = "web", "node", []string{"server.js", "--x"}, "/srv/web"
	web.Env = map[string]string{"NODE_ENV": "production", "EMPTY": ""}
	web.Instances, web.Port = 2, "auto:5000-5100"
	web.RestartDelay, web.ExpBackoffRestartDelay = 250*time.Millisecond, 100*time.Millisecond
	web.MaxMemoryRestart = 200 << 20
	web.OutFile, web.ErrorFile = "/var/log/web.out", "/var/log/web.err"
	worker := config.NewApp()
	worker.Name, worker.Script, worker.Autorestart = "worker", "./worker", false
	return &File{
		Version: Version,
		NextID:  4,
		Apps: []App{
			{
				Config: &web, PortOverride: "6000-6001", CreatedAt: created,
				Instances: []Instance{
					{ID: 0, Index: 0, Wanted: true, Port: 6000, Pid: 1234, PidStart: 987654, StartedAt: created.Add(time.Hour), Restarts: 3, Status: "online"},
					{ID: 2, Index: 1, Wanted: true, Port: 6001, Status: "errored", Restarts: 15},
				},
			},
			{Config: &worker, CreatedAt: created, Instances: []Instance{{ID: 3, Index: 0, Status: "stopped"}}},
		},
	}
}

func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temp file %s left behind", e.Name())
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, f := range []*File{sampleFile(), {Version: Version}, {Version: Version, NextID: 10, Apps: []App{}}} {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.json")
		if err := Save(path, f); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("state file mode %v, want 0600", st.Mode().Perm())
		}
		got, err := Load(path)
		if err != nil {
			t.Fatalf("Load after Save: %v", err)
		}
		want := *f
		if want.Apps == nil {
			// null and [] both mean no apps
			if len(got.Apps) != 0 {
				t.Fatalf("Apps = %v, want none", got.Apps)
			}
			got.Apps = nil
		}
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, &want)
		}
		// Saving again over the old file works and leaves no temp file.
		if err := Save(path, got); err != nil {
			t.Fatal(err)
		}
		noTempFiles(t, dir)
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	f, err := Load(path)
	if err != nil {
		t.Fatalf("Load of a missing file: %v", err)
	}
	if f.Version != Version || f.NextID != 0 || len(f.Apps) != 0 {
		t.Fatalf("Load of a missing file = %+v, want empty", f)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load created %s", path)
	}
}

func TestLoadUnreadableIsNotCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	var ce *CorruptError
	if err == nil || errors.As(err, &ce) || f != nil {
		t.Fatalf("Load of a directory = %v, %v; want a plain read error", f, err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		t.Fatal("the unreadable path was moved")
	}
}

func TestLoadCorrupt(t *testing.T) {
	valid, err := os.ReadFile(func() string {
		p := filepath.Join(t.TempDir(), "s.json")
		if err := Save(p, sampleFile()); err != nil {
			t.Fatal(err)
		}
		return p
	}())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    string
		wantSub string
	}{
		{"empty", "", "empty"},
		{"whitespace", " \n\t ", "empty"},
		{"truncated JSON", string(valid[:len(valid)/2]), "invalid JSON"},
		{"garbage", "\x00\xff\xfe not json at all", "invalid JSON"},
		{"null", "null", "version"},
		{"wrong type", `{"version":"1"}`, "invalid JSON"},
		{"wrong version", `{"version":2,"next_id":0,"apps":[]}`, "unsupported state version 2"},
		{"no version", `{"next_id":0,"apps":[]}`, "unsupported state version 0"},
		{"unknown field", `{"version":1,"next_id":0,"apps":[],"extra":1}`, "unknown field"},
		{"trailing data", `{"version":1,"next_id":0,"apps":[]} {}`, "trailing data"},
		{"duplicate app names", `{"version":1,"next_id":2,"apps":[
			{"config":{"name":"web","script":"a"},"instances":[{"id":0}]},
			{"config":{"name":"web","script":"b"},"instances":[{"id":1}]}]}`, `duplicate name "web"`},
		{"missing app name", `{"version":1,"next_id":0,"apps":[{"config":{"script":"a"}}]}`, "missing or duplicate name"},
		{"duplicate ids", `{"version":1,"next_id":5,"apps":[
			{"config":{"name":"web","script":"a"},"instances":[{"id":1}]},
			{"config":{"name":"api","script":"b"},"instances":[{"id":1}]}]}`, "duplicate instance id 1"},
		{"id beyond next_id", `{"version":1,"next_id":1,"apps":[{"config":{"name":"web","script":"a"},"instances":[{"id":1}]}]}`, "instance id 1"},
		{"negative id", `{"version":1,"next_id":1,"apps":[{"config":{"name":"web","script":"a"},"instances":[{"id":-1}]}]}`, "instance id -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := Load(path)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Load = %+v, %v; want a *CorruptError", f, err)
			}
			if f == nil || f.Version != Version || len(f.Apps) != 0 || f.NextID != 0 {
				t.Fatalf("Load returned %+v with the corrupt error, want an empty registry", f)
			}
			if ce.Path != path {
				t.Errorf("CorruptError.Path = %q, want %q", ce.Path, path)
			}
			if !strings.HasPrefix(ce.Aside, path+".corrupt-") {
				t.Errorf("aside file %q is not named %s.corrupt-*", ce.Aside, path)
			}
			if filepath.Dir(ce.Aside) != dir {
				t.Errorf("aside file %q is not beside the state file", ce.Aside)
			}
			msg := err.Error()
			for _, sub := range []string{path, ce.Aside, tt.wantSub} {
				if !strings.Contains(msg, sub) {
					t.Errorf("error %q does not contain %q", msg, sub)
				}
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the corrupt file is still at %s", path)
			}
			got, err := os.ReadFile(ce.Aside)
			if err != nil {
				t.Fatalf("reading the aside file: %v", err)
			}
			if !bytes.Equal(got, []byte(tt.data)) {
				t.Fatalf("aside file holds %q, want the original %q", got, tt.data)
			}
			// The daemon can then start afresh at the same path.
			if err := Save(path, f); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(path); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for i, data := range []string{"first\n", "second, longer content\n", ""} {
		if err := WriteAtomic(path, []byte(data), 0o640); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != data {
			t.Fatalf("write %d: file holds %q (%v), want %q", i, got, err, data)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
			t.Fatalf("mode %v, want 0640", st.Mode().Perm())
		}
	}
	noTempFiles(t, dir)
}

// Tests run as root, for whom permission bits do not stop writes; these directories refuse
// writes for root too.
func TestWriteAtomicFailureLeavesOldFile(t *testing.T) {
	t.Run("parent is a regular file", func(t *testing.T) {
		dir := t.TempDir()
		parent := filepath.Join(dir, "notadir")
		if err := os.WriteFile(parent, []byte("old content"), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(parent, "state.json")
		err := WriteAtomic(path, []byte("new"), 0o600)
		if err == nil {
			t.Fatal("WriteAtomic under a regular file succeeded")
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
		if got, _ := os.ReadFile(parent); string(got) != "old content" {
			t.Fatalf("the regular file now holds %q", got)
		}
		noTempFiles(t, dir)
	})
	t.Run("target is a directory", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.json")
		if err := os.MkdirAll(filepath.Join(path, "inside"), 0o700); err != nil {
			t.Fatal(err)
		}
		err := WriteAtomic(path, []byte("new"), 0o600)
		if err == nil {
			t.Fatal("WriteAtomic over a non-empty directory succeeded")
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
		if st, err := os.Stat(filepath.Join(path, "inside")); err != nil || !st.IsDir() {
			t.Fatal("the directory was damaged")
		}
		noTempFiles(t, dir)
	})
	t.Run("immutable directory", func(t *testing.T) {
		chattr, err := exec.LookPath("chattr")
		if err != nil {
			t.Skip("chattr not available")
		}
		dir := filepath.Join(t.TempDir(), "d")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "state.json")
		old := sampleFile()
		if err := Save(path, old); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		if out, err := exec.Command(chattr, "+i", dir).CombinedOutput(); err != nil {
			t.Skipf("chattr +i not supported here: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command(chattr, "-i", dir).Run() })
		f := sampleFile()
		f.NextID = 99
		err = Save(path, f)
		if err == nil {
			t.Fatal("Save into an immutable directory succeeded")
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Fatal("the old state file changed")
		}
		got, err := Load(path)
		if err != nil || !reflect.DeepEqual(got, old) {
			t.Fatalf("old state no longer loads: %v", err)
		}
		noTempFiles(t, dir)
	})
}

func TestLoadDump(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"apps":[{"name":"web","script":"node","instances":2,"port":"3000-3001","autorestart":true}]}`)
	d, err := LoadDump(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Apps) != 1 || d.Apps[0].Name != "web" || d.Apps[0].Port != "3000-3001" || d.Apps[0].Instances != 2 {
		t.Fatalf("LoadDump = %+v", d)
	}

	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantSub []string
	}{
		{"missing", filepath.Join(dir, "nope.json"), []string{"pmdaemon save"}},
		{"invalid JSON", write("bad.json", `{"apps":[`), nil},
		{"garbage", write("garbage.json", "\x00\x01"), nil},
		{"unknown key", write("unknown.json", `{"apps":[{"name":"web","instnaces":2}]}`), []string{"instnaces"}},
		{"wrong type", write("type.json", `{"apps":{"name":"web"}}`), nil},
		{"empty", write("empty.json", ""), nil},
		{"directory", filepath.Join(dir, "adir"), nil},
		{"trailing data", write("trailing.json", `{"apps":[]} {"apps":[{"name":"lost"}]}`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := LoadDump(tt.path)
			if err == nil {
				t.Fatalf("LoadDump(%s) = %+v, want an error", tt.path, d)
			}
			for _, sub := range append([]string{tt.path}, tt.wantSub...) {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error %q does not contain %q", err, sub)
				}
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	valid, _ := jsonOf(sampleFile())
	for _, s := range [][]byte{
		valid, valid[:len(valid)/2], nil, []byte("   "), []byte("null"), []byte("{}"),
		[]byte(`{"version":1,"next_id":0,"apps":[]}`), []byte(`{"version":2}`),
		[]byte(`{"version":1,"next_id":2,"apps":[{"config":{"name":"a"},"instances":[{"id":0},{"id":0}]}]}`),
		[]byte(`{"version":1} x`), []byte("\x00\xff"),
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, fmt.Sprintf("state-%d.json", n.Add(1)))
		defer os.Remove(path)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := Load(path)
		if err == nil {
			if st == nil || st.Version != Version {
				t.Fatalf("Load succeeded with %+v", st)
			}
			got, rerr := os.ReadFile(path)
			if rerr != nil || !bytes.Equal(got, data) {
				t.Fatalf("Load of a good file changed it: %v", rerr)
			}
			return
		}
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("Load: %v, want nil or *CorruptError", err)
		}
		defer os.Remove(ce.Aside)
		got, rerr := os.ReadFile(ce.Aside)
		if rerr != nil {
			t.Fatalf("aside file: %v", rerr)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("aside file holds %q, want %q", got, data)
		}
	})
}

func jsonOf(f *File) ([]byte, error) {
	dir, err := os.MkdirTemp("", "fuzzseed")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "s.json")
	if err := Save(p, f); err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// RemoveStaleTemps removes exactly the regular files WriteAtomic names for the path, and
// touches nothing else: not a symlink so named (nor what it points to), not a directory, not
// the temp files of another path, not a name that only looks alike.
func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	outside := filepath.Join(t.TempDir(), "precious")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("state.json", `{"version": 1}`)
	write(".state.json.tmp-123456", "half a state")
	write(".state.json.tmp-9", "")
	write(".state.json.tmp-", "no digits")
	write(".state.json.tmp-12a", "not digits")
	write("state.json.tmp-77", "no dot")
	write(".dump.json.tmp-55", "another file's")
	write(".state.json.check-1", "another kind")
	if err := os.WriteFile(outside, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, ".state.json.tmp-42")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, ".state.json.tmp-43"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A temp file as a crash leaves it: created by WriteAtomic's own naming, never renamed.
	f, err := os.CreateTemp(dir, tempPrefix(path)+"*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	removed, err := RemoveStaleTemps(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, ".state.json.tmp-123456"), filepath.Join(dir, ".state.json.tmp-9"), f.Name()}
	if got, w := slices.Sorted(slices.Values(removed)), slices.Sorted(slices.Values(want)); !reflect.DeepEqual(got, w) {
		t.Errorf("removed %q, want %q", got, w)
	}
	for _, p := range want {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (%v)", p, err)
		}
	}
	for _, name := range []string{"state.json", ".state.json.tmp-", ".state.json.tmp-12a", "state.json.tmp-77",
		".dump.json.tmp-55", ".state.json.check-1", ".state.json.tmp-42", ".state.json.tmp-43"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s was touched: %v", name, err)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep me" {
		t.Errorf("the symlink's target: %q, %v", b, err)
	}
	if again, err := RemoveStaleTemps(path); err != nil || len(again) != 0 {
		t.Errorf("second run removed %q, %v", again, err)
	}
}
