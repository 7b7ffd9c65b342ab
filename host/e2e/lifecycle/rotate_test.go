package lifecycle

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// writer writes "line 0" .. "line 89999" over about seven seconds, in 60 bursts (so that
// the rotations its writes set off come while it writes, several times), then idles.
const writer = `i=0; while [ $i -lt 60 ]; do seq $((i*1500)) $((i*1500+1499)) | sed 's/^/line /'; i=$((i+1)); sleep 0.1; done; sleep 1000`

const lastLine = "line 89999"

// writerScript puts the writer in a file (after a delay before its first line) and returns
// the command that runs it.
func writerScript(t *testing.T, delay string) string {
	t.Helper()
	p := harness.WriteScript(t, t.TempDir(), "writer.sh", "sleep "+delay+"\n"+writer+"\n")
	return "sh " + p
}

// allLogLines joins the rotated files (oldest first) and the live one. A rotation that moves
// the files while they are read (the writer may still be writing) makes it read them again.
func allLogLines(t *testing.T, path string) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines, err := readLogLines(path)
		if err == nil {
			return lines
		}
		if !os.IsNotExist(err) || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

// readLogLines is one read of allLogLines; a file gone since the glob is an IsNotExist error.
func readLogLines(path string) ([]string, error) {
	var buf bytes.Buffer
	rotated, _ := filepath.Glob(path + ".*")
	n := 0
	for _, r := range rotated {
		if strings.Trim(strings.TrimPrefix(r, path+"."), "0123456789") == "" {
			n++
		}
	}
	for k := n; k >= 1; k-- {
		b, err := os.ReadFile(fmt.Sprintf("%s.%d", path, k))
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	buf.Write(b)
	return strings.Split(strings.TrimRight(buf.String(), "\n"), "\n"), nil
}

func checkSequence(t *testing.T, lines []string, from int) {
	t.Helper()
	for i, l := range lines {
		if want := fmt.Sprintf("line %d", from+i); l != want {
			t.Fatalf("line %d of the log is %q, want %q: a line was lost, split or repeated", i, l, want)
		}
	}
}

// A chatty app's log rotates at log_max_size into NAME.1, NAME.2, ... while the app writes,
// and the rotated files and the live one hold every line once, in order. `logs --lines`
// reads across them, and `flush` empties them all.
func TestLogRotationLosesNoLine(t *testing.T) {
	h := harness.NewHome(t)
	h.OK("start", writerScript(t, "0"), "--name", "chatty", "--log-max-size", "64K", "--log-keep", "1000")
	out := h.Info("chatty").Instances[0].OutLog
	harness.Eventually(t, 30*time.Second, "the writer to finish", func() bool {
		lines := allLogLines(t, out)
		return lines[len(lines)-1] == lastLine
	})
	rotated, _ := filepath.Glob(out + ".*")
	if len(rotated) < 2 {
		t.Fatalf("%d rotated files after writing 1 MB with log_max_size 64K, want several", len(rotated))
	}
	checkSequence(t, allLogLines(t, out), 0)
	if st, _ := os.Stat(out); st.Size() > 2<<20 {
		t.Errorf("live log is %d bytes: it was not trimmed", st.Size())
	}
	// The process is the same one: rotation never disturbed it.
	if r := h.Info("chatty").Instances[0]; r.Restarts != 0 {
		t.Errorf("the app restarted %d times during rotation", r.Restarts)
	}
	tail := h.OK("logs", "chatty", "--out", "--lines", "3")
	if !strings.Contains(tail, "chatty | "+lastLine) {
		t.Errorf("logs --lines 3 does not end with %q:\n%s", lastLine, tail)
	}
	h.OK("flush", "chatty")
	if rotated, _ := filepath.Glob(out + ".*"); len(rotated) != 0 {
		t.Errorf("flush left %v", rotated)
	}
	if st, _ := os.Stat(out); st.Size() != 0 {
		t.Errorf("flush left %d bytes in %s", st.Size(), out)
	}
}

// `logs --follow` keeps following through rotations: what it prints after its first line is
// every later line, once, in order.
func TestLogsFollowAcrossRotations(t *testing.T) {
	h := harness.NewHome(t)
	h.OK("start", writerScript(t, "1"), "--name", "chatty", "--log-max-size", "64K", "--log-keep", "1000")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow := exec.CommandContext(ctx, harness.Bin, "logs", "chatty", "--out", "--follow", "--lines", "0")
	follow.Env = append(os.Environ(), "PMDAEMON_HOME="+h.Dir)
	var mu sync.Mutex
	var got bytes.Buffer
	pipe, _ := follow.StdoutPipe()
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			mu.Lock()
			got.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	harness.Eventually(t, 40*time.Second, "the follower to print the last line", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(got.String(), "chatty | "+lastLine+"\n")
	})
	cancel()
	follow.Wait()
	out := h.Info("chatty").Instances[0].OutLog
	if rotated, _ := filepath.Glob(out + ".*"); len(rotated) < 2 {
		t.Fatalf("only %d rotations happened while following", len(rotated))
	}
	mu.Lock()
	defer mu.Unlock()
	var lines []string
	for _, l := range strings.Split(got.String(), "\n") {
		if _, v, ok := strings.Cut(l, "chatty | "); ok {
			lines = append(lines, v)
		}
	}
	if len(lines) == 0 {
		t.Fatal("the follower printed no line")
	}
	// The follower may have attached after the first lines; from its first line on, it must
	// have every line once, in order, to the last.
	var first int
	if _, err := fmt.Sscanf(lines[0], "line %d", &first); err != nil {
		t.Fatalf("first followed line %q", lines[0])
	}
	checkSequence(t, lines, first)
	if first+len(lines) != 90000 {
		t.Errorf("followed lines %d to %d, want to 89999", first, first+len(lines)-1)
	}
}

// A log that cannot be written is refused at start, with the path, rather than lost.
func TestUnwritableLogIsRefused(t *testing.T) {
	h := harness.NewHome(t)
	stderr := h.Fail("run", writeEco(t, `{"name": "nolog", "script": "sleep 100", "out_file": "/proc/pmdaemon-test.log"}`))
	harness.ErrLike(t, stderr, "nolog", "log file cannot be written", "/proc/pmdaemon-test.log")
	if len(harness.Rows(h.List(), "nolog")) != 0 {
		t.Fatal("an app whose log cannot be written was started")
	}
}

func writeEco(t *testing.T, app string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "eco.json")
	os.WriteFile(p, []byte(app), 0o644)
	return p
}
