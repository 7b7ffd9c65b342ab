package logs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fileID is a file's identity; the zero value means "no file". A rotated file never changes
// once renamed into place, so its size and modification time join its identity: an inode
// number reused by a later rotation does not pass for the file seen before.
type fileID struct {
	dev, ino    uint64
	size, mtime int64
}

func (id fileID) none() bool { return id == fileID{} }

// idOf is the identity of a live file (which grows).
func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
	}
	return fileID{}
}

// rotID is the identity of a rotated file.
func rotID(fi os.FileInfo) fileID {
	id := idOf(fi)
	id.size, id.mtime = fi.Size(), fi.ModTime().UnixNano()
	return id
}

// statRotID is the identity of the rotated file at path, zero when there is none.
func statRotID(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fileID{}, nil
	}
	if err != nil {
		return fileID{}, err
	}
	return rotID(fi), nil
}

// errNotRegular: the log path is a FIFO, a device, a directory...: nothing to rotate or read.
var errNotRegular = errors.New("not a regular file")

// openLive opens the live file at path for a reader, refusing anything but a regular file (the
// opens for writing are in safe.go). O_NONBLOCK keeps
// the open of a FIFO (an out_file may be one) from waiting for the other end.
func openLive(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENXIO) {
		return nil, errNotRegular // a FIFO opened for writing with no reader, or a device
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, errNotRegular
	}
	return f, nil
}

// rotatedName is path.k.
func rotatedName(path string, k int) string { return path + "." + strconv.Itoa(k) }

// rotatedIndexes lists the k of every path.k in path's directory (k >= 1 written without
// leading zeros), in increasing order. Other names, however close, are left alone.
func rotatedIndexes(path string) ([]int, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	names, err := readDirNames(dir)
	if err != nil {
		return nil, err
	}
	return rotatedOf(base, names), nil
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// rotatedOf picks the k of every base.k among names, in increasing order.
func rotatedOf(base string, names []string) []int {
	var ks []int
	for _, name := range names {
		suffix, ok := strings.CutPrefix(name, base+".")
		if !ok {
			continue
		}
		k, err := strconv.Atoi(suffix)
		if err != nil || k < 1 || strconv.Itoa(k) != suffix {
			continue
		}
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

// Rotated lists the rotated files of path that exist (path.1, path.2, ...), newest first.
func Rotated(path string) ([]string, error) {
	ks, err := rotatedIndexes(path)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = rotatedName(path, k)
	}
	return out, nil
}

// dataStart is the offset of the first byte of data in f (after a leading hole the punch-hole
// rotation left), or size when the file holds none.
func dataStart(f *os.File, size int64) int64 {
	off, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO):
		return size
	case err != nil:
		return 0 // no SEEK_DATA here: the file is all data
	case off > size:
		return size
	}
	return off
}

// skipNULs returns the offset of the first non-NUL byte at or after off (at most size): the
// punched head of a file on a filesystem with a coarser hole granularity reads as zeros.
func skipNULs(f *os.File, off, size int64) int64 {
	buf := make([]byte, 64<<10)
	for off < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		for i := 0; i < n; i++ {
			if buf[i] != 0 {
				return off + int64(i)
			}
		}
		off += int64(n)
		if err != nil || n == 0 {
			break
		}
	}
	return off
}

// flockWait takes flock(how) on f, retrying for up to wait. It reports whether the lock is held;
// a filesystem without flock counts as held (there is nothing to wait for).
func flockWait(f *os.File, how int, wait time.Duration) (held bool, busy bool) {
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, false
		case errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EINTR):
		default:
			return false, false
		}
		if !time.Now().Before(deadline) {
			return false, true
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func unlock(f *os.File) { unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// blockSize is the filesystem block size of f, the unit FALLOC_FL_COLLAPSE_RANGE moves.
func blockSize(f *os.File) int64 {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err == nil && st.Bsize > 0 {
		return st.Bsize
	}
	if fi, err := f.Stat(); err == nil {
		if s, ok := fi.Sys().(*syscall.Stat_t); ok && s.Blksize > 0 {
			return int64(s.Blksize)
		}
	}
	return 4096
}

// syncDir makes the renames in the directory d durable.
func syncDir(d *os.File) error {
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// readRange reads [off, off+n) of f.
func readRange(f *os.File, off, n int64) ([]byte, error) {
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, off)
	if err == io.EOF {
		err = nil
	}
	return buf[:got], err
}
