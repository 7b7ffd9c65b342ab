package supervisor

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/procfs"
)

// withEnv lists the live processes whose environment holds entry.
func withEnv(entry string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(append(env, 0), []byte(entry+"\x00")) && procfs.Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// A log writer that reads its pipes to the end exits with the stop, having written what the
// instance wrote: nothing is left for AwaitStrayWriters. One that does not (here, one that
// never reads) outlives the stop's wait; AwaitStrayWriters kills it and says so.
func TestStrayLogWritersGoWithTheDaemon(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writer string // the writer's shell script: fds 3 and 4 are the pipes, 5 and 6 the logs
		stray  bool
	}{
		{"writer reads to the end", `cat <&3 >&5 & cat <&4 >&6; wait`, false},
		// A child of the writer goes too: the writer's whole process group is killed.
		{"writer never reads", `sleep 1000 & exec sleep 1000`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			mark := "PMDAEMON_TEST_WRITER=" + strconv.FormatInt(time.Now().UnixNano(), 36)
			spec := h.spec(RestartPolicy{}, 2*time.Second, "sh", "-c",
				`trap 'echo bye; exit 0' TERM; echo hello; while :; do sleep 0.1; done`)
			spec.LogWriter = &LogWriterSpec{Argv: []string{"sh", "-c", tc.writer}, Env: []string{mark}}
			in := h.start(spec, 0, nil)
			h.wait(in, "online", online)
			poll(t, "the writer to run", func() bool { return len(withEnv(mark)) > 0 })
			if !tc.stray {
				poll(t, "the first line in the log", func() bool {
					b, _ := os.ReadFile(spec.OutLog)
					return string(b) == "hello\n"
				})
			}
			in.Stop()
			err := AwaitStrayWriters(100 * time.Millisecond)
			switch {
			case tc.stray && (err == nil || !strings.Contains(err.Error(), "1 log writer(s) outlived their instances' stop")):
				t.Errorf("AwaitStrayWriters = %v; want it to say it killed one writer", err)
			case !tc.stray && err != nil:
				t.Errorf("AwaitStrayWriters = %v; want nil, the writer had exited", err)
			}
			// Both ways, the writer is gone by now: reaped by the stop, or killed and reaped.
			if left := withEnv(mark); len(left) > 0 {
				t.Errorf("the log writer %v still runs", left)
			}
			if !tc.stray {
				// The stop answered once the writer had written the instance's last line.
				if b, _ := os.ReadFile(spec.OutLog); string(b) != "hello\nbye\n" {
					t.Errorf("out log %q; want the instance's two lines", b)
				}
			}
			if err := AwaitStrayWriters(0); err != nil {
				t.Errorf("a second AwaitStrayWriters = %v; the strays were dealt with", err)
			}
		})
	}
}
