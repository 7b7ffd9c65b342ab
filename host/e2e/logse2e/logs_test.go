// Package logse2e tests PM2's log keys end to end: lines stamped by the log writer, `logs`
// merging instances by time and --timestamp, JSON lines, merge_logs and log_file.
package logse2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
	"github.com/pmdaemon/pmdaemon/host/logs"
)

// alternate prints ROUNDS lines, taking turns with the other instance through the file
// "turn": an instance writes its line, waits until the line is in its log file (so its
// stamp is taken), then hands the turn over.
const alternate = `i=$NODE_APP_INSTANCE; n=0; log="$PMDAEMON_HOME/logs/alt-$i-out.log"
while [ $n -lt 4 ]; do
  t=$(cat turn 2>/dev/null || echo 0)
  if [ $((t % 2)) -eq $i ]; then
    echo "i$i-$n"
    until grep -q ": i$i-$n\$" "$log" 2>/dev/null; do sleep 0.01; done
    echo $((t + 1)) > turn.$i; mv turn.$i turn
    n=$((n + 1))
  fi
  sleep 0.01
done
exec sleep 1000
`

func writeJSON(t *testing.T, dir string, apps ...map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"apps": apps})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "ecosystem.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Two instances with `time: true` print alternately: each file has PM2's shape (stamp, ": ",
// line), and `logs` merges them in the order the lines were written.
func TestInstancesMergedByTime(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := harness.NewHome(t)
	harness.WriteScript(t, dir, "alt.sh", alternate)
	h.OK("run", writeJSON(t, dir, map[string]any{"name": "alt", "script": "./alt.sh", "cwd": dir, "instances": 2, "time": true}))
	h.WaitList(10*time.Second, "alt online", harness.AllOnline("alt", 2))
	harness.Eventually(t, 20*time.Second, "both instances to print 4 lines", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "turn"))
		return strings.TrimSpace(string(b)) == "8"
	})

	layout, err := config.MomentLayout(config.DefaultLogDateFormat)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		b, err := os.ReadFile(filepath.Join(h.Dir, "logs", "alt-"+string(rune('0'+i))+"-out.log"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("instance %d wrote %q; want 4 lines", i, lines)
		}
		for n, l := range lines {
			stamp, text, ok := strings.Cut(l, ": ")
			if _, err := time.Parse(layout, stamp); !ok || err != nil || text != "i"+string(rune('0'+i))+"-"+string(rune('0'+n)) {
				t.Errorf("line %q: want %s stamp, \": \", i%d-%d (%v)", l, config.DefaultLogDateFormat, i, n, err)
			}
		}
	}

	out := h.OK("logs", "alt", "--out", "--lines", "10")
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if !strings.HasPrefix(rows[0], "==> merged by time: ") || !strings.Contains(rows[0], "alt-0-out.log") || !strings.Contains(rows[0], "alt-1-out.log") {
		t.Fatalf("header %q; want both files merged by time\n%s", rows[0], out)
	}
	var got []string
	for _, r := range rows[1:] {
		_, line, _ := strings.Cut(r, " | ")
		_, text, _ := strings.Cut(line, ": ")
		got = append(got, text)
	}
	want := []string{"i0-0", "i1-0", "i0-1", "i1-1", "i0-2", "i1-2", "i0-3", "i1-3"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("merged lines %q; want %q\n%s", got, want, out)
	}

	stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d \d+ alt \| `)
	short := regexp.MustCompile(`^\d\d:\d\d:\d\d \d+ alt \| `)
	for _, tc := range []struct {
		args []string
		want *regexp.Regexp
	}{
		{[]string{"--timestamp"}, stamped},
		{[]string{"--timestamp=HH:mm:ss"}, short},
		{[]string{"--timestamp", "HH:mm:ss"}, short}, // PM2's `--timestamp [format]`
	} {
		out := h.OK(append([]string{"logs", "alt", "--out", "--lines", "2"}, tc.args...)...)
		rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")[1:]
		if len(rows) != 4 {
			t.Errorf("logs %v printed %d lines; want 4\n%s", tc.args, len(rows), out)
		}
		for _, r := range rows {
			if !tc.want.MatchString(r) {
				t.Errorf("logs %v: line %q does not start with its time (%s)", tc.args, r, tc.want)
			}
		}
	}
	if r := h.Run("logs", "alt", "--timestamp=YYYY Qo"); r.Code == 0 || !strings.Contains(r.Stderr, "--timestamp") {
		t.Errorf("a bad --timestamp format: code %d, stderr %q; want an error naming --timestamp", r.Code, r.Stderr)
	}
}

// log_type "json" writes PM2's objects; merge_logs gives the instances one out and one err
// file; log_file gets both streams of both instances.
func TestJSONMergedAndCombinedLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := harness.NewHome(t)
	harness.WriteScript(t, dir, "both.sh", `echo "hello-$NODE_APP_INSTANCE <&>"; echo "oops-$NODE_APP_INSTANCE" >&2
exec sleep 1000
`)
	h.OK("run", writeJSON(t, dir, map[string]any{"name": "js", "script": "./both.sh", "cwd": dir, "instances": 2,
		"log_type": "json", "merge_logs": true, "log_file": "all.log"}))
	rows := h.WaitList(10*time.Second, "js online", harness.AllOnline("js", 2))
	ids := map[float64]bool{}
	for _, r := range rows {
		ids[float64(r.ID)] = true
		if r.OutLog != filepath.Join(h.Dir, "logs", "js-out.log") || r.ErrLog != filepath.Join(h.Dir, "logs", "js-err.log") {
			t.Errorf("instance %d logs to %s, %s; want the merged js-out.log, js-err.log", r.ID, r.OutLog, r.ErrLog)
		}
	}
	read := func(path string, n int) []map[string]any {
		var objs []map[string]any
		harness.Eventually(t, 10*time.Second, path+" to hold "+string(rune('0'+n))+" lines", func() bool {
			b, _ := os.ReadFile(path)
			return strings.Count(string(b), "\n") == n
		})
		b, _ := os.ReadFile(path)
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%s: line %q is not JSON: %v", path, l, err)
			}
			objs = append(objs, m)
		}
		return objs
	}
	check := func(path string, m map[string]any, types ...string) {
		t.Helper()
		msg, _ := m["message"].(string)
		ts, _ := m["timestamp"].(string)
		typ, _ := m["type"].(string)
		_, err := time.Parse("2006-01-02T15:04:05.000Z", ts)
		ok := len(m) == 5 && err == nil && m["app_name"] == "js" && ids[m["process_id"].(float64)] && strings.HasSuffix(msg, "\n")
		if typ == "out" {
			ok = ok && strings.HasPrefix(msg, "hello-") && strings.HasSuffix(msg, " <&>\n")
		} else {
			ok = ok && typ == "err" && strings.HasPrefix(msg, "oops-")
		}
		if !ok || !strings.Contains(strings.Join(types, " "), typ) {
			t.Errorf("%s: %v is not PM2's JSON line of type %v", path, m, types)
		}
	}
	for _, m := range read(filepath.Join(h.Dir, "logs", "js-out.log"), 2) {
		check("js-out.log", m, "out")
	}
	for _, m := range read(filepath.Join(h.Dir, "logs", "js-err.log"), 2) {
		check("js-err.log", m, "err")
	}
	for _, m := range read(filepath.Join(dir, "all.log"), 4) {
		check("all.log", m, "out", "err")
	}
	if _, err := os.Stat(filepath.Join(h.Dir, "logs", "js-0-out.log")); err == nil {
		t.Error("merge_logs still wrote js-0-out.log")
	}
	// `logs` reads the JSON lines' times: one merged block.
	out := h.OK("logs", "js", "--out", "--timestamp")
	if !strings.Contains(out, "==> "+filepath.Join(h.Dir, "logs", "js-out.log")+" <==") || strings.Count(out, `"message":"hello-`) != 2 {
		t.Errorf("logs of the merged JSON file:\n%s", out)
	}
	// flush empties log_file too.
	h.OK("flush", "js")
	if b, err := os.ReadFile(filepath.Join(dir, "all.log")); err != nil || len(b) != 0 {
		t.Errorf("after flush all.log holds %q (%v)", b, err)
	}
}

// Every bad log key is refused before anything starts, with an error naming the key.
func TestBadLogKeysRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := harness.NewHome(t)
	tests := []struct {
		key   string
		value any
		want  string
	}{
		{"log_date_format", "YYYY-MM-DD Qo", "log_date_format"},
		{"log_type", "xml", "log_type"},
		{"log_file", "/nonexistent-pmd/dir/all.log", "log_file"},
		{"time", "yes", "time"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			r := h.Run("run", writeJSON(t, t.TempDir(), map[string]any{"name": "bad", "script": "sleep 100", "cwd": dir, tc.key: tc.value}))
			if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("run with %s %v: code %d, stderr %q; want an error naming %s", tc.key, tc.value, r.Code, r.Stderr, tc.want)
			}
			if rows := harness.Rows(h.List(), "bad"); len(rows) != 0 {
				t.Errorf("the refused app runs: %v", rows)
				h.OK("delete", "bad")
			}
		})
	}
}

// Rotation goes on with the log writer's files: the stamped out log and the log_file rotate
// at log_max_size, and what the rotated file and the live one hold together is every line,
// whole and in order (read across the rotated files as `pmdaemon logs` reads them).
func TestStampedLogsRotate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := harness.NewHome(t)
	harness.WriteScript(t, dir, "many.sh", `i=0; pad=$(printf '%0100d' 0)
while [ $i -lt 3000 ]; do echo "line-$i $pad"; i=$((i + 1)); done
exec sleep 1000
`)
	h.OK("run", writeJSON(t, dir, map[string]any{"name": "many", "script": "./many.sh", "cwd": dir, "time": true,
		"log_file": "all.log", "log_max_size": "64K", "log_keep": 2}))
	h.WaitList(10*time.Second, "many online", harness.AllOnline("many", 1))
	out := filepath.Join(h.Dir, "logs", "many-0-out.log")
	for _, p := range []string{out, filepath.Join(dir, "all.log")} {
		harness.Eventually(t, 20*time.Second, p+" to rotate and hold the last line", func() bool {
			_, err := os.Stat(p + ".1")
			b, _ := os.ReadFile(p)
			return err == nil && strings.Contains(string(b), ": line-2999 ")
		})
		// Read as `pmdaemon logs` does, under the log's lock: two plain reads of path.1 and
		// the live file can straddle a rotation that runs between them.
		lines, err := logs.ReadTail(p, 10000)
		if err != nil {
			t.Fatal(err)
		}
		whole := regexp.MustCompile(`^\d{4}-\d\d-\d\dT[\d:.]+[+-]\d\d:\d\d: line-(\d+) 0{100}$`)
		prev := -1
		for k, l := range lines[1:] { // the first may be the tail of a line an earlier rotation cut
			m := whole.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("%s: line %d %q is not a whole stamped line", p, k+1, l)
			}
			n := 0
			for _, c := range m[1] {
				n = n*10 + int(c-'0')
			}
			if prev >= 0 && n != prev+1 {
				t.Fatalf("%s: line-%d follows line-%d", p, n, prev)
			}
			prev = n
		}
		if prev != 2999 {
			t.Errorf("%s ends at line-%d; want line-2999", p, prev)
		}
	}
}
