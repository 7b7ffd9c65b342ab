package lifecycle

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

const chattyScript = `for i in 1 2 3 4 5; do echo "out-$i"; echo "err-$i" >&2; done
exec sleep 1000
`

// parseLogs splits `pmdaemon logs` output into file -> printed lines (the text after " | ").
func parseLogs(t *testing.T, out string) map[string][]string {
	t.Helper()
	files := map[string][]string{}
	cur := ""
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.HasPrefix(l, "==> ") && strings.HasSuffix(l, " <==") {
			cur = strings.TrimSuffix(strings.TrimPrefix(l, "==> "), " <==")
			files[cur] = []string{}
			continue
		}
		_, text, ok := strings.Cut(l, " | ")
		if cur == "" || !ok {
			t.Fatalf("unexpected line %q in logs output:\n%s", l, out)
		}
		files[cur] = append(files[cur], text)
	}
	return files
}

// waitLog waits until path holds exactly n copies of line.
func waitLog(t *testing.T, path, line string, n int) {
	t.Helper()
	harness.Eventually(t, 10*time.Second, path+" to hold "+line, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && strings.Count(string(b), line+"\n") == n
	})
}

// Each instance's stdout and stderr go to their own files under the home's logs, which list
// --json names, and `logs` shows the last lines of either or both.
func TestLogsSplitOutAndErrPerInstance(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := harness.NewHome(t)
	harness.WriteScript(t, dir, "chatty.sh", chattyScript)
	h.OK("start", "./chatty.sh", "--cwd", dir)
	rows := h.WaitList(10*time.Second, "chatty online", harness.AllOnline("chatty", 1))
	outLog := filepath.Join(h.Dir, "logs", "chatty-0-out.log")
	errLog := filepath.Join(h.Dir, "logs", "chatty-0-err.log")
	if rows[0].OutLog != outLog || rows[0].ErrLog != errLog {
		t.Errorf("log paths %q, %q; want %q, %q", rows[0].OutLog, rows[0].ErrLog, outLog, errLog)
	}
	waitLog(t, outLog, "out-5", 1)
	waitLog(t, errLog, "err-5", 1)
	if b, _ := os.ReadFile(outLog); strings.Contains(string(b), "err-") {
		t.Errorf("stderr landed in the out log:\n%s", b)
	}

	cases := []struct {
		name  string
		flags []string
		want  map[string][]string
	}{
		{"both", nil, map[string][]string{outLog: {"out-4", "out-5"}, errLog: {"err-4", "err-5"}}},
		{"out", []string{"--out"}, map[string][]string{outLog: {"out-4", "out-5"}}},
		{"err", []string{"--err"}, map[string][]string{errLog: {"err-4", "err-5"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, target := range []string{"chatty", "all"} {
				out := h.OK(append([]string{"logs", target, "--lines", "2"}, tc.flags...)...)
				if got := parseLogs(t, out); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("logs %s --lines 2 %v:\n got %v\nwant %v\noutput:\n%s", target, tc.flags, got, tc.want, out)
				}
			}
		})
	}
	if r := h.Run("logs", "chatty", "--err", "--out"); r.Code == 0 {
		t.Errorf("--err with --out succeeded")
	} else {
		harness.ErrLike(t, r.Stderr, "--err", "--out")
	}

	// Restarts append to the same files; nothing is ever truncated.
	h.OK("restart", "chatty")
	waitLog(t, outLog, "out-1", 2)
	waitLog(t, outLog, "out-5", 2)
	waitLog(t, errLog, "err-5", 2)
	// A daemon restart too.
	h.OK("kill")
	h.WaitList(15*time.Second, "chatty back", harness.AllOnline("chatty", 1))
	waitLog(t, outLog, "out-5", 3)
	waitLog(t, errLog, "err-5", 3)
	b, err := os.ReadFile(outLog)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("out-1\nout-2\nout-3\nout-4\nout-5\n", 3)
	if string(b) != want {
		t.Errorf("out log after two restarts:\n%s\nwant:\n%s", b, want)
	}
}
