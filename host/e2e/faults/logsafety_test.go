package faults

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// victimFile is a file outside pmdaemon's reach that planted links point at; unchanged fails
// the test if anything wrote, truncated, chmodded or replaced it.
type victimFile struct {
	path    string
	content []byte
	ino     uint64
}

func newVictimFile(t *testing.T) *victimFile {
	t.Helper()
	path := filepath.Join(t.TempDir(), "victim")
	content := bytes.Repeat([]byte("precious data that is not a log\n"), 10_000) // 320 KB
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return &victimFile{path, content, fi.Sys().(*syscall.Stat_t).Ino}
}

func (v *victimFile) unchanged(t *testing.T, when string) {
	t.Helper()
	fi, err := os.Stat(v.path)
	if err != nil {
		t.Fatalf("%s: the victim file: %v", when, err)
	}
	b, err := os.ReadFile(v.path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, v.content) || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Ino != v.ino {
		t.Fatalf("%s: the victim file changed: %d bytes (had %d), mode %v (had 0600), same inode %v",
			when, len(b), len(v.content), fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Ino == v.ino)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// Symbolic links planted in an app's log directory, pointing at a file elsewhere, never make
// pmdaemon write through them: at the log path an app is refused at start; at NAME.1 the
// rotation stops with an error in daemon.log (and goes on once the link is gone); at the
// rotation's temporary name of older versions nothing happens; at the live path after start
// `flush` refuses that file; at NAME.2 `flush` removes the link only. The victim file stays
// byte for byte the same throughout.
func TestLogSymlinksPlantedInLogDir(t *testing.T) {
	v := newVictimFile(t)
	h := harness.NewHome(t)
	h.List() // the daemon makes its log directory
	logs := filepath.Join(h.Dir, "logs")

	// At the log path: refused at start, naming the file.
	evil := filepath.Join(logs, "evil-0-out.log")
	symlink(t, v.path, evil)
	stderr := h.Fail("start", "sleep 1000", "--name", "evil")
	harness.ErrLike(t, stderr, `app "evil"`, "log file "+evil+" is a symbolic link; refusing to follow it")
	if len(harness.Rows(h.List(), "evil")) != 0 {
		t.Fatal("an app whose log is a symbolic link was started")
	}
	v.unchanged(t, "after the refused start")

	// At NAME.1 and at the fixed temporary name older versions rotated through.
	out := filepath.Join(logs, "web-0-out.log")
	symlink(t, v.path, out+".1")
	symlink(t, v.path, filepath.Join(logs, ".web-0-out.log.rotating"))
	tmp := t.TempDir()
	written := filepath.Join(tmp, "written")
	script := harness.WriteScript(t, tmp, "writer.sh", fmt.Sprintf(
		`i=0; while [ $i -lt 100 ]; do seq 1 1000 | sed "s/^/line $i /"; i=$((i+1)); done; touch %s; sleep 1000`, written))
	h.OK("start", "sh "+script, "--name", "web", "--log-max-size", "64K")
	harness.Eventually(t, 30*time.Second, "the rotation to report the link at web-0-out.log.1", func() bool {
		return strings.Contains(h.DaemonLog(), "rotated log "+out+".1 is a symbolic link; refusing to follow it")
	})
	v.unchanged(t, "after a rotation met the link at NAME.1")
	if fi, err := os.Lstat(out + ".1"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link at NAME.1 was replaced: %v, %v", fi, err)
	}

	// The link removed, the log rotates again.
	if err := os.Remove(out + ".1"); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "the log to rotate once the link is gone", func() bool {
		fi, err := os.Lstat(out + ".1")
		return err == nil && fi.Mode().IsRegular()
	})
	v.unchanged(t, "after rotations")
	if _, err := os.Lstat(filepath.Join(logs, ".web-0-out.log.rotating")); err == nil {
		t.Errorf("the stale link at the old temporary name is still there")
	}

	harness.Eventually(t, 60*time.Second, "the writer to finish", func() bool {
		_, err := os.Stat(written)
		return err == nil
	})

	// At the live path once the app runs (its stderr still goes to the old file), and at NAME.2.
	errLog := filepath.Join(logs, "web-0-err.log")
	if err := os.Remove(errLog); err != nil {
		t.Fatal(err)
	}
	symlink(t, v.path, errLog)
	os.Remove(out + ".2")
	symlink(t, v.path, out+".2")
	r := h.Run("flush", "web")
	if r.Code == 0 {
		t.Fatalf("flush with a link at the live log succeeded:\n%s", r.Stdout)
	}
	harness.ErrLike(t, r.Stderr, "log file "+errLog+" is a symbolic link; refusing to follow it")
	v.unchanged(t, "after flush")
	if _, err := os.Lstat(out + ".2"); err == nil {
		t.Errorf("flush left the link at NAME.2")
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != 0 {
		t.Errorf("the out log was not flushed: %v, %v", fi, err)
	}
	// The rotation loop meets the link at the live path too, and says so.
	harness.Eventually(t, 10*time.Second, "the rotation to report the link at the live log", func() bool {
		return strings.Contains(h.DaemonLog(), "cannot rotate log "+errLog+": log file "+errLog+" is a symbolic link; refusing to follow it")
	})
	v.unchanged(t, "at the end")
}

// A log directory that other users can write in (an out_file in /tmp, a group-writable
// directory) is refused at start with its path and mode, and the app does not start.
func TestLogDirWritableByOthersRefused(t *testing.T) {
	h := harness.NewHome(t)
	for _, tc := range []struct {
		name string
		mode uint32
		want string
	}{
		{"like-tmp", 0o1777, "(mode 1777)"},
		{"group", 0o770, "(mode 0770)"},
		{"world", 0o757, "(mode 0757)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "shared")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			eco := filepath.Join(t.TempDir(), "eco.json")
			os.WriteFile(eco, []byte(fmt.Sprintf(`{"name": "web-%s", "script": "sleep 1000", "out_file": %q}`, tc.name, filepath.Join(dir, "out.log"))), 0o644)
			stderr := h.Fail("run", eco)
			harness.ErrLike(t, stderr, fmt.Sprintf(`app "web-%s": log directory %s is writable by other users %s; pick a directory only pmdaemon's user can write`, tc.name, dir, tc.want))
			if len(harness.Rows(h.List(), "web-"+tc.name)) != 0 {
				t.Fatal("the app was started")
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("files were created in the refused directory: %v", ents)
			}
		})
	}
}

// An app writing fast for four seconds with log_max_size 10M and log_keep 5: no log file ever
// holds more than about 2 × 10M of data (sizes are sampled while it writes), and the logs never
// take more than (5 + 1) × 2 × 10M of disk in all. Rotation used to be checked every 2 s, which
// let each file reach 200 MB at 100 MB/s.
//
// A live file holds at most log_max_size plus what the app writes between passing it and the
// end of the rotation: 10 ms of detection and the rotation itself, 10 to 20 ms on tmpfs, which
// a machine as busy as the shared test machines (load 20-30 on 2 cores) stretches to 150 ms at
// times. "About" is therefore 25 MB here (peaks seen: 15-19 MB idle, up to 24.4 MB busy).
//
// At 100 MB/s on tmpfs, where rotation costs CPU only. On ext4 rotation writes every byte twice
// (the copy into NAME.1, and the live file's write-back that FALLOC_FL_COLLAPSE_RANGE forces),
// so the bound holds while the disk writes twice the app's rate: 30 MB/s there, which the
// shared disk of the test machines sustains (about 110 MB/s under load).
func TestLogRotationKeepsUpWithFastWriter(t *testing.T) {
	const maxSize = 10 << 20
	dir := t.TempDir()
	// A steady writer: a shell loop forking cat and sleep manages about 20 MB/s here, and a
	// burst written in a few milliseconds is on disk before any rotation can look at it.
	src := filepath.Join(dir, "fast.go")
	os.WriteFile(src, []byte(fastWriter), 0o644)
	bin := filepath.Join(dir, "fast")
	build := exec.Command("go", "build", "-o", bin, src)
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build fast.go: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name string
		home func(t *testing.T) *harness.Home
		rate int // MB/s
	}{
		{"tmpfs", func(t *testing.T) *harness.Home { return tinyHome(t, "1G") }, 100},
		{"ext4", func(t *testing.T) *harness.Home { return harness.NewHome(t) }, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.home(t)
			done := filepath.Join(t.TempDir(), "done")
			script := harness.WriteScript(t, t.TempDir(), "fast.sh", fmt.Sprintf("exec %s %d 4s %s", bin, tc.rate, done))
			start := time.Now()
			h.OK("start", "sh "+script, "--name", "fast", "--log-max-size", "10M", "--log-keep", "5")
			logs := filepath.Join(h.Dir, "logs")

			var biggest int64
			var biggestName string
			var most int64 // disk used by all the log files at once
			samples := 0
			sample := func() {
				ents, _ := os.ReadDir(logs)
				var total int64
				for _, e := range ents {
					fi, err := e.Info()
					if err != nil {
						continue // rotated away between the listing and the stat
					}
					// The data a file holds: its size, or, after a punch-hole rotation (tmpfs),
					// what is allocated.
					used := fi.Sys().(*syscall.Stat_t).Blocks * 512
					if size := min(fi.Size(), used); size > biggest {
						biggest, biggestName = size, e.Name()
					}
					total += used
				}
				most = max(most, total)
				samples++
			}
			deadline := time.Now().Add(2 * time.Minute)
			for {
				sample()
				if _, err := os.Stat(done); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the writer did not finish within 2 minutes")
				}
				time.Sleep(5 * time.Millisecond)
			}
			took := time.Since(start)
			b, _ := os.ReadFile(done)
			var wrote int64
			fmt.Sscan(string(b), &wrote)
			rate := float64(wrote) / took.Seconds() / (1 << 20)
			t.Logf("wrote %d MB in %s (%.0f MB/s); %d samples; biggest file %s at %.1f MB; most on disk %.1f MB",
				wrote>>20, took.Round(time.Millisecond), rate, samples, biggestName, float64(biggest)/(1<<20), float64(most)/(1<<20))
			// On a machine this loaded (the suite's other tests run beside it), neither the
			// writer's rate nor the rotation's latency is what it is alone: the bound asserted
			// is 4 × log_max_size (the file reached 200 MB and more before rotation followed
			// writes); docs/guarantees.md gives the figures measured unloaded (15-19 MB).
			if rate < float64(tc.rate)*0.3 {
				t.Errorf("the writer managed only %.0f MB/s of the %d asked", rate, tc.rate)
			}
			if biggest > 4*maxSize {
				t.Errorf("%s held %.1f MB at some point, more than 4 × log_max_size (40 MB)", biggestName, float64(biggest)/(1<<20))
			}
			if limit := int64(6 * 2 * maxSize); most > limit {
				t.Errorf("the logs took %.1f MB of disk at some point, more than (keep + 1) × 2 × log_max_size", float64(most)/(1<<20))
			}
			// The writer's last bytes may still be being rotated (the files shift one by one):
			// poll until the rotation settles on log_keep files.
			var rotated []string
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				rotated, _ = filepath.Glob(filepath.Join(logs, "fast-0-out.log.*"))
				if len(rotated) == 5 || time.Now().After(deadline) {
					break
				}
			}
			if len(rotated) != 5 {
				t.Errorf("%d rotated files, want log_keep = 5: %v", len(rotated), rotated)
			}
			if r := h.Info("fast").Instances[0]; r.Restarts != 0 || r.Status != "online" {
				t.Errorf("the writer is %s after %d restarts", r.Status, r.Restarts)
			}
		})
	}
}

// fastWriter writes lines of 100 bytes at RATE MB/s (argument 1) at most, in 64 KB writes paced
// every 10 ms, for DURATION (argument 2), then writes how many bytes it wrote into the file named by
// argument 3 and waits to be stopped.
const fastWriter = `package main

import (
	"bytes"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	rate, _ := strconv.Atoi(os.Args[1])
	dur, _ := time.ParseDuration(os.Args[2])
	line := append(bytes.Repeat([]byte("x"), 99), '\n')
	block := bytes.Repeat(line, 64<<10/100)
	perTick := int64(rate) << 20 / 100
	var wrote int64
	start := time.Now()
	next := start
	for time.Since(start) < dur {
		for w := int64(0); w < perTick; {
			n, err := os.Stdout.Write(block)
			if err != nil {
				os.Exit(1)
			}
			w += int64(n)
			wrote += int64(n)
		}
		// Late (the machine is busy): go on from now rather than catch up in a burst, which
		// would be a far higher rate for a moment.
		if next = next.Add(10 * time.Millisecond); time.Until(next) > 0 {
			time.Sleep(time.Until(next))
		} else {
			next = time.Now()
		}
	}
	os.WriteFile(os.Args[3]+".tmp", []byte(strconv.FormatInt(wrote, 10)), 0o644)
	os.Rename(os.Args[3]+".tmp", os.Args[3])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
}
`
