package logs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// followChunk bounds what one poll reads of the live file while holding the lock; a follower
// behind by more reads again at once.
const followChunk = 1 << 20

// markLen is how many of the last bytes read a follower keeps to notice that the file was
// truncated and grew back past its offset between two polls.
const markLen = 64

// Follow writes to w the bytes appended to the log at path, polling every poll, until ctx ends
// (then it returns nil) or writing to w fails. With fromEnd it starts at the current end of the
// live file, else at its beginning; a log that does not exist yet is followed from its
// beginning once it appears.
//
// It follows across rotations without losing or repeating a byte: when path.1 changed since
// the last poll, the head of the live file went into the new rotated file(s), and the part the
// follower had not read yet is read from there before it goes on in the live file where it
// stopped (shifted by the bytes collapsed away). When the live file was truncated (Flush), it
// starts again at offset 0; when path is a new file (recreated), it follows that one from its
// beginning. Limits of polling: a follower that falls more than Keep rotations behind between
// two polls (its writer blocked) has lost what was dropped and prints what is left, once; and a
// file truncated and grown back past the follower's offset between two polls is noticed by the
// last bytes it read having changed (what was written before the truncation and not yet read is
// gone with it, as the flush meant).
func Follow(ctx context.Context, path string, fromEnd bool, w io.Writer, poll time.Duration) error {
	var pos Position
	if fromEnd {
		_, p, err := Tail(path, 0)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		pos = p
	}
	return FollowFrom(ctx, path, pos, w, poll)
}

// FollowFrom is Follow starting at pos, as returned by Tail.
func FollowFrom(ctx context.Context, path string, pos Position, w io.Writer, poll time.Duration) error {
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	fl := &follower{path: path, start: pos}
	defer fl.close()
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		more, err := fl.step(w)
		if err != nil {
			return err
		}
		if more {
			continue
		}
		t.Reset(poll)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type follower struct {
	path  string
	start Position // where to start in the file with start.id, once

	f     *os.File
	id    fileID
	fresh bool     // f was just opened: start at its beginning
	off   int64    // next byte of f to read
	data  int64    // where f's data started at the last poll
	known []fileID // path.1, path.2, ... at the last poll (up to the first missing one)
	mark  []byte   // the last bytes read, ending at off

	busySince time.Time
}

func (fl *follower) close() {
	if fl.f != nil {
		fl.f.Close()
	}
}

// step reads what is new (at most followChunk of the live file), writes it to w, and reports
// whether more is waiting.
func (fl *follower) step(w io.Writer) (more bool, err error) {
	fi, err := os.Stat(fl.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // removed: wait for it to come back
	}
	if err != nil {
		return false, err
	}
	if fl.f == nil || idOf(fi) != fl.id {
		f, err := openLive(fl.path, os.O_RDONLY)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotRegular) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		ofi, err := f.Stat()
		if err != nil {
			f.Close()
			return false, err
		}
		fl.close()
		fl.f, fl.id, fl.fresh = f, idOf(ofi), true
		if !fl.start.id.none() && fl.start.id == fl.id {
			fl.fresh = false
			fl.off, fl.data, fl.known = fl.start.off, fl.start.data, fl.start.known
		}
		fl.start = Position{}
		fl.mark = nil
	}

	held, busy := flockWait(fl.f, unix.LOCK_SH, 0)
	if busy {
		// A rotation or a flush is under way: come back at the next poll, unless the lock
		// looks stuck.
		if fl.busySince.IsZero() {
			fl.busySince = time.Now()
		}
		if time.Since(fl.busySince) < readerLockWait {
			return false, nil
		}
	}
	fl.busySince = time.Time{}
	segs, buf, more, err := fl.snapshot()
	if held {
		unlock(fl.f)
	}
	defer func() {
		for _, s := range segs {
			s.f.Close()
		}
	}()
	if err != nil {
		return false, err
	}
	for _, s := range segs {
		if _, err := io.Copy(w, io.NewSectionReader(s.f, s.lo, s.hi-s.lo)); err != nil {
			return false, err
		}
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return false, err
		}
	}
	return more, nil
}

// snapshot works out, under the lock, what to print: rotated segments (open files the caller
// reads after the lock is released; renames do not affect them) then bytes of the live file.
func (fl *follower) snapshot() (segs []region, buf []byte, more bool, err error) {
	fi, err := fl.f.Stat()
	if err != nil {
		return nil, nil, false, err
	}
	size := fi.Size()
	d := dataStart(fl.f, size)
	cur1, err := statRotID(rotatedName(fl.path, 1))
	if err != nil {
		return nil, nil, false, err
	}
	var old1 fileID
	if len(fl.known) > 0 {
		old1 = fl.known[0]
	}
	reset := func() {
		fl.off, fl.data, fl.mark = skipNULs(fl.f, d, size), d, nil
	}
	switch {
	case fl.fresh:
		fl.fresh = false
		reset()
		if fl.known, err = chain(fl.path); err != nil {
			return nil, nil, false, err
		}
	case cur1 != old1 && cur1.none():
		// The rotated files are gone: a Flush (which truncates too) or removed by hand.
		fl.known = nil
		if size < fl.off || !fl.markOK() {
			reset()
		}
	case cur1 != old1:
		if segs, err = fl.rotated(d, size); err != nil {
			return nil, nil, false, err
		}
	case size < fl.off || !fl.markOK():
		reset() // truncated
	}
	if fl.off < d {
		fl.off = skipNULs(fl.f, d, size) // inside a punched hole
	}
	fl.data = d
	if fl.off < size {
		if buf, err = readRange(fl.f, fl.off, min(size-fl.off, followChunk)); err != nil {
			for _, s := range segs {
				s.f.Close()
			}
			return nil, nil, false, err
		}
		fl.off += int64(len(buf))
		fl.mark = append(fl.mark, buf[max(0, len(buf)-markLen):]...)
		fl.mark = fl.mark[max(0, len(fl.mark)-markLen):]
	}
	return segs, buf, fl.off < size, nil
}

// markOK reports whether the bytes before fl.off are still the last ones read.
func (fl *follower) markOK() bool {
	if len(fl.mark) == 0 {
		return true
	}
	lo := fl.off - int64(len(fl.mark))
	if lo < 0 {
		return false
	}
	got, err := readRange(fl.f, lo, int64(len(fl.mark)))
	return err == nil && bytes.Equal(got, fl.mark)
}

// rotated handles one or more rotations since the last poll: the new rotated files are path.1 up
// to the first one known before, and hold, oldest first, the bytes that were at
// [fl.data, fl.data+R) of the live file. It returns the part of them not read yet and moves
// fl.off to the same byte in the live file as it is now.
func (fl *follower) rotated(d, size int64) ([]region, error) {
	var files []*os.File // path.1, path.2, ... up to the first missing
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	var ids []fileID
	var sizes []int64
	for k := 1; ; k++ {
		f, err := os.Open(rotatedName(fl.path, k))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		ids, sizes = append(ids, rotID(fi)), append(sizes, fi.Size())
	}
	// The new files are those before the first known one.
	newN := len(ids)
	for i, id := range ids {
		if slices.Contains(fl.known, id) {
			newN = i
			break
		}
	}
	lost := len(fl.known) > 0 && newN == len(ids) // every file seen before was dropped
	fl.known = ids
	var r int64
	for _, s := range sizes[:newN] {
		r += s
	}
	punch := d > fl.data // the head became a hole: offsets in the live file did not move
	var from, end int64  // where the new files' bytes were in the live file (old offsets)
	switch {
	case punch:
		// The new files end where the data starts now, whatever happened in between.
		from, end = d-r, d
	case !lost && fl.markFound(files[:newN], sizes[:newN], fl.off-fl.data, r):
		// (The check catches rotations the follower could not see: it knew of no rotated
		// file, and more than Keep happened.)
		from, end = fl.data, fl.data+r
	default:
		// Collapsed more than Keep times: where the bytes left were is unknown; print them all.
		lost = true
		from, end = fl.off, fl.off+r
	}
	var segs []region
	skip := max(0, fl.off-from)
	for i := newN - 1; i >= 0; i-- { // oldest first
		if skip >= sizes[i] {
			skip -= sizes[i]
			continue
		}
		segs = append(segs, region{files[i], skip, sizes[i]})
		files[i] = nil // the caller closes it
		skip = 0
	}
	if fl.off < end {
		fl.off = end
	}
	if !punch {
		fl.off -= end // the collapse removed [0, end)
		if lost {
			fl.off = 0
		}
	}
	fl.mark = nil
	if fl.off > size {
		fl.off = 0 // flushed since, too
	}
	return segs, nil
}

// markFound reports whether fl.mark ends at offset c of the stream made of files (newest first,
// with these sizes, r bytes in all) followed by the live file as it is after a collapse. A mark
// that straddles the two is not checked.
func (fl *follower) markFound(files []*os.File, sizes []int64, c, r int64) bool {
	n := int64(len(fl.mark))
	lo := c - n
	switch {
	case n == 0 || lo < 0:
		return true
	case lo >= r: // in the live file
		got, err := readRange(fl.f, lo-r, n)
		return err == nil && bytes.Equal(got, fl.mark)
	case c > r:
		return true
	}
	var got []byte
	for i := len(files) - 1; i >= 0 && int64(len(got)) < n; i-- { // oldest first
		if lo >= sizes[i] {
			lo -= sizes[i]
			continue
		}
		b, err := readRange(files[i], lo, min(sizes[i]-lo, n-int64(len(got))))
		if err != nil {
			return false
		}
		got = append(got, b...)
		lo = 0
	}
	return bytes.Equal(got, fl.mark)
}

// chain returns the identities of path.1, path.2, ... up to the first missing.
func chain(path string) ([]fileID, error) {
	var ids []fileID
	for k := 1; ; k++ {
		id, err := statRotID(rotatedName(path, k))
		if err != nil {
			return nil, err
		}
		if id.none() {
			return ids, nil
		}
		ids = append(ids, id)
	}
}
