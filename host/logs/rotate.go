// Package logs rotates, reads and follows the log files apps write.
//
// An app writes its stdout and stderr straight into its log files through O_APPEND descriptors
// the supervisor opened for it; nothing of pmdaemon sits in between, so the app keeps logging
// while the daemon is down, and the app can never be asked to reopen its output. Renaming the
// live file away is therefore useless (the app would keep writing into the renamed file), and
// copy-then-truncate loses what the app writes between the copy and the truncation. Rotation
// here instead keeps the live file (same inode, same descriptors) and cuts its head:
//
//  1. the head [start, n) of the live file is copied into a temporary file created under a new
//     name (O_EXCL); n is the largest multiple of the filesystem block size below the file's
//     size, start is where its data begins (0, or the end of a punched hole, see below);
//  2. path.1 ... path.(Keep-1) are renamed to path.2 ... path.Keep (the old path.Keep is dropped,
//     as is any path.k with k > Keep) and the copy is renamed to path.1, then fsynced with the
//     directory;
//  3. the first n bytes of the live file (the copied head, after any hole) are removed with
//     fallocate(FALLOC_FL_COLLAPSE_RANGE, 0, n): the file now starts with what was at offset n.
//
// A head much longer than MaxSize (the app wrote faster than the rotation was checked) is cut
// into several rotated files of about MaxSize each, so no rotated file exceeds 2 × MaxSize. How
// the files are opened (never through a symbolic link, only in a directory no other user can
// write in) is in safe.go; when the daemon checks is in watch.go.
//
// What the app appends while this runs lands after offset n and stays in the live file, so no
// byte is lost, and the app never waits for the rotation: nothing it does takes a lock of ours,
// and the kernel only serialises its write(2) with the fallocate call itself (the inode lock,
// held about 2 ms, 4.5 ms at worst measured, for a 10 MB collapse on ext4 here; the head is
// fdatasynced and dropped from the page cache beforehand so the call has little to do). Because n is a block boundary
// and not a line boundary, the line that straddles offset n is split: its head ends path.1 and
// its tail starts the live file. It is never lost and never doubled: concatenating path.Keep ...
// path.1 and the live file gives back the stream byte for byte, and ReadTail and Follow read
// them that way (so does cat).
//
// Filesystems without FALLOC_FL_COLLAPSE_RANGE (tmpfs, btrfs...) get
// FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE of [start, n) instead, in 256 KiB steps (0.2 ms
// each at worst on tmpfs): the blocks are freed but the logical size does not shrink, so the live
// file becomes a sparse file whose data starts at n (lseek SEEK_DATA; ls shows the logical size,
// du the real one). Rotation then triggers on the size of the data, not the logical size, and
// readers skip the hole. A filesystem with neither makes Rotate fail before it touches anything
// (it probes on its temporary file); it never falls back to copy-then-truncate.
//
// A crash in the middle of a rotation loses nothing either: path.1 is renamed into place and
// synced before the head is removed, so at worst those lines are in both files.
//
// Readers and the rotation coordinate with an advisory flock(2) on the live file: Rotate and
// Flush hold it exclusively, ReadTail and Follow take it shared for the instant of a snapshot,
// so a reader sees the files either before or after a rotation, never half-way. Apps do not
// take it, so it never makes an app wait (an app that flocks its own output would wait for a
// rotation, tens of milliseconds, and hold off rotations while it holds the lock: ErrBusy).
package logs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// DefaultMaxSize and DefaultKeep are the rotation limits when an app sets none.
	DefaultMaxSize = 10 << 20
	DefaultKeep    = 5
	// MinMaxSize is the smallest MaxSize: rotation moves whole filesystem blocks.
	MinMaxSize = 2 * 4096
)

// ErrBusy is returned (wrapped) by Rotate and Flush when another process held the live file's
// lock for too long; trying again later is right.
var ErrBusy = errors.New("log file is locked by another process")

// lockWait bounds how long Rotate and Flush wait for readers to let go of the lock.
const lockWait = time.Second

// Rotator rotates a log file once it holds MaxSize bytes, keeping Keep rotated files.
type Rotator struct {
	MaxSize int64
	Keep    int
}

// Validate reports a configuration Rotate refuses.
func (r Rotator) Validate() error {
	if r.MaxSize < MinMaxSize {
		return fmt.Errorf("log rotation: max size must be at least %d bytes, got %d", MinMaxSize, r.MaxSize)
	}
	if r.Keep < 1 {
		return fmt.Errorf("log rotation: the number of rotated files to keep must be at least 1, got %d", r.Keep)
	}
	return nil
}

// trim says how Rotate removes the copied head from the live file.
type trim int

const (
	trimCollapse trim = iota + 1 // FALLOC_FL_COLLAPSE_RANGE: the file shrinks
	trimPunch                    // FALLOC_FL_PUNCH_HOLE: the head becomes a hole
)

// Rotate rotates path if it holds at least MaxSize bytes of data, and reports whether it did.
// A path that does not exist, or is the null device, is not rotated and is no error. A log
// directory others can write in, a symbolic link at path or at one of its rotated names, or a
// file that is not a regular file there is an error, and nothing is touched (see safe.go). The
// errors name the file and what failed; an error wrapping ErrBusy is worth retrying.
func (r Rotator) Rotate(path string) (rotated bool, err error) {
	if err := r.Validate(); err != nil {
		return false, err
	}
	d, base, err := openLogDir(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot rotate log %s: %w", path, err)
	}
	defer d.close()
	return r.rotateIn(d, base, path)
}

// RotateEach rotates each of the paths in files as its Rotator says (see Rotate), and
// calls report with each path and what Rotate would have returned. The logs of one directory
// share one walk to it, checked as Rotate checks it: a round over 20,000 logs in a handful of
// directories costs a handful of walks and a stat per file, not a walk per file.
func RotateEach(files map[string]Rotator, report func(path string, rotated bool, err error)) {
	byDir := map[string][]string{}
	for path := range files {
		dir, base := filepath.Split(path)
		if base == "" || base == "." || base == ".." {
			report(path, false, fmt.Errorf("log file %q: not a file name", path))
			continue
		}
		byDir[dir] = append(byDir[dir], path)
	}
	for _, paths := range byDir {
		d, _, err := openLogDir(paths[0])
		for _, path := range paths {
			r := files[path]
			switch verr := r.Validate(); {
			case verr != nil:
				report(path, false, verr)
			case errors.Is(err, fs.ErrNotExist):
				report(path, false, nil)
			case err != nil:
				report(path, false, fmt.Errorf("cannot rotate log %s: %w", path, err))
			default:
				rotated, err := r.rotateIn(d, filepath.Base(path), path)
				report(path, rotated, err)
			}
		}
		if err == nil {
			d.close()
		}
	}
}

// rotateIn is Rotate with the log's directory open as d; base is the file's name in it.
func (r Rotator) rotateIn(d *logDir, base, path string) (rotated bool, err error) {
	st, err := d.lstat(base)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("cannot rotate log %s: %w", path, err)
	case nullDevice(st):
		return false, nil
	case !regular(st):
		return false, fmt.Errorf("cannot rotate log %s: %w", path, badFile("log file", path, st.Mode))
	case st.Size < r.MaxSize:
		return false, nil
	}
	f, err := d.open("log file", base, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot rotate log %s: %w", path, err)
	}
	defer f.Close()
	if _, n, fi, err := r.due(f); err != nil || n == 0 || !fi.Mode().IsRegular() {
		return false, err
	}
	held, busy := flockWait(f, unix.LOCK_EX, lockWait)
	if busy {
		return false, fmt.Errorf("cannot rotate log %s: %w", path, ErrBusy)
	}
	if held {
		defer unlock(f)
	}
	// Again under the lock: a Flush or another Rotate may have come first.
	start, n, fi, err := r.due(f)
	if err != nil || n == 0 {
		return false, err
	}
	// The rotated names are only renamed and removed, which never follows a link, but a link
	// there was planted by someone: say so instead of shuffling it along.
	ks, err := d.rotatedIndexes(base)
	if err != nil {
		return false, fmt.Errorf("cannot rotate log %s: %w", path, err)
	}
	for _, k := range ks {
		name := rotatedName(base, k)
		st, err := d.lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil && !regular(st) {
			err = badFile("rotated log", d.path(name), st.Mode)
		}
		if err != nil {
			return false, fmt.Errorf("cannot rotate log %s: %w", path, err)
		}
	}
	d.removeStaleTemps(base)
	if err := r.rotate(d, base, f, fi.Mode().Perm(), start, n); err != nil {
		return false, fmt.Errorf("cannot rotate log %s: %w", path, err)
	}
	return true, nil
}

// due returns the head [start, n) to rotate, or n == 0 when f is below MaxSize.
func (r Rotator) due(f *os.File) (start, n int64, fi os.FileInfo, err error) {
	fi, err = f.Stat()
	if err != nil {
		return 0, 0, nil, fmt.Errorf("cannot rotate log: %w", err)
	}
	size := fi.Size()
	if size < r.MaxSize {
		return 0, 0, fi, nil
	}
	start = dataStart(f, size)
	if size-start < r.MaxSize {
		return 0, 0, fi, nil
	}
	// n < size: a collapse may not reach the end of the file.
	bs := blockSize(f)
	n = (size - 1) / bs * bs
	if n <= start {
		return 0, 0, fi, nil
	}
	return start, n, fi, nil
}

// rotate does the work under the lock; it changes nothing before it knows it can trim.
//
// The head [start, n) normally becomes path.1. When the log grew well past MaxSize before this
// rotation came (an app writing faster than the daemon noticed), the head is cut into pieces of
// MaxSize, the last one taking the rest (so under 2 × MaxSize), which become path.m ... path.1,
// oldest first: a rotated file stays under 2 × MaxSize whatever the write rate. Pieces that
// Keep would drop at once are not copied at all.
func (r Rotator) rotate(d *logDir, base string, f *os.File, perm fs.FileMode, start, n int64) (err error) {
	bs := blockSize(f)
	piece := max(r.MaxSize/bs, 1) * bs
	count := max((n-start)/piece, 1)
	cut := func(i int64) int64 {
		if i >= count {
			return n
		}
		return start + i*piece
	}
	first := max(count-int64(r.Keep), 0)
	// The live file's pages written back now are pages the collapse need not write back while
	// it holds the inode lock (and an app's write waits). It is done while the copies are
	// made: both wait for the disk, and together take about the time of the longer.
	synced := make(chan struct{})
	fd := int(f.Fd())
	go func() {
		unix.Fdatasync(fd)
		close(synced)
	}()
	defer func() { <-synced }()

	type copied struct {
		f    *os.File
		name string // its temporary name until renamed into place, then ""
	}
	var copies []copied // oldest piece first
	defer func() {
		for _, c := range copies {
			c.f.Close()
			if err != nil && c.name != "" {
				d.remove(c.name)
			}
		}
	}()
	var how trim
	for i := first; i < count; i++ {
		tmp, name, err := d.createTemp(tempPrefix(base)+"-", uint32(perm))
		if err != nil {
			return fmt.Errorf("cannot write in the log directory: %w", err)
		}
		copies = append(copies, copied{tmp, name})
		if i == first {
			if how, err = probeTrim(tmp, bs); err != nil {
				return err
			}
		}
		if err := copyPiece(tmp, f, perm, cut(i), cut(i+1)); err != nil {
			return err
		}
	}
	if err := shift(d, base, r.Keep, len(copies)); err != nil {
		return err
	}
	for j := range copies {
		if err := d.rename(copies[j].name, rotatedName(base, len(copies)-j)); err != nil {
			return err
		}
		copies[j].name = ""
	}
	// The copies are made durable, with the renames, before the head goes: a crash at any point
	// leaves those lines in the rotated files, the live file, or both. (Syncing them after the
	// renames rather than before lets the filesystem commit both in one go.)
	for j, c := range copies {
		if err := c.f.Sync(); err != nil {
			return fmt.Errorf("cannot sync %s: %w", d.path(rotatedName(base, len(copies)-j)), err)
		}
	}
	syncDir(d.f)
	<-synced
	if _, err := trimHead(f, how, start, n); err != nil {
		return fmt.Errorf("copied its head to %s but could not remove it from the live file: %w: those lines now appear twice", d.path(rotatedName(base, 1)), err)
	}
	return nil
}

// copyPiece copies [lo, hi) of f into tmp.
func copyPiece(tmp, f *os.File, perm fs.FileMode, lo, hi int64) error {
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Seek(lo, io.SeekStart); err != nil {
		return err
	}
	// io.Copy from a LimitedReader over an *os.File copies in the kernel (copy_file_range).
	copied, err := io.Copy(tmp, io.LimitReader(f, hi-lo))
	if err != nil {
		return fmt.Errorf("cannot copy the head of the log: %w", err)
	}
	if copied != hi-lo {
		return fmt.Errorf("cannot copy the head of the log: got %d bytes of %d", copied, hi-lo)
	}
	return nil
}

// punchStep is how much one punch-hole call frees: each call holds the inode lock (and may make
// an app's write wait) for its duration, so it is done in steps of a fraction of a millisecond.
const punchStep = 256 << 10

// trimHead removes [start, n) from the head of f: the whole [0, n) is collapsed away, or
// [start, n) is punched out. It returns the longest fallocate call it made.
func trimHead(f *os.File, how trim, start, n int64) (worst time.Duration, err error) {
	fd := int(f.Fd())
	// Pages of the head dropped now, without any lock, are pages the collapse does not drop while
	// it holds the inode lock.
	unix.Fadvise(fd, 0, n, unix.FADV_DONTNEED)
	timed := func(mode uint32, off, length int64) error {
		t0 := time.Now()
		err := unix.Fallocate(fd, mode, off, length)
		worst = max(worst, time.Since(t0))
		return err
	}
	if how == trimCollapse {
		cerr := timed(unix.FALLOC_FL_COLLAPSE_RANGE, 0, n)
		if cerr == nil {
			return worst, nil
		}
		// This file refuses what the filesystem accepted (an ext4 file without extents, ...):
		// punching frees the space all the same.
		w, perr := trimHead(f, trimPunch, start, n)
		worst = max(worst, w)
		if perr != nil {
			return worst, fmt.Errorf("collapse: %v; punch hole: %v", cerr, perr)
		}
		return worst, nil
	}
	step := max(punchStep, blockSize(f)) / blockSize(f) * blockSize(f)
	for off := start; off < n; off += step {
		if err := timed(unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, min(step, n-off)); err != nil {
			return worst, fmt.Errorf("punch hole: %w", err)
		}
	}
	return worst, nil
}

// Check reports whether the log at path can be rotated: its directory passes the checks of
// OpenAppend and is writable (rotation creates files next to it) and its filesystem can collapse
// a range or punch a hole. It writes and removes a small temporary file there.
func Check(path string) error {
	d, base, err := openLogDir(path)
	if err != nil {
		return fmt.Errorf("log %s cannot be rotated: %w", path, err)
	}
	defer d.close()
	tmp, name, err := d.createTemp("."+base+".check-", 0o600)
	if err != nil {
		return fmt.Errorf("log %s cannot be rotated: cannot write in its directory: %w", path, err)
	}
	defer d.remove(name)
	defer tmp.Close()
	if _, err := probeTrim(tmp, blockSize(tmp)); err != nil {
		return fmt.Errorf("log %s cannot be rotated: %w", path, err)
	}
	return nil
}

// probeTrim finds out, on the rotation's own temporary file (same filesystem as the log),
// whether the filesystem collapses ranges or at least punches holes, and leaves tmp empty.
func probeTrim(tmp *os.File, bs int64) (trim, error) {
	if _, err := tmp.WriteAt(make([]byte, 2*bs), 0); err != nil {
		return 0, fmt.Errorf("cannot write %s: %w", tmp.Name(), err)
	}
	fd := int(tmp.Fd())
	how := trimCollapse
	cerr := unix.Fallocate(fd, unix.FALLOC_FL_COLLAPSE_RANGE, 0, bs)
	if cerr != nil {
		how = trimPunch
		if perr := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, bs); perr != nil {
			return 0, fmt.Errorf("the filesystem supports neither collapsing a range (%v) nor punching a hole (%v) in a file, so the log cannot be rotated without losing lines; put the logs on ext4, XFS, btrfs or tmpfs", cerr, perr)
		}
	}
	if err := tmp.Truncate(0); err != nil {
		return 0, err
	}
	return how, nil
}

// shift renames base.k to base.(k+by) in d for every rotated file, from the highest k down,
// removing those that would go past keep, so base.1 ... base.by are free.
func shift(d *logDir, base string, keep, by int) error {
	ks, err := d.rotatedIndexes(base)
	if err != nil {
		return err
	}
	for i := len(ks) - 1; i >= 0; i-- {
		k := ks[i]
		if k+by > keep {
			if err := d.remove(rotatedName(base, k)); err != nil {
				return err
			}
			continue
		}
		if err := d.rename(rotatedName(base, k), rotatedName(base, k+by)); err != nil {
			return err
		}
	}
	return nil
}

// Flush empties the log at path: the live file is truncated to zero (writers holding it with
// O_APPEND go on at the new end) and its rotated files are removed. A path that does not exist
// is no error. It refuses, touching nothing, what Rotate refuses: a log directory others can
// write in, a symbolic link at path, a file there that is not a regular file (the null device
// aside). A rotated name that is a symbolic link is removed like the others (the link, not
// what it points to).
func Flush(path string) error {
	d, base, err := openLogDir(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot flush log %s: %w", path, err)
	}
	defer d.close()
	f, err := d.open("log file", base, os.O_WRONLY, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("cannot flush log %s: %w", path, err)
	default:
		defer f.Close()
		held, busy := flockWait(f, unix.LOCK_EX, 5*lockWait)
		if busy {
			return fmt.Errorf("cannot flush log %s: %w", path, ErrBusy)
		}
		if held {
			defer unlock(f)
		}
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if err := f.Truncate(0); err != nil {
				return fmt.Errorf("cannot flush log %s: %w", path, err)
			}
		}
	}
	ks, err := d.rotatedIndexes(base)
	if err != nil {
		return fmt.Errorf("cannot flush the rotated logs of %s: %w", path, err)
	}
	var errs []error
	for _, k := range ks {
		if err := d.remove(rotatedName(base, k)); err != nil {
			errs = append(errs, fmt.Errorf("cannot flush log: %w", err))
		}
	}
	d.removeStaleTemps(base)
	return errors.Join(errs...)
}
