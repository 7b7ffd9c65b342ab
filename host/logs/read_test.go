package logs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadTail reads the end of a log whose lines are spread over rotated files, with lines
// split by the rotations, on both filesystems (the punch-hole one leaves a hole to skip).
func TestReadTail(t *testing.T) {
	for _, fsys := range filesystems {
		t.Run(fsys.name, func(t *testing.T) {
			path := filepath.Join(fsys.dir(t), "app-0-out.log")
			const total = 15000
			r := Rotator{MaxSize: MinMaxSize, Keep: 1000}
			for i := 0; i < total; i += 2500 {
				appendString(t, path, numbered(i, i+2500))
				mustRotate(t, r, path)
			}
			appendString(t, path, numbered(total, total+3)) // 3 lines in the live file after the hole
			if got := trimOf(t, path); got != fsys.want {
				t.Fatalf("trimmed by %v, want %v", got, fsys.want)
			}
			rotated, _ := Rotated(path)
			if len(rotated) < 3 {
				t.Fatalf("only %d rotated files", len(rotated))
			}
			all := total + 3
			for _, n := range []int{0, 1, 3, 4, 100, 2500, all - 1, all, all + 10} {
				t.Run(strconv.Itoa(n), func(t *testing.T) {
					got, err := ReadTail(path, n)
					if err != nil {
						t.Fatal(err)
					}
					var want []string
					for i := max(0, all-n); i < all; i++ {
						want = append(want, strconv.Itoa(i))
					}
					if !slices.Equal(got, want) {
						t.Fatalf("ReadTail(%d) = %d lines %s...; want %d lines %s...", n, len(got), head(got), len(want), head(want))
					}
				})
			}
		})
	}
}

func head(s []string) string { return strings.Join(s[:min(3, len(s))], ",") }

func TestReadTailEdges(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		files map[string]string // name -> content; "x.log" is the live file
		n     int
		want  []string
		err   error
	}{
		{"missing", nil, 5, nil, fs.ErrNotExist},
		{"missing n=0", nil, 0, nil, fs.ErrNotExist},
		{"empty", map[string]string{"x.log": ""}, 5, nil, nil},
		{"unterminated last line", map[string]string{"x.log": "a\nb\nc"}, 2, []string{"b", "c"}, nil},
		{"split line", map[string]string{"x.log.2": "a\nb", "x.log.1": "c\nd", "x.log": "e\nf\n"}, 4, []string{"a", "bc", "de", "f"}, nil},
		{"live file removed", map[string]string{"x.log.1": "a\nb\n"}, 5, []string{"a", "b"}, nil},
		{"gap stops the chain", map[string]string{"x.log.3": "old\n", "x.log.1": "a\n", "x.log": "b\n"}, 5, []string{"a", "b"}, nil},
		{"empty lines", map[string]string{"x.log": "\n\na\n\n"}, 3, []string{"", "a", ""}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			os.Mkdir(d, 0o755)
			for name, content := range tc.files {
				writeFile(t, filepath.Join(d, name), content)
			}
			got, err := ReadTail(filepath.Join(d, "x.log"), tc.n)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := ReadTail(filepath.Join(dir, "x.log"), -1); err == nil {
		t.Errorf("ReadTail with n < 0 succeeded")
	}
}

// TestReadTailUnreadableDir: an unreadable log directory is an error, not an empty log.
func TestReadTailUnreadableDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "x.log")
	writeFile(t, path, "a\n")
	if err := os.Chmod(dir, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	var err error
	unprivileged(t, func() { _, err = ReadTail(path, 5) })
	if err == nil || errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("ReadTail in an unreadable directory: %v; want permission denied", err)
	}
}

// TestFIFO: a named pipe at a log path is refused by whatever writes (see TestRefusedLogFiles);
// nothing blocks on it, and readers find nothing in it.
func TestFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pipe.log")
	if err := unix.Mkfifo(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if lines, err := ReadTail(path, 5); len(lines) != 0 || err != nil {
		t.Errorf("ReadTail = %q, %v", lines, err)
	}
	s := newStepper(t, path, Position{})
	s.expect("")
}
