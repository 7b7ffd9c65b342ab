package logs

// Every open of a log file for writing goes through this file: the app's file opened for
// append (OpenAppend, Prepare), the rotation's files (Rotate) and the flush (Flush).
//
// The daemon often runs as root and the log paths are the user's choice (an out_file in /tmp, a
// group-writable /var/log/app), so whoever can write in a log directory could point a name the
// daemon is about to open at another file and have the daemon truncate it, chmod it or fill it
// with log lines. Hence:
//
//   - the log directory is opened once, walking the path one component at a time with
//     O_NOFOLLOW, and every file is then opened relative to that directory descriptor
//     (openat): a parent swapped after the check is not followed. A symbolic link on the way is
//     followed only if nobody but pmdaemon's user or root can have put it there;
//   - the directory itself must be writable by nobody but pmdaemon's user (and root): owned by
//     either, and neither group- nor world-writable, sticky or not. Such a directory is refused
//     with an error naming it and its mode;
//   - a file is opened with O_NOFOLLOW (a symbolic link at its name is refused, not followed),
//     checked before and after the open to be a regular file (a fifo, a device or a directory
//     is refused; opening some devices does things of its own), and never opened with O_TRUNC;
//   - files the rotation creates get a fresh random name with O_CREAT|O_EXCL, which fails on
//     any existing name, a dangling symbolic link included;
//   - renames (renameat) and removals (unlinkat) act on the names themselves and never follow
//     a link; Rotate still refuses to run when a rotated name (NAME.1 ...) is not a regular
//     file, so a planted link is reported rather than silently shuffled.
//
// The one file that is not regular and is accepted is the null device: "out_file": "/dev/null"
// is how PM2 users throw a stream away, and writing there cannot block or hurt anything.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// refusal is an error about a path pmdaemon will not use as it is; its text says which path
// and why, and callers pass it on without wrapping it in "cannot be written".
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func refuse(format string, args ...any) error { return &refusal{fmt.Sprintf(format, args...)} }

func isRefusal(err error) bool {
	var r *refusal
	return errors.As(err, &r)
}

// kind says what a file that is not a regular file is.
func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFIFO:
		return "a named pipe (fifo)"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return fmt.Sprintf("a file of type %#o", mode&unix.S_IFMT)
}

// badFile is the error for what (a "log file", a "rotated log") at path being mode's kind.
func badFile(what, path string, mode uint32) error {
	if mode&unix.S_IFMT == unix.S_IFLNK {
		return refuse("%s %s is a symbolic link; refusing to follow it", what, path)
	}
	return refuse("%s %s is %s, not a regular file; refusing to use it", what, path, kind(mode))
}

func regular(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFREG }

// nullDevice reports whether st is /dev/null's device (character device 1:3), which cannot be
// created without CAP_MKNOD and swallows whatever is written to it.
func nullDevice(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3
}

// trustedOwner: root, or the user pmdaemon runs as.
func trustedOwner(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

// othersCanWrite reports whether a user other than root and pmdaemon's can add, remove or
// rename entries in the directory st.
func othersCanWrite(st *unix.Stat_t) bool { return !trustedOwner(st.Uid) || st.Mode&0o022 != 0 }

// trustedLink reports whether the symbolic link link, found in directory parent, can only have
// been put there by root or pmdaemon's user: parent is writable by no one else, or it is a
// sticky directory (like /tmp) of root's or ours and the link is ours or root's (others cannot
// remove or replace it there). This is the rule of the kernel's fs.protected_symlinks.
func trustedLink(parent, link *unix.Stat_t) bool {
	if !othersCanWrite(parent) {
		return true
	}
	return parent.Mode&unix.S_ISVTX != 0 && trustedOwner(parent.Uid) && trustedOwner(link.Uid)
}

func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return fmt.Sprintf("user %s (uid %s)", u.Username, id)
	}
	return "uid " + id
}

// maxLinks bounds the symbolic links followed while resolving a log directory (the kernel's
// limit is 40 too).
const maxLinks = 40

// logDir is a log directory that passed the checks, open for the *at calls.
type logDir struct {
	f    *os.File
	fd   int
	name string // the directory as the caller named it
}

func (d *logDir) close() { d.f.Close() }

// path is name in d, for messages.
func (d *logDir) path(name string) string { return filepath.Join(d.name, name) }

// openDir opens the directory dir for the log files in it. It refuses a directory that users
// other than root and pmdaemon's can write in, and a symbolic link on the way that one of them
// could have planted (see trustedLink). Other failures are *fs.PathError naming the component
// that failed (errors.Is(err, fs.ErrNotExist) for a missing one).
func openDir(dir string) (*logDir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}()
	var st unix.Stat_t // of fd
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: "/", Err: err}
	}
	cur := "/" // where fd is, for messages
	rest := strings.Split(abs, "/")
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		next := filepath.Join(cur, c)
		nfd, err := unix.Openat(fd, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: next, Err: err}
		}
		var nst unix.Stat_t
		if err := unix.Fstat(nfd, &nst); err != nil {
			unix.Close(nfd)
			return nil, &fs.PathError{Op: "stat", Path: next, Err: err}
		}
		switch nst.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			unix.Close(fd)
			fd, st, cur = nfd, nst, next
		case unix.S_IFLNK:
			if !trustedLink(&st, &nst) {
				unix.Close(nfd)
				return nil, refuse("log directory %s goes through the symbolic link %s, which %s can have put there (it is in %s, mode %04o, owned by %s); refusing to follow it",
					dir, next, linkPlanter(&nst), cur, st.Mode&0o7777, userName(st.Uid))
			}
			target, err := readlinkFD(nfd)
			unix.Close(nfd)
			if err != nil {
				return nil, &fs.PathError{Op: "readlink", Path: next, Err: err}
			}
			if links++; links > maxLinks {
				return nil, &fs.PathError{Op: "open", Path: dir, Err: unix.ELOOP}
			}
			if filepath.IsAbs(target) {
				rfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					return nil, &fs.PathError{Op: "open", Path: "/", Err: err}
				}
				unix.Close(fd)
				fd, cur = rfd, "/"
				if err := unix.Fstat(fd, &st); err != nil {
					return nil, &fs.PathError{Op: "stat", Path: "/", Err: err}
				}
			}
			rest = append(strings.Split(target, "/"), rest...)
		default:
			unix.Close(nfd)
			return nil, &fs.PathError{Op: "open", Path: next, Err: unix.ENOTDIR}
		}
	}
	if othersCanWrite(&st) {
		where := dir
		if filepath.Clean(abs) != cur {
			where = fmt.Sprintf("%s (which is %s)", dir, cur)
		}
		if !trustedOwner(st.Uid) {
			return nil, refuse("log directory %s belongs to %s (mode %04o), who can replace the files in it; pick a directory only pmdaemon's user can write",
				where, userName(st.Uid), st.Mode&0o7777)
		}
		return nil, refuse("log directory %s is writable by other users (mode %04o); pick a directory only pmdaemon's user can write",
			where, st.Mode&0o7777)
	}
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: cur, Err: err}
	}
	return &logDir{f: os.NewFile(uintptr(dfd), dir), fd: dfd, name: dir}, nil
}

// linkPlanter says who could have planted a link refused by trustedLink.
func linkPlanter(link *unix.Stat_t) string {
	if !trustedOwner(link.Uid) {
		return userName(link.Uid)
	}
	return "another user"
}

// readlinkFD reads the target of the symbolic link open (O_PATH|O_NOFOLLOW) as fd: no one can
// swap the link between the checks made on fd and this read.
func readlinkFD(fd int) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// lstat is fstatat(name) in d without following a link.
func (d *logDir) lstat(name string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: d.path(name), Err: err}
	}
	return &st, nil
}

// open opens name in d (what names it in errors: "log file"), never through a symbolic link,
// and only if it is a regular file (or the null device, see above). flag may hold O_CREAT but
// never O_TRUNC. A FIFO's open does not wait for a reader.
func (d *logDir) open(what, name string, flag int, perm uint32) (*os.File, error) {
	path := d.path(name)
	// Before: opening a device or a fifo can have effects of its own.
	st, err := d.lstat(name)
	switch {
	case err == nil && !regular(st) && !nullDevice(st):
		return nil, badFile(what, path, st.Mode)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	fd, err := unix.Openat(d.fd, name, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, perm)
	if err != nil {
		// Replaced since the check: say by what.
		if st, serr := d.lstat(name); serr == nil && !regular(st) && !nullDevice(st) {
			return nil, badFile(what, path, st.Mode)
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	// After: the file opened is the one checked, or at least a regular file too.
	var fst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if !regular(&fst) && !nullDevice(&fst) {
		unix.Close(fd)
		return nil, badFile(what, path, fst.Mode)
	}
	// The descriptor goes to apps as their stdout: leave it as a plain blocking one.
	unix.SetNonblock(fd, false)
	return os.NewFile(uintptr(fd), path), nil
}

// createTemp creates a new file in d named prefix followed by random characters, with
// O_CREAT|O_EXCL, so it never opens anything that was there before.
func (d *logDir) createTemp(prefix string, perm uint32) (*os.File, string, error) {
	for range 100 {
		var b [8]byte
		rand.Read(b[:])
		name := prefix + hex.EncodeToString(b[:])
		fd, err := unix.Openat(d.fd, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, "", &fs.PathError{Op: "create", Path: d.path(name), Err: err}
		}
		return os.NewFile(uintptr(fd), d.path(name)), name, nil
	}
	return nil, "", &fs.PathError{Op: "create", Path: d.path(prefix + "*"), Err: unix.EEXIST}
}

func (d *logDir) rename(from, to string) error {
	if err := unix.Renameat(d.fd, from, d.fd, to); err != nil {
		return &os.LinkError{Op: "rename", Old: d.path(from), New: d.path(to), Err: err}
	}
	return nil
}

// remove removes name from d (a link itself, never its target); a missing name is no error.
func (d *logDir) remove(name string) error {
	err := unix.Unlinkat(d.fd, name, 0)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return &fs.PathError{Op: "remove", Path: d.path(name), Err: err}
	}
	return nil
}

// names lists the entries of d.
func (d *logDir) names() ([]string, error) {
	if _, err := d.f.Seek(0, 0); err != nil {
		return nil, err
	}
	return d.f.Readdirnames(-1)
}

// rotatedIndexes lists the k of every base.k in d, in increasing order.
func (d *logDir) rotatedIndexes(base string) ([]int, error) {
	names, err := d.names()
	if err != nil {
		return nil, err
	}
	return rotatedOf(base, names), nil
}

// tempPrefix is how the rotation's temporary files of base start.
func tempPrefix(base string) string { return "." + base + ".rotating" }

// removeStaleTemps removes rotation files of base left by a rotation that did not finish (the
// daemon died in it). The caller holds the live file's lock, so no rotation of base is under way.
func (d *logDir) removeStaleTemps(base string) {
	names, err := d.names()
	if err != nil {
		return
	}
	for _, n := range names {
		if strings.HasPrefix(n, tempPrefix(base)) {
			d.remove(n)
		}
	}
}

// openLogDir is openDir for the directory of the log at path, returning its base name too.
func openLogDir(path string) (*logDir, string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" || base == "." || base == ".." {
		return nil, "", fmt.Errorf("log file %q: not a file name", path)
	}
	d, err := openDir(filepath.Clean(dir))
	return d, base, err
}

// OpenAppend opens the log file at path for an app to write its output into: for appending,
// created (mode 0640) if missing. It refuses a log directory others can write in, a symbolic
// link at path (or planted on the way to it), and anything but a regular file there, with an
// error naming the path and the reason.
func OpenAppend(path string) (*os.File, error) {
	d, base, err := openLogDir(path)
	if err != nil {
		if isRefusal(err) {
			return nil, err
		}
		return nil, fmt.Errorf("log file cannot be written: %s: %w", path, err)
	}
	defer d.close()
	f, err := d.open("log file", base, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND, 0o640)
	if err != nil {
		if isRefusal(err) {
			return nil, err
		}
		return nil, fmt.Errorf("log file cannot be written: %w", err)
	}
	return f, nil
}

// Prepare is what the daemon checks before it starts an app: the log at path opens as
// OpenAppend opens it (and is created if missing), and rotation can create its files beside it.
func Prepare(path string) error {
	f, err := OpenAppend(path)
	if err != nil {
		return err
	}
	f.Close()
	d, base, err := openLogDir(path)
	if err != nil {
		return err
	}
	defer d.close()
	tmp, name, err := d.createTemp("."+base+".check-", 0o600)
	if err != nil {
		return fmt.Errorf("log directory %s is not writable, so its logs could not be rotated: %v", d.name, errors.Unwrap(err))
	}
	tmp.Close()
	d.remove(name)
	return nil
}
