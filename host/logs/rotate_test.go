package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// shLines is a real process writing numbered lines to its stdout, one write(2) a line.
const shLines = `i=0; while [ $i -lt $N ]; do echo $i; i=$((i+1)); done`

// TestRotateKeepsEveryLine rotates a log in a loop while a shell writes 200k numbered lines into
// it through an O_APPEND descriptor, as an app does, and checks that the rotated files and the
// live file, concatenated, are every line exactly once and in order.
func TestRotateKeepsEveryLine(t *testing.T) {
	const lines = 200_000
	for _, fsys := range filesystems {
		t.Run(fsys.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(fsys.dir(t), "app-0-out.log")
			out := openAppend(t, path)
			cmd := exec.Command("sh", "-c", shLines)
			cmd.Env = append(os.Environ(), "N="+strconv.Itoa(lines))
			cmd.Stdout = out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()

			r := Rotator{MaxSize: 16 << 10, Keep: 100_000}
			during, after := 0, 0
			for running := true; running; {
				select {
				case err := <-exited:
					if err != nil {
						t.Fatalf("writer: %v", err)
					}
					running = false
				default:
				}
				ok, err := r.Rotate(path)
				if err != nil {
					t.Fatal(err)
				}
				if ok && running {
					during++
				}
			}
			for {
				ok, err := r.Rotate(path)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				after++
			}
			t.Logf("%d rotations while the writer ran, %d after", during, after)
			if during < 10 {
				t.Fatalf("only %d rotations happened while the writer ran; the test proves nothing", during)
			}
			data := stream(t, path)
			checkNumbered(t, data, lines)
			if got := trimOf(t, path); got != fsys.want {
				t.Errorf("the live file was trimmed by %v, want %v", got, fsys.want)
			}
			fi, _ := os.Stat(path)
			switch fsys.want {
			case trimCollapse:
				if fi.Size() >= r.MaxSize {
					t.Errorf("live file is %d bytes after rotation, want < %d", fi.Size(), r.MaxSize)
				}
			case trimPunch:
				if fi.Size() != int64(len(data)) {
					t.Errorf("live file's logical size is %d, want all %d bytes written (a hole at its head)", fi.Size(), len(data))
				}
				if a := allocated(t, path); a > r.MaxSize+4096 {
					t.Errorf("live file still uses %d bytes of disk after rotation, want <= %d", a, r.MaxSize+4096)
				}
			}
			split := 0
			rotated, _ := Rotated(path)
			for _, p := range rotated {
				if b, _ := os.ReadFile(p); len(b) > 0 && b[len(b)-1] != '\n' {
					split++
				}
			}
			t.Logf("%d of %d rotated files end in the middle of a line (joined back in the stream)", split, len(rotated))
		})
	}
}

// TestRotateConcurrentWriters has several goroutines write lines through their own O_APPEND
// descriptors while the log rotates: every writer's lines come back complete and in order.
func TestRotateConcurrentWriters(t *testing.T) {
	const writers, lines, batch = 4, 20_000, 1000
	for _, fsys := range filesystems {
		t.Run(fsys.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(fsys.dir(t), "app-0-out.log")
			var wg sync.WaitGroup
			var done atomic.Int32
			// Writer 0 waits for a rotation after each batch (more than MaxSize), so there are
			// many rotations whatever the speed of the machine; the others never wait.
			rotated := make(chan struct{}, 1)
			for w := range writers {
				f := openAppend(t, path)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer done.Add(1)
					for i := range lines {
						if w == 0 && i > 0 && i%batch == 0 {
							select {
							case <-rotated:
							case <-time.After(10 * time.Second):
								t.Error("no rotation for 10s")
								return
							}
						}
						if _, err := fmt.Fprintf(f, "w%d %d %s\n", w, i, strings.Repeat("x", i%61)); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			r := Rotator{MaxSize: MinMaxSize, Keep: 100_000}
			rotations := 0
			for done.Load() < writers {
				ok, err := r.Rotate(path)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					rotations++
					select {
					case rotated <- struct{}{}:
					default:
					}
				}
			}
			wg.Wait()
			if rotations < lines/batch-1 {
				t.Fatalf("only %d rotations while the writers ran", rotations)
			}
			next := make([]int, writers)
			for _, l := range strings.Split(strings.TrimSuffix(string(stream(t, path)), "\n"), "\n") {
				var w, i int
				var pad string
				if n, _ := fmt.Sscanf(l, "w%d %d %s", &w, &i, &pad); n < 2 || w < 0 || w >= writers {
					t.Fatalf("mangled line %q", l)
				}
				if i != next[w] || len(pad) != i%61 {
					t.Fatalf("writer %d: line %q, want number %d", w, l, next[w])
				}
				next[w]++
			}
			for w, n := range next {
				if n != lines {
					t.Errorf("writer %d: %d lines, want %d", w, n, lines)
				}
			}
		})
	}
}

// TestRotateKeep checks that only Keep rotated files stay, newest in path.1, and that other
// files next to the log are left alone.
func TestRotateKeep(t *testing.T) {
	const chunk = 3 * 4096 // each round adds this much, one block stays behind
	for _, tc := range []struct {
		keep, rounds, leftover int // leftover: path.k present before, k > keep
	}{
		{keep: 1, rounds: 4},
		{keep: 3, rounds: 2},
		{keep: 3, rounds: 6},
		{keep: 2, rounds: 3, leftover: 7},
	} {
		for _, fsys := range filesystems {
			t.Run(fmt.Sprintf("%s/keep%d-rounds%d", fsys.name, tc.keep, tc.rounds), func(t *testing.T) {
				dir := fsys.dir(t)
				path := filepath.Join(dir, "app.log")
				others := []string{"app.log.01", "app.log.bak", "app.log.1x", "app.log.0", "app.logs.1", "other.log.1"}
				for _, o := range others {
					writeFile(t, filepath.Join(dir, o), o)
				}
				if tc.leftover > 0 {
					writeFile(t, rotatedName(path, tc.leftover), "leftover")
				}
				r := Rotator{MaxSize: chunk, Keep: tc.keep}
				var rounds [][]byte // what each rotation moved out
				for i := range tc.rounds {
					appendString(t, path, strings.Repeat(string(rune('a'+i)), chunk))
					live := liveData(t, path)
					mustRotate(t, r, path)
					moved := len(live) - len(liveData(t, path))
					rounds = append(rounds, live[:moved])
				}
				rotated, err := Rotated(path)
				if err != nil {
					t.Fatal(err)
				}
				want := min(tc.keep, tc.rounds)
				var wantNames []string
				for k := 1; k <= want; k++ {
					wantNames = append(wantNames, rotatedName(path, k))
				}
				if !slices.Equal(rotated, wantNames) {
					t.Fatalf("rotated files %v, want %v", rotated, wantNames)
				}
				for k := 1; k <= want; k++ {
					b, _ := os.ReadFile(rotatedName(path, k))
					if w := rounds[len(rounds)-k]; !bytes.Equal(b, w) {
						t.Errorf("%s holds %d bytes starting %q, want the rotation %d from the end (%d bytes starting %q)",
							filepath.Base(rotatedName(path, k)), len(b), b[:min(8, len(b))], k, len(w), w[:min(8, len(w))])
					}
				}
				for _, o := range others {
					if b, err := os.ReadFile(filepath.Join(dir, o)); err != nil || string(b) != o {
						t.Errorf("%s was touched: %q, %v", o, b, err)
					}
				}
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), ".") {
						t.Errorf("%s left behind", e.Name())
					}
				}
			})
		}
	}
}

func TestRotateNothingToDo(t *testing.T) {
	dir := t.TempDir()
	r := Rotator{MaxSize: MinMaxSize, Keep: 2}
	small := filepath.Join(dir, "small.log")
	writeFile(t, small, strings.Repeat("x", MinMaxSize-1))
	for _, tc := range []struct{ name, path string }{
		{"missing", filepath.Join(dir, "missing.log")},
		{"missing dir", filepath.Join(dir, "nodir", "x.log")},
		{"below max size", small},
		{"null device", "/dev/null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := r.Rotate(tc.path)
			if ok || err != nil {
				t.Errorf("Rotate(%s) = %v, %v; want false, nil", tc.path, ok, err)
			}
		})
	}
	if rotated, _ := Rotated(small); len(rotated) != 0 {
		t.Errorf("rotated files appeared: %v", rotated)
	}
}

func TestRotatorValidate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	writeFile(t, path, strings.Repeat("x\n", 10<<10))
	for _, tc := range []struct {
		r    Rotator
		want string // "" for valid
	}{
		{Rotator{}, "max size must be at least 8192 bytes, got 0"},
		{Rotator{MaxSize: 4096, Keep: 5}, "max size must be at least 8192 bytes, got 4096"},
		{Rotator{MaxSize: -1, Keep: 5}, "max size must be at least 8192 bytes, got -1"},
		{Rotator{MaxSize: 10 << 20, Keep: 0}, "keep must be at least 1, got 0"},
		{Rotator{MaxSize: 10 << 20, Keep: -3}, "keep must be at least 1, got -3"},
		{Rotator{MaxSize: MinMaxSize, Keep: 1}, ""},
		{Rotator{MaxSize: DefaultMaxSize, Keep: DefaultKeep}, ""},
	} {
		t.Run(fmt.Sprintf("%d-%d", tc.r.MaxSize, tc.r.Keep), func(t *testing.T) {
			err := tc.r.Validate()
			_, rerr := tc.r.Rotate(path)
			if tc.want == "" {
				if err != nil || rerr != nil {
					t.Errorf("Validate = %v, Rotate = %v; want both nil", err, rerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v; want %q", err, tc.want)
			}
			if rerr == nil || rerr.Error() != err.Error() {
				t.Errorf("Rotate = %v; want the Validate error", rerr)
			}
		})
	}
}

// TestRotateUnwritableDir: a log directory the daemon cannot write in makes Rotate fail with an
// error naming the file and the cause, and leaves everything as it was.
func TestRotateUnwritableDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "app-0-out.log")
	content := numbered(0, 5000)
	writeFile(t, path, content)
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	var ok bool
	var err error
	unprivileged(t, func() { ok, err = Rotator{MaxSize: MinMaxSize, Keep: 3}.Rotate(path) })
	if ok || err == nil {
		t.Fatalf("Rotate in a read-only directory = %v, %v; want an error", ok, err)
	}
	for _, want := range []string{"cannot rotate log " + path, "cannot write in the log directory", "permission denied"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != content {
		t.Errorf("the log changed")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the log", len(ents))
	}
}

func TestCheck(t *testing.T) {
	for _, fsys := range filesystems {
		t.Run(fsys.name, func(t *testing.T) {
			dir := fsys.dir(t)
			if err := Check(filepath.Join(dir, "app.log")); err != nil {
				t.Errorf("Check: %v", err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("Check left %d files behind", len(ents))
			}
		})
	}
	t.Run("read-only directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "logs")
		if err := os.Mkdir(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "app.log")
		var err error
		unprivileged(t, func() { err = Check(path) })
		if err == nil || !strings.Contains(err.Error(), "log "+path+" cannot be rotated: cannot write in its directory") ||
			!strings.Contains(err.Error(), "permission denied") {
			t.Errorf("Check in a read-only directory: %v", err)
		}
	})
	t.Run("no directory", func(t *testing.T) {
		if err := Check(filepath.Join(t.TempDir(), "nodir", "app.log")); err == nil {
			t.Errorf("Check in a missing directory succeeded")
		}
	})
}

func TestFlush(t *testing.T) {
	for _, fsys := range filesystems {
		t.Run(fsys.name, func(t *testing.T) {
			dir := fsys.dir(t)
			path := filepath.Join(dir, "app-0-out.log")
			app := openAppend(t, path) // the app's descriptor stays open across the flush
			if _, err := app.WriteString(numbered(0, 20000)); err != nil {
				t.Fatal(err)
			}
			r := Rotator{MaxSize: MinMaxSize, Keep: 3}
			for range 3 {
				mustRotate(t, r, path)
				app.WriteString(numbered(0, 3000))
			}
			writeFile(t, filepath.Join(dir, "app-0-out.log.bak"), "keep me")
			writeFile(t, filepath.Join(dir, "app-0-err.log.1"), "keep me")
			if err := Flush(path); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
				t.Fatalf("live file after flush: %v, %v; want empty", fi, err)
			}
			if rotated, _ := Rotated(path); len(rotated) != 0 {
				t.Errorf("rotated files left: %v", rotated)
			}
			for _, o := range []string{"app-0-out.log.bak", "app-0-err.log.1"} {
				if _, err := os.Stat(filepath.Join(dir, o)); err != nil {
					t.Errorf("%s: %v", o, err)
				}
			}
			// The app goes on writing at the new end, not at its old offset.
			app.WriteString("after\n")
			if b, _ := os.ReadFile(path); string(b) != "after\n" {
				t.Errorf("live file after flush and a write: %q", b)
			}
			if lines, err := ReadTail(path, 10); err != nil || !slices.Equal(lines, []string{"after"}) {
				t.Errorf("ReadTail after flush = %q, %v", lines, err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if err := Flush(filepath.Join(t.TempDir(), "nope.log")); err != nil {
			t.Errorf("Flush of a missing log: %v", err)
		}
	})
	t.Run("rotated only", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.log")
		writeFile(t, path+".1", "old\n")
		if err := Flush(path); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path + ".1"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("x.log.1 still there: %v", err)
		}
	})
}
