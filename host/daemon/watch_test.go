package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// changes records a watcher's calls.
type changes struct {
	mu   sync.Mutex
	rels []string
}

func (c *changes) add(rel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rels = append(c.rels, rel)
}

func (c *changes) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.rels...)
}

func TestTreeWatcher(t *testing.T) {
	const delay = 150 * time.Millisecond
	tests := []struct {
		name   string
		paths  []string
		ignore []string
		setup  []string // directories made before watching
		act    func(root string) error
		want   []string // the paths reported, one per restart
	}{
		{"file in cwd", []string{"."}, nil, nil, touch("a.txt"), []string{"a.txt"}},
		{"burst is one change", []string{"."}, nil, nil, func(root string) error {
			for i := range 5 {
				if err := touch("a.txt")(root); err != nil {
					return err
				}
				if i == 4 {
					return touch("b.txt")(root)
				}
			}
			return nil
		}, []string{"b.txt"}},
		{"subdirectory", []string{"."}, nil, []string{"src/lib"}, touch("src/lib/x.js"), []string{"src/lib/x.js"}},
		{"new subdirectory", []string{"."}, nil, nil, func(root string) error {
			if err := os.MkdirAll(filepath.Join(root, "new"), 0o755); err != nil {
				return err
			}
			return nil
		}, []string{"new"}},
		{"node_modules by default", []string{"."}, nil, []string{"node_modules/dep"}, touch("node_modules/dep/i.js"), nil},
		{".git by default", []string{"."}, nil, []string{".git"}, touch(".git/index"), nil},
		{"ignore glob on name", []string{"."}, []string{"*.log"}, nil, touch("out.log"), nil},
		{"ignore directory", []string{"."}, []string{"logs"}, []string{"logs/old"}, touch("logs/old/x"), nil},
		{"only the watched path", []string{"src"}, nil, []string{"src", "other"}, touch("other/x"), nil},
		{"a watched file", []string{"conf.json"}, nil, nil, func(root string) error {
			if err := touch("sibling")(root); err != nil {
				return err
			}
			return touch("conf.json")(root)
		}, []string{"conf.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range tt.setup {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := touch("conf.json")(root); err != nil {
				t.Fatal(err)
			}
			got := &changes{}
			w, err := newTreeWatcher(watchConf{root: root, paths: tt.paths, ignore: tt.ignore, delay: delay}, got.add)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := tt.act(root); err != nil {
				t.Fatal(err)
			}
			if tt.name == "new subdirectory" {
				// The new directory is watched: a file made in it is a change of its own.
				waitChanges(t, got, 1)
				if err := touch("new/f")(root); err != nil {
					t.Fatal(err)
				}
				tt.want = append(tt.want, "new/f")
			}
			if tt.want != nil {
				waitChanges(t, got, len(tt.want))
			}
			// Nothing more comes: a few debounce delays of quiet, measured, not slept on.
			deadline := time.Now().Add(4 * delay)
			for time.Now().Before(deadline) {
				if n := len(got.get()); n > len(tt.want) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if g := got.get(); !slices.Equal(g, tt.want) {
				t.Errorf("changes %q, want %q", g, tt.want)
			}
		})
	}
}

func TestTreeWatcherMissingPath(t *testing.T) {
	root := t.TempDir()
	_, err := newTreeWatcher(watchConf{root: root, paths: []string{"nope"}, delay: time.Second}, func(string) {})
	if err == nil || err.Error() != "watch path "+filepath.Join(root, "nope")+": no such file or directory" {
		t.Errorf("error %v", err)
	}
}

func touch(rel string) func(root string) error {
	return func(root string) error {
		return os.WriteFile(filepath.Join(root, rel), []byte(time.Now().String()), 0o644)
	}
}

func waitChanges(t *testing.T, c *changes, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(c.get()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d changes; got %q", n, c.get())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
