package logs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tenMB is a 10 MB log (the default MaxSize) of 100-byte lines, plus a block.
var tenMB = []byte(strings.Repeat(strings.Repeat("x", 99)+"\n", (10<<20+4096)/100))

// BenchmarkRotate10MB is one whole rotation of a 10 MB log: copy, fsync, renames, trim.
func BenchmarkRotate10MB(b *testing.B) {
	for _, fsys := range filesystems {
		b.Run(fsys.name, func(b *testing.B) {
			path := filepath.Join(fsys.dir(b), "app-0-out.log")
			r := Rotator{MaxSize: 10 << 20, Keep: DefaultKeep}
			b.SetBytes(10 << 20)
			for b.Loop() {
				b.StopTimer()
				os.Remove(path)
				if err := os.WriteFile(path, tenMB, 0o640); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if ok, err := r.Rotate(path); !ok || err != nil {
					b.Fatalf("Rotate = %v, %v", ok, err)
				}
			}
		})
	}
}

// BenchmarkTrim10MB times the only step during which an app's write may wait (the kernel holds
// the file's inode lock): removing 10 MB from the head of the file. It reports the longest
// single fallocate call, which bounds that wait.
func BenchmarkTrim10MB(b *testing.B) {
	for _, fsys := range filesystems {
		b.Run(fsys.name, func(b *testing.B) {
			path := filepath.Join(fsys.dir(b), "x.log")
			var worst time.Duration
			for b.Loop() {
				b.StopTimer()
				os.Remove(path)
				if err := os.WriteFile(path, tenMB, 0o640); err != nil {
					b.Fatal(err)
				}
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					b.Fatal(err)
				}
				f.Sync()
				b.StartTimer()
				w, err := trimHead(f, fsys.want, 0, 10<<20)
				b.StopTimer()
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
				worst = max(worst, w)
				b.StartTimer()
			}
			b.ReportMetric(float64(worst.Microseconds()), "max-call-µs")
		})
	}
}
