package logs

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// victim is a file outside any log directory that a planted link points at; its check fails
// the test if anything changed it: content, mode, or which file is there.
type victim struct {
	path    string
	content []byte
	ino     uint64
}

func newVictim(t *testing.T) *victim {
	t.Helper()
	path := filepath.Join(t.TempDir(), "victim")
	// Bigger than MinMaxSize, so a rotation through a link to it would have something to do.
	content := []byte(strings.Repeat("precious data, not a log\n", 2*MinMaxSize/25+1))
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return &victim{path, content, st.Ino}
}

func (v *victim) check(t *testing.T) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(v.path, &st); err != nil {
		t.Fatalf("victim: %v", err)
	}
	b, err := os.ReadFile(v.path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, v.content) || st.Mode&0o7777 != 0o600 || st.Ino != v.ino {
		t.Fatalf("the victim file changed: %d bytes (had %d), mode %04o (had 0600), inode %d (had %d)",
			len(b), len(v.content), st.Mode&0o7777, st.Ino, v.ino)
	}
	if ents, _ := os.ReadDir(filepath.Dir(v.path)); len(ents) != 1 {
		t.Fatalf("files appeared beside the victim: %v", ents)
	}
}

// writers are every operation that opens a log for writing, each returning its error.
var writers = []struct {
	name string
	do   func(path string) error
}{
	{"OpenAppend", func(path string) error {
		f, err := OpenAppend(path)
		if err == nil {
			f.WriteString("a log line\n")
			f.Close()
		}
		return err
	}},
	{"Prepare", Prepare},
	{"Check", Check},
	{"Rotate", func(path string) error { _, err := Rotator{MaxSize: MinMaxSize, Keep: 3}.Rotate(path); return err }},
	{"RotateEach", func(path string) (err error) {
		RotateEach(map[string]Rotator{path: {MaxSize: MinMaxSize, Keep: 3}}, func(_ string, _ bool, e error) { err = e })
		return err
	}},
	{"Flush", Flush},
}

// wantErr fails unless err says every one of want.
func wantErr(t *testing.T, op string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded; want an error saying %q", op, want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not say %q", op, err, w)
		}
	}
}

// TestRefusedLogFiles: a symbolic link (to a file, or dangling), a named pipe, a directory or a
// socket at a log path is refused by every writer with an error naming the path and why, and
// nothing is written, truncated or created through it. None of them blocks on the pipe.
func TestRefusedLogFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string, v *victim)
		want string
	}{
		{"symlink to a file", func(t *testing.T, path string, v *victim) {
			if err := os.Symlink(v.path, path); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link; refusing to follow it"},
		{"dangling symlink", func(t *testing.T, path string, v *victim) {
			if err := os.Symlink(filepath.Join(filepath.Dir(v.path), "created"), path); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link; refusing to follow it"},
		{"fifo", func(t *testing.T, path string, v *victim) {
			if err := unix.Mkfifo(path, 0o640); err != nil {
				t.Fatal(err)
			}
		}, "is a named pipe (fifo), not a regular file; refusing to use it"},
		{"directory", func(t *testing.T, path string, v *victim) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "is a directory, not a regular file; refusing to use it"},
		{"socket", func(t *testing.T, path string, v *victim) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			t.Cleanup(func() { l.Close() })
		}, "is a socket, not a regular file; refusing to use it"},
	} {
		for _, w := range writers {
			t.Run(tc.name+"/"+w.name, func(t *testing.T) {
				v := newVictim(t)
				dir := t.TempDir()
				path := filepath.Join(dir, "web-out.log")
				tc.make(t, path, v)
				writeFile(t, path+".1", "rotated\n")
				err := w.do(path)
				if w.name == "Check" {
					// Check looks at the directory only.
					if err != nil {
						t.Errorf("Check: %v", err)
					}
				} else {
					wantErr(t, w.name, err, "log file "+path+" "+tc.want)
				}
				v.check(t)
				if b, err := os.ReadFile(path + ".1"); err != nil || string(b) != "rotated\n" {
					t.Errorf("%s.1 changed: %q, %v", path, b, err)
				}
			})
		}
	}
}

// TestNullDevice: /dev/null is the one log path that is not a regular file and is accepted (how
// PM2 users discard a stream): apps write into it, and there is nothing to rotate or flush.
func TestNullDevice(t *testing.T) {
	for _, w := range writers {
		if err := w.do("/dev/null"); err != nil && w.name != "Check" {
			t.Errorf("%s(/dev/null): %v", w.name, err)
		}
	}
	if fi, err := os.Stat("/dev/null"); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("/dev/null is no longer a character device: %v, %v", fi, err)
	}
}

// TestOpenAppend: the file is created with mode 0640 if missing, opened for appending and
// blocking (it becomes an app's stdout), and an existing file is appended to, not truncated.
func TestOpenAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web-out.log")
	for i, want := range []string{"one\n", "one\ntwo\n"} {
		f, err := OpenAppend(path)
		if err != nil {
			t.Fatal(err)
		}
		fl, _ := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		if fl&unix.O_APPEND == 0 || fl&unix.O_NONBLOCK != 0 || fl&unix.O_ACCMODE != unix.O_WRONLY {
			t.Errorf("descriptor flags %#o: want O_WRONLY|O_APPEND, blocking", fl)
		}
		f.WriteString([]string{"one\n", "two\n"}[i])
		f.Close()
		if b, _ := os.ReadFile(path); string(b) != want {
			t.Errorf("after write %d the log holds %q, want %q", i, b, want)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640&^umask() {
		t.Errorf("log created with mode %v", fi.Mode().Perm())
	}
	_, err := OpenAppend(filepath.Join(t.TempDir(), "nodir", "x.log"))
	wantErr(t, "OpenAppend in a missing directory", err, "log file cannot be written", "nodir", "no such file or directory")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v is not fs.ErrNotExist", err)
	}
}

func umask() fs.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return fs.FileMode(m)
}

// TestLogDirOthersCanWrite: a log directory that a user other than pmdaemon's (and root) can
// write in is refused by every writer, with its mode, and nothing in it is touched; one only
// pmdaemon's user can write in is accepted, sticky or not.
func TestLogDirOthersCanWrite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  uint32
		owner int // -1: ours
		want  string
	}{
		{"private", 0o700, -1, ""},
		{"readable by all", 0o755, -1, ""},
		{"sticky, not writable", 0o1755, -1, ""},
		{"group-writable", 0o770, -1, "is writable by other users (mode 0770)"},
		{"group-writable, sticky", 0o1770, -1, "is writable by other users (mode 1770)"},
		{"world-writable", 0o777, -1, "is writable by other users (mode 0777)"},
		{"world-writable only", 0o703, -1, "is writable by other users (mode 0703)"},
		{"like /tmp", 0o1777, -1, "is writable by other users (mode 1777)"},
		{"another user's", 0o755, 65534, "uid 65534)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.owner >= 0 && os.Geteuid() != 0 {
				t.Skip("only root can give a directory to another user")
			}
			for _, w := range writers {
				dir := filepath.Join(t.TempDir(), "logs")
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, "web-out.log")
				content := numbered(0, 5000)
				writeFile(t, path, content)
				writeFile(t, path+".1", "rotated\n")
				if tc.owner >= 0 {
					if err := os.Chown(dir, tc.owner, tc.owner); err != nil {
						t.Fatal(err)
					}
				}
				if err := unix.Chmod(dir, tc.mode); err != nil {
					t.Fatal(err)
				}
				err := w.do(path)
				if tc.want == "" {
					if err != nil {
						t.Errorf("%s: %v", w.name, err)
					}
					continue
				}
				if tc.owner >= 0 {
					// The user's name depends on the machine; the uid does not.
					wantErr(t, w.name, err, "log directory "+dir+" belongs to ", tc.want, "pick a directory only pmdaemon's user can write")
				} else {
					wantErr(t, w.name, err, "log directory "+dir+" "+tc.want+"; pick a directory only pmdaemon's user can write")
				}
				if b, _ := os.ReadFile(path); string(b) != content {
					t.Errorf("%s changed the log", w.name)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 2 {
					t.Errorf("%s: the directory holds %d entries, want the log and its .1", w.name, len(ents))
				}
			}
		})
	}
}

// TestSymlinkToLogDir: a symbolic link on the way to the log directory is followed only if no
// other user can have put it there (the fs.protected_symlinks rule); the directory it leads to
// must pass the checks too.
func TestSymlinkToLogDir(t *testing.T) {
	type setup struct {
		parentMode uint32 // the directory holding the link
		linkOwner  int    // -1: ours
		target     string // relative to the test's root; "" means "real" (private)
		targetMode uint32
	}
	for _, tc := range []struct {
		name string
		setup
		want []string // nothing when accepted
	}{
		{"link in a private directory", setup{0o700, -1, "", 0o700}, nil},
		{"relative link through ..", setup{0o755, -1, "../real", 0o700}, nil},
		{"link in a world-writable directory", setup{0o777, -1, "", 0o700}, []string{
			"log directory %[1]s/shared/logs goes through the symbolic link %[1]s/shared/logs, which another user can have put there (it is in %[1]s/shared, mode 0777",
			"refusing to follow it"}},
		{"our link in a sticky directory", setup{0o1777, -1, "", 0o700}, nil},
		{"another user's link in a sticky directory", setup{0o1777, 65534, "", 0o700}, []string{
			"log directory %[1]s/shared/logs goes through the symbolic link %[1]s/shared/logs, which ",
			"uid 65534) can have put there (it is in %[1]s/shared, mode 1777", "refusing to follow it"}},
		{"link to a world-writable directory", setup{0o700, -1, "", 0o777}, []string{
			"log directory %[1]s/shared/logs (which is %[1]s/real) is writable by other users (mode 0777); pick a directory only pmdaemon's user can write"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.linkOwner >= 0 && os.Geteuid() != 0 {
				t.Skip("only root can give a link to another user")
			}
			root := t.TempDir()
			real := filepath.Join(root, "real")
			shared := filepath.Join(root, "shared")
			for _, d := range []string{real, shared} {
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			// What a planted link is after: a file of the same name in the directory it
			// leads to.
			v := &victim{path: filepath.Join(real, "web-out.log"), content: []byte("precious\n")}
			if err := os.WriteFile(v.path, v.content, 0o600); err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			unix.Stat(v.path, &st)
			v.ino = st.Ino
			target := tc.target
			if target == "" {
				target = real
			}
			link := filepath.Join(shared, "logs")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			if tc.linkOwner >= 0 {
				if err := os.Lchown(link, tc.linkOwner, tc.linkOwner); err != nil {
					t.Fatal(err)
				}
			}
			unix.Chmod(shared, tc.parentMode)
			unix.Chmod(real, tc.targetMode)
			path := filepath.Join(link, "web-out.log")
			for _, w := range writers {
				err := w.do(path)
				if tc.want == nil {
					if err != nil {
						t.Errorf("%s: %v", w.name, err)
					}
					continue
				}
				var want []string
				for _, s := range tc.want {
					want = append(want, strings.ReplaceAll(s, "%[1]s", root))
				}
				wantErr(t, w.name, err, want...)
				v.check(t)
			}
			if tc.want == nil {
				// Accepted: the log is the file in the real directory (OpenAppend wrote a line
				// into it, Flush emptied it).
				if fi, err := os.Stat(v.path); err != nil || fi.Size() != 0 {
					t.Errorf("the log in the real directory: %v, %v; want it flushed", fi, err)
				}
			}
		})
	}
	t.Run("loop", func(t *testing.T) {
		root := t.TempDir()
		os.Symlink(filepath.Join(root, "b"), filepath.Join(root, "a"))
		os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "b"))
		_, err := OpenAppend(filepath.Join(root, "a", "x.log"))
		wantErr(t, "OpenAppend through a loop", err, "too many levels of symbolic links")
	})
}

// TestRotateRefusesPlantedRotatedNames: a symbolic link or a fifo at NAME.k makes Rotate fail,
// naming it, before it touches anything; the rotation works again once it is gone. Flush
// removes such a link (the link, not what it points to).
func TestRotateRefusesPlantedRotatedNames(t *testing.T) {
	for _, k := range []int{1, 3} {
		for _, kind := range []string{"symlink", "fifo"} {
			t.Run(kind+" at ."+strconv.Itoa(k), func(t *testing.T) {
				v := newVictim(t)
				dir := t.TempDir()
				path := filepath.Join(dir, "web-out.log")
				content := numbered(0, 5000)
				writeFile(t, path, content)
				writeFile(t, path+".2", "older\n")
				planted := rotatedName(path, k)
				want := "rotated log " + planted + " is a symbolic link; refusing to follow it"
				if kind == "fifo" {
					if err := unix.Mkfifo(planted, 0o640); err != nil {
						t.Fatal(err)
					}
					want = "rotated log " + planted + " is a named pipe (fifo), not a regular file; refusing to use it"
				} else if err := os.Symlink(v.path, planted); err != nil {
					t.Fatal(err)
				}
				r := Rotator{MaxSize: MinMaxSize, Keep: 5}
				ok, err := r.Rotate(path)
				if ok {
					t.Errorf("Rotate rotated")
				}
				wantErr(t, "Rotate", err, "cannot rotate log "+path, want)
				v.check(t)
				if b, _ := os.ReadFile(path); string(b) != content {
					t.Errorf("the live log changed")
				}
				if b, _ := os.ReadFile(path + ".2"); string(b) != "older\n" {
					t.Errorf(".2 changed: %d bytes", len(b))
				}
				if fi, err := os.Lstat(planted); err != nil || fi.Mode().IsRegular() {
					t.Errorf("the planted %s is gone: %v, %v", kind, fi, err)
				}

				if err := Flush(path); err != nil {
					t.Fatalf("Flush: %v", err)
				}
				v.check(t)
				if rotated, _ := Rotated(path); len(rotated) != 0 {
					t.Errorf("Flush left %v", rotated)
				}
				writeFile(t, path, content)
				mustRotate(t, r, path)
			})
		}
	}
}

// TestRotateTempFiles: rotation writes only files it creates under a fresh name (O_EXCL): a link
// planted at the fixed name older versions used (.NAME.rotating) is not written through, and
// temporary files left by a rotation that died half-way are removed by the next one.
func TestRotateTempFiles(t *testing.T) {
	for _, fsys := range filesystems {
		t.Run(fsys.name, func(t *testing.T) {
			v := newVictim(t)
			dir := fsys.dir(t)
			path := filepath.Join(dir, "web-out.log")
			writeFile(t, path, numbered(0, 5000))
			if err := os.Symlink(v.path, filepath.Join(dir, ".web-out.log.rotating")); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, ".web-out.log.rotating-0123456789abcdef"), "left by a crash")
			writeFile(t, filepath.Join(dir, ".other.log.rotating-0123456789abcdef"), "not ours")
			mustRotate(t, Rotator{MaxSize: 16 << 10, Keep: 5}, path)
			v.check(t)
			checkNumbered(t, stream(t, path), 5000)
			var names []string
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if want := []string{".other.log.rotating-0123456789abcdef", "web-out.log", "web-out.log.1"}; !slices.Equal(names, want) {
				t.Errorf("directory holds %v, want %v", names, want)
			}
		})
	}
}

// TestRotateBacklogInPieces: a log that grew far past MaxSize before Rotate came (an app
// writing faster than the rotation was checked) is cut into rotated files of at most 2 ×
// MaxSize, oldest first, still losing and repeating nothing; pieces past Keep are dropped.
func TestRotateBacklogInPieces(t *testing.T) {
	const lines = 40_000 // 228,890 bytes
	for _, fsys := range filesystems {
		for _, keep := range []int{100, 3} {
			t.Run(fsys.name+"/keep"+strconv.Itoa(keep), func(t *testing.T) {
				path := filepath.Join(fsys.dir(t), "web-out.log")
				all := numbered(0, lines)
				writeFile(t, path, all)
				r := Rotator{MaxSize: 32 << 10, Keep: keep}
				mustRotate(t, r, path)
				rotated, err := Rotated(path)
				if err != nil {
					t.Fatal(err)
				}
				want := min(keep, len(all)/(32<<10))
				if len(rotated) != want {
					t.Errorf("%d rotated files, want %d", len(rotated), want)
				}
				for _, p := range rotated {
					if fi, _ := os.Stat(p); fi.Size() > 2*r.MaxSize {
						t.Errorf("%s holds %d bytes, more than 2 × MaxSize", filepath.Base(p), fi.Size())
					}
				}
				got := stream(t, path)
				if keep == 100 {
					checkNumbered(t, got, lines)
				} else if !strings.HasSuffix(all, string(got)) || len(got) < 3*(32<<10) {
					t.Errorf("the stream left (%d bytes) is not the end of what was written", len(got))
				}
				if live := liveData(t, path); len(live) > 4096 {
					t.Errorf("the live log kept %d bytes", len(live))
				}
			})
		}
	}
}
