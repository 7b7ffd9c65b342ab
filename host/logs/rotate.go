// Package logs rotates, reads and follows the log files apps write.
//
// An app writes its stdout and stderr straight into its log files through O_APPEND descriptors
// the supervisor opened for it; nothing of pmdaemon sits in between, so the app keeps logging
// while the daemon is down, and the app can never be asked to reopen its output. Renaming the
// live file away is therefore useless (the app would keep writing into the renamed file), and
// copy-then-truncate loses what the app writes between the copy and the truncation. Rotation
// here instead keeps the live file (same inode, same descriptors) and cuts its head:
//
//  1. the head [start, n) of the live file is copied into a temporary file, which is fsynced;
//     n is the largest multiple of the filesystem block size below the file's size, start is
//     where its data begins (0, or the end of a punched hole, see below);
//  2. path.1 ... path.(Keep-1) are renamed to path.2 ... path.Keep (the old path.Keep is dropped,
//     as is any path.k with k > Keep) and the copy is renamed to path.1;
//  3. the first n bytes of the live file (the copied head, after any hole) are removed with
//     fallocate(FALLOC_FL_COLLAPSE_RANGE, 0, n): the file now starts with what was at offset n.
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
// A crash in the middle of a rotation loses nothing either: path.1 is synced and renamed into
// place before the head is removed, so at worst those lines are in both files.
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
// A path that does not exist, or is not a regular file, is not rotated and is no error. The
// errors name the file and what failed; an error wrapping ErrBusy is worth retrying.
func (r Rotator) Rotate(path string) (rotated bool, err error) {
	if err := r.Validate(); err != nil {
		return false, err
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot rotate log: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() < r.MaxSize {
		return false, nil
	}
	f, err := openLive(path, os.O_RDWR)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotRegular) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot rotate log: %w", err)
	}
	defer f.Close()
	if _, n, _, err := r.due(f); err != nil || n == 0 {
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
	if err := r.rotate(path, f, fi.Mode().Perm(), start, n); err != nil {
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
func (r Rotator) rotate(path string, f *os.File, perm fs.FileMode, start, n int64) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmpPath := filepath.Join(dir, "."+base+".rotating")
	tmp, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("cannot write in the log directory: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmpPath)
		}
	}()
	how, err := probeTrim(tmp, blockSize(f))
	if err != nil {
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	// io.Copy from a LimitedReader over an *os.File copies in the kernel (copy_file_range).
	copied, err := io.Copy(tmp, io.LimitReader(f, n-start))
	if err != nil {
		return fmt.Errorf("cannot copy the head of the log: %w", err)
	}
	if copied != n-start {
		return fmt.Errorf("cannot copy the head of the log: got %d bytes of %d", copied, n-start)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("cannot sync %s: %w", tmpPath, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	tmp = nil
	// The live file's pages written back now are pages the collapse need not write back while
	// it holds the inode lock (and an app's write waits).
	unix.Fdatasync(int(f.Fd()))

	if err := shift(path, r.Keep); err != nil {
		os.Remove(tmpPath)
		return err
	}
	if err := os.Rename(tmpPath, rotatedName(path, 1)); err != nil {
		os.Remove(tmpPath)
		return err
	}
	// Best effort: the renames are made durable before the head goes, but failing here and
	// trying again at the next tick would copy the same head twice.
	syncDir(dir)
	if _, err := trimHead(f, how, start, n); err != nil {
		return fmt.Errorf("copied its head to %s but could not remove it from the live file: %w: those lines now appear twice", rotatedName(path, 1), err)
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

// Check reports whether the log at path can be rotated: its directory is writable (rotation
// creates files next to it) and its filesystem can collapse a range or punch a hole. It writes
// and removes a small temporary file there. The daemon can call it when an app starts so that
// a log that cannot rotate is a clear error then, not a log that silently grows.
func Check(path string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".check-*")
	if err != nil {
		return fmt.Errorf("log %s cannot be rotated: cannot write in its directory: %w", path, err)
	}
	defer os.Remove(tmp.Name())
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

// shift renames path.k to path.(k+1) for k = keep-1 ... 1, dropping path.keep and any path.k
// with k > keep, so path.1 is free.
func shift(path string, keep int) error {
	ks, err := rotatedIndexes(path)
	if err != nil {
		return err
	}
	for i := len(ks) - 1; i >= 0; i-- {
		k := ks[i]
		switch {
		case k > keep:
			if err := os.Remove(rotatedName(path, k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		case k < keep:
			if err := os.Rename(rotatedName(path, k), rotatedName(path, k+1)); err != nil {
				return err
			}
		}
		// path.keep is replaced by the rename of path.(keep-1) (or, with keep 1, of the new copy).
	}
	return nil
}

// Flush empties the log at path: the live file is truncated to zero (writers holding it with
// O_APPEND go on at the new end) and its rotated files are removed. A path that does not exist
// is no error.
func Flush(path string) error {
	f, err := openLive(path, os.O_WRONLY)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotRegular):
	case err != nil:
		return fmt.Errorf("cannot flush log: %w", err)
	default:
		defer f.Close()
		held, busy := flockWait(f, unix.LOCK_EX, 5*lockWait)
		if busy {
			return fmt.Errorf("cannot flush log %s: %w", path, ErrBusy)
		}
		if held {
			defer unlock(f)
		}
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("cannot flush log: %w", err)
		}
	}
	rotated, err := Rotated(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot flush the rotated logs of %s: %w", path, err)
	}
	var errs []error
	for _, p := range rotated {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("cannot flush log: %w", err))
		}
	}
	dir, base := filepath.Split(path)
	os.Remove(filepath.Join(dir, "."+base+".rotating"))
	return errors.Join(errs...)
}
