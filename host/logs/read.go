package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// readerLockWait bounds how long a reader waits for a rotation in progress; past it, it reads
// without the lock (a rotation takes milliseconds; only a stuck lock holder gets there).
const readerLockWait = 5 * time.Second

// Position is where a reader stopped in a log: Tail returns it, FollowFrom goes on from it. The
// zero Position means the beginning of whatever live file there is (or will be).
type Position struct {
	id    fileID   // the live file; zero: there was none
	off   int64    // the next byte to read in it
	data  int64    // where its data started (SEEK_DATA, after a punched head)
	known []fileID // path.1, path.2, ... at the time (up to the first missing)
}

// ReadTail returns the last n lines of the log at path, reading across its rotated files
// (path.1, path.2, ...) when the live file holds fewer, and skipping the hole a punch-hole
// rotation left at the head of the live file. A line split by a rotation comes back whole. An
// unterminated last line is returned as a line. If neither the live file nor any rotated file
// exists, the error satisfies errors.Is(err, fs.ErrNotExist).
func ReadTail(path string, n int) ([]string, error) {
	lines, _, err := Tail(path, n)
	return lines, err
}

// Tail is ReadTail that also returns the Position right after what it read, for FollowFrom to
// go on from without missing or repeating a byte.
func Tail(path string, n int) ([]string, Position, error) {
	if n < 0 {
		return nil, Position{}, fmt.Errorf("cannot read %d lines", n)
	}
	var pos Position
	var regions []region // newest first
	f, err := openLive(path, os.O_RDONLY)
	switch {
	case errors.Is(err, errNotRegular):
		return nil, Position{}, nil // a FIFO or a device: nothing stays in it to read
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, Position{}, err
	default:
		defer f.Close()
		if held, _ := flockWait(f, unix.LOCK_SH, readerLockWait); held {
			defer unlock(f)
		}
		fi, err := f.Stat()
		if err != nil {
			return nil, Position{}, err
		}
		size := fi.Size()
		data := dataStart(f, size)
		if pos.known, err = chain(path); err != nil {
			return nil, Position{}, err
		}
		pos.id, pos.off, pos.data = idOf(fi), size, data
		regions = append(regions, region{f, skipNULs(f, data, size), size})
	}
	missing := err // the live file's error, if any
	var chunks [][]byte
	newlines := 0
	need := func() bool { return n > 0 && newlines <= n }
	for k := 0; ; {
		if len(regions) == 0 {
			// The next rotated file, opened only when more lines are needed (or to tell whether
			// a missing live file has rotated ones).
			if !need() && missing == nil {
				break
			}
			k++
			rf, err := os.Open(rotatedName(path, k))
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if err != nil {
				return nil, Position{}, err
			}
			defer rf.Close()
			fi, err := rf.Stat()
			if err != nil {
				return nil, Position{}, err
			}
			missing = nil
			regions = append(regions, region{rf, 0, fi.Size()})
		}
		r := regions[0]
		regions = regions[1:]
		for hi := r.hi; hi > r.lo && need(); {
			lo := max(r.lo, hi-64<<10)
			chunk, err := readRange(r.f, lo, hi-lo)
			if err != nil {
				return nil, Position{}, err
			}
			if int64(len(chunk)) != hi-lo {
				return nil, Position{}, fmt.Errorf("%s shrank while being read", r.f.Name())
			}
			newlines += bytes.Count(chunk, []byte{'\n'})
			chunks = append(chunks, chunk)
			hi = lo
		}
	}
	if missing != nil {
		return nil, Position{}, missing
	}
	if n == 0 {
		return nil, pos, nil
	}
	var buf []byte
	for i := len(chunks) - 1; i >= 0; i-- {
		buf = append(buf, chunks[i]...)
	}
	text := bytes.TrimSuffix(buf, []byte{'\n'})
	if len(text) == 0 {
		return nil, pos, nil
	}
	all := bytes.Split(text, []byte{'\n'})
	if len(all) > n {
		all = all[len(all)-n:]
	}
	out := make([]string, len(all))
	for i, l := range all {
		out[i] = string(l)
	}
	return out, pos, nil
}

// region is [lo, hi) of f.
type region struct {
	f      *os.File
	lo, hi int64
}
