package logs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRotateEach: one round over logs in several directories rotates exactly the logs past
// their limit, reports every path once with what Rotate says of it, and refuses the logs of a
// directory others can write in without touching those of the other directories.
func TestRotateEach(t *testing.T) {
	root := t.TempDir()
	small, big := int64(10), int64(MinMaxSize+4096)
	for _, tc := range []struct {
		name      string
		dirMode   os.FileMode
		sizes     map[string]int64 // file name -> bytes written; -1: no file
		wantRot   []string         // the names rotated
		wantError string           // every path of the directory fails saying this
	}{
		{"mixed sizes", 0o700, map[string]int64{"a-out.log": small, "a-err.log": big, "b-out.log": big, "b-err.log": 0}, []string{"a-err.log", "b-out.log"}, ""},
		{"missing files", 0o700, map[string]int64{"c-out.log": -1, "c-err.log": big}, []string{"c-err.log"}, ""},
		{"world-writable directory", 0o777, map[string]int64{"d-out.log": small, "d-err.log": big}, nil, "writable by other users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			files := map[string]Rotator{}
			for name, size := range tc.sizes {
				p := filepath.Join(dir, name)
				files[p] = Rotator{MaxSize: MinMaxSize, Keep: 2}
				if size >= 0 {
					if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			var rotated []string
			RotateEach(files, func(path string, did bool, err error) {
				seen[path]++
				if did {
					rotated = append(rotated, filepath.Base(path))
				}
				switch {
				case tc.wantError == "" && err != nil:
					t.Errorf("%s: %v", path, err)
				case tc.wantError != "" && (err == nil || !strings.Contains(err.Error(), tc.wantError)):
					t.Errorf("%s: error %v; want one saying %q", path, err, tc.wantError)
				}
			})
			for p := range files {
				if seen[p] != 1 {
					t.Errorf("%s reported %d times; want once", p, seen[p])
				}
			}
			if len(seen) != len(files) {
				t.Errorf("reported %d paths; want %d", len(seen), len(files))
			}
			for _, name := range tc.wantRot {
				if _, err := os.Stat(filepath.Join(dir, name+".1")); err != nil {
					t.Errorf("%s was not rotated: %v", name, err)
				}
			}
			if len(rotated) != len(tc.wantRot) {
				t.Errorf("rotated %v; want %v", rotated, tc.wantRot)
			}
		})
	}
}
