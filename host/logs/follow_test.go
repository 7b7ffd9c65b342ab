package logs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// followLine is line i of the follow tests: lengths vary, and every 997th line is longer than
// a filesystem block, so rotations split lines in every way.
func followLine(i int) string {
	n := i % 53
	if i%997 == 0 {
		n = 5000
	}
	return fmt.Sprintf("%d %s\n", i, strings.Repeat(string(rune('a'+i%26)), n))
}

// TestFollowAcrossRotations follows a log while a writer appends to it and a rotator rotates
// it as fast as it can: what Follow prints is exactly what was written.
func TestFollowAcrossRotations(t *testing.T) {
	const lines, batch = 60_000, 1500
	for _, fsys := range filesystems {
		t.Run(fsys.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(fsys.dir(t), "app-0-out.log")
			app := openAppend(t, path)
			var want bytes.Buffer
			for i := range lines {
				want.WriteString(followLine(i))
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out syncBuffer
			followed := make(chan error, 1)
			go func() { followed <- Follow(ctx, path, false, &out, time.Millisecond) }()
			// Follow starts at the beginning of the live file: let it see line 0 before
			// anything rotates.
			app.WriteString(followLine(0))
			eventually(t, 10*time.Second, "the follower to start", func() bool { return out.Len() > 0 })

			// The writer waits for a rotation after each batch (more than MaxSize), so there are
			// many rotations, and each happens while the next batch is being written.
			rotated := make(chan struct{}, 1)
			writing := make(chan struct{})
			go func() {
				defer close(writing)
				for i := 1; i < lines; i++ {
					if i%batch == 0 {
						select {
						case <-rotated:
						case <-time.After(10 * time.Second):
							t.Error("no rotation for 10s")
							return
						}
					}
					if _, err := app.WriteString(followLine(i)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			r := Rotator{MaxSize: 32 << 10, Keep: 100_000}
			rotations := 0
			for done := false; !done; {
				select {
				case <-writing:
					done = true
				default:
				}
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
			catchUp(30*time.Second, func() bool { return out.Len() >= want.Len() })
			cancel()
			if err := <-followed; err != nil {
				t.Fatalf("Follow: %v", err)
			}
			t.Logf("%d rotations, %d bytes followed", rotations, out.Len())
			if rotations < lines/batch-1 {
				t.Errorf("only %d rotations", rotations)
			}
			if got := trimOf(t, path); got != fsys.want {
				t.Errorf("trimmed by %v, want %v", got, fsys.want)
			}
			compareStreams(t, out.Bytes(), want.Bytes())
			compareStreams(t, stream(t, path), want.Bytes())
		})
	}
}

// TestTailThenFollow is what `pmdaemon logs --follow` does: Tail, then FollowFrom its Position,
// with the log being written and rotated all along. Together they give every byte once.
func TestTailThenFollow(t *testing.T) {
	const lines = 30_000
	for _, fsys := range filesystems {
		t.Run(fsys.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(fsys.dir(t), "app-0-out.log")
			app := openAppend(t, path)
			var want bytes.Buffer
			for i := range lines {
				want.WriteString(followLine(i))
			}
			var wg sync.WaitGroup
			var written atomic.Int64
			tailed := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range lines {
					if i == lines/2 {
						<-tailed // half before Tail, half after
					}
					if _, err := app.WriteString(followLine(i)); err != nil {
						t.Error(err)
						return
					}
					written.Add(1)
				}
			}()
			stop := make(chan struct{})
			rotations := 0
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := Rotator{MaxSize: 16 << 10, Keep: 100_000}
				for {
					select {
					case <-stop:
						return
					default:
					}
					if ok, err := r.Rotate(path); err != nil {
						t.Error(err)
						return
					} else if ok {
						rotations++
					}
				}
			}()
			eventually(t, 10*time.Second, "some lines", func() bool { return written.Load() > lines/3 })
			tail, pos, err := Tail(path, lines+1)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out syncBuffer
			followed := make(chan error, 1)
			go func() { followed <- FollowFrom(ctx, path, pos, &out, time.Millisecond) }()
			close(tailed)
			eventually(t, 10*time.Second, "the writer to finish", func() bool { return written.Load() == lines })
			close(stop)
			wg.Wait()
			// Tail's last line may have been cut at the end of the file, and then has no newline.
			joined := strings.Join(tail, "\n")
			got := func(sep string) string { return joined + sep + string(out.Bytes()) }
			catchUp(30*time.Second, func() bool {
				return got("\n") == want.String() || got("") == want.String() || len(got("")) > want.Len()
			})
			cancel()
			if err := <-followed; err != nil {
				t.Fatal(err)
			}
			t.Logf("%d rotations; Tail gave %d lines, Follow %d bytes", rotations, len(tail), out.Len())
			if got("") != want.String() {
				compareStreams(t, []byte(got("\n")), want.Bytes())
			}
		})
	}
}

// catchUp waits for a follower until cond holds or timeout passes; the comparison that follows
// tells what went wrong.
func catchUp(timeout time.Duration, cond func() bool) {
	for deadline := time.Now().Add(timeout); !cond() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

func compareStreams(t *testing.T, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < min(len(got), len(want)) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-40)
	t.Fatalf("streams differ at byte %d (got %d bytes, want %d):\n got ...%q\nwant ...%q",
		i, len(got), len(want), got[lo:min(len(got), i+40)], want[lo:min(len(want), i+40)])
}

// stepper drives a follower poll by poll, so the tests choose what happens between two polls.
type stepper struct {
	t   *testing.T
	fl  *follower
	out bytes.Buffer
}

func newStepper(t *testing.T, path string, pos Position) *stepper {
	s := &stepper{t: t, fl: &follower{path: path, start: pos}}
	t.Cleanup(s.fl.close)
	return s
}

// poll reads everything new and returns it.
func (s *stepper) poll() string {
	s.t.Helper()
	s.out.Reset()
	for {
		more, err := s.fl.step(&s.out)
		if err != nil {
			s.t.Fatal(err)
		}
		if !more {
			return s.out.String()
		}
	}
}

func (s *stepper) expect(want string) {
	s.t.Helper()
	if got := s.poll(); got != want {
		s.t.Fatalf("poll printed %d bytes %.80q, want %d bytes %.80q", len(got), got, len(want), want)
	}
}

// TestFollowBetweenPolls covers what may happen to a log between two polls of a follower.
func TestFollowBetweenPolls(t *testing.T) {
	block := strings.Repeat("x", 4095) + "\n"
	for _, fsys := range filesystems {
		t.Run(fsys.name, func(t *testing.T) {
			t.Run("several rotations, follower behind", func(t *testing.T) {
				path := filepath.Join(fsys.dir(t), "a.log")
				appendString(t, path, "first\n")
				s := newStepper(t, path, Position{})
				s.expect("first\n")
				r := Rotator{MaxSize: MinMaxSize, Keep: 10}
				var want strings.Builder
				for i := range 4 {
					chunk := fmt.Sprintf("round %d\n", i) + strings.Repeat(block, 3)
					appendString(t, path, chunk)
					want.WriteString(chunk)
					mustRotate(t, r, path)
				}
				appendString(t, path, "tail\n")
				want.WriteString("tail\n")
				s.expect(want.String())
				appendString(t, path, "more\n")
				s.expect("more\n")
			})
			t.Run("rotation after the follower read past the cut", func(t *testing.T) {
				path := filepath.Join(fsys.dir(t), "a.log")
				appendString(t, path, strings.Repeat(block, 3))
				s := newStepper(t, path, Position{})
				s.expect(strings.Repeat(block, 3))
				mustRotate(t, Rotator{MaxSize: MinMaxSize, Keep: 2}, path)
				s.expect("")
				appendString(t, path, "after\n")
				s.expect("after\n")
			})
			for _, known := range []bool{false, true} {
				t.Run(fmt.Sprintf("more rotations than kept, rotated files known %v", known), func(t *testing.T) {
					path := filepath.Join(fsys.dir(t), "a.log")
					r := Rotator{MaxSize: MinMaxSize, Keep: 2}
					if known {
						appendString(t, path, strings.Repeat(block, 3))
						mustRotate(t, r, path)
					}
					appendString(t, path, "first\n")
					s := newStepper(t, path, Position{})
					s.poll()
					for i := range 5 {
						appendString(t, path, fmt.Sprintf("round %d\n", i)+strings.Repeat(block, 3))
						mustRotate(t, r, path)
					}
					// The oldest rounds are gone; all that is left comes, once.
					s.expect(string(stream(t, path)))
					appendString(t, path, "after\n")
					s.expect("after\n")
				})
			}
			t.Run("flush", func(t *testing.T) {
				path := filepath.Join(fsys.dir(t), "a.log")
				appendString(t, path, strings.Repeat(block, 3))
				mustRotate(t, Rotator{MaxSize: MinMaxSize, Keep: 2}, path)
				s := newStepper(t, path, Position{})
				s.poll()
				if err := Flush(path); err != nil {
					t.Fatal(err)
				}
				appendString(t, path, "new\n")
				s.expect("new\n")
			})
			t.Run("truncated and grown past the offset", func(t *testing.T) {
				path := filepath.Join(fsys.dir(t), "a.log")
				appendString(t, path, "one\ntwo\n")
				s := newStepper(t, path, Position{})
				s.expect("one\ntwo\n")
				if err := Flush(path); err != nil {
					t.Fatal(err)
				}
				appendString(t, path, "three\nfour\nfive\n")
				s.expect("three\nfour\nfive\n")
			})
			t.Run("recreated", func(t *testing.T) {
				path := filepath.Join(fsys.dir(t), "a.log")
				appendString(t, path, "old file\n")
				s := newStepper(t, path, Position{})
				s.expect("old file\n")
				os.Remove(path)
				s.expect("")
				writeFile(t, path, "new file, longer than the old one\n")
				s.expect("new file, longer than the old one\n")
			})
			t.Run("appears later", func(t *testing.T) {
				path := filepath.Join(fsys.dir(t), "a.log")
				s := newStepper(t, path, Position{})
				s.expect("")
				appendString(t, path, "hello\n")
				s.expect("hello\n")
			})
			t.Run("from the end", func(t *testing.T) {
				path := filepath.Join(fsys.dir(t), "a.log")
				appendString(t, path, "before\n")
				_, pos, err := Tail(path, 0)
				if err != nil {
					t.Fatal(err)
				}
				appendString(t, path, "after\n")
				s := newStepper(t, path, pos)
				s.expect("after\n")
			})
			t.Run("from a position, rotated since", func(t *testing.T) {
				path := filepath.Join(fsys.dir(t), "a.log")
				appendString(t, path, "before\n")
				_, pos, err := Tail(path, 0)
				if err != nil {
					t.Fatal(err)
				}
				appendString(t, path, strings.Repeat(block, 3))
				mustRotate(t, Rotator{MaxSize: MinMaxSize, Keep: 2}, path)
				s := newStepper(t, path, pos)
				s.expect(strings.Repeat(block, 3))
			})
		})
	}
}

// TestFollowStopsWithContext: Follow returns nil when its context ends, and the error of a
// writer that fails.
func TestFollowStopsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	appendString(t, path, "x\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Follow(ctx, path, true, &syncBuffer{}, time.Hour) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Follow after cancel: %v", err)
	}
	err := Follow(context.Background(), path, false, failWriter{}, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("Follow into a failing writer: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("broken pipe") }
