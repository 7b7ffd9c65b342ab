package lifecycle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// rawAPI sends one request straight to the daemon's socket, as any local program could
// (no CLI checks on the way), and returns the status and the body. The body is written while
// the answer is read, so a daemon that answers early (413) is heard.
func rawAPI(t *testing.T, h *harness.Home, method, path string, body []byte) (int, string) {
	t.Helper()
	c, err := net.Dial("unix", filepath.Join(h.Dir, "daemon.sock"))
	if err != nil {
		t.Fatalf("dial the daemon: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: pmdaemon\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		method, path, len(body))
	go func() {
		// A write error is the daemon closing after its answer; the answer is what counts.
		c.Write(append([]byte(head), body...))
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: no answer: %v", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

// luaQuote writes s as a Lua string literal, every byte that is not printable ASCII as \ddd.
func luaQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "\\%03d", c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// apiError is the message of an API error answer.
func apiError(t *testing.T, body string) string {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Message == "" {
		t.Fatalf("not an API error answer: %q", body)
	}
	return e.Message
}

// startBody is a POST /v1/start body for app name running cmd.
func startBody(t *testing.T, name, cmd string, instances int) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"app": map[string]any{
		"name": name, "script": cmd, "cwd": t.TempDir(), "instances": instances, "autorestart": true,
		"max_restarts": 15, "min_uptime": "1s", "kill_timeout": "5s",
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A name with leading or trailing white space, a control character, "all" or a number is
// refused by the CLI, a JSON file, a Lua file and the API itself, with an error saying what is
// wrong; nothing starts.
func TestNamesRefusedAtEveryEntry(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	cases := []struct {
		name string
		want string
	}{
		{"all ", `app name "all " is not allowed: it has trailing whitespace`},
		{" all", `app name " all" is not allowed: it has leading whitespace`},
		{" 3", `app name " 3" is not allowed: it has leading whitespace`},
		{"web\t", `app name "web\t" is not allowed: it has trailing whitespace`},
		{"my\tapp", `app name "my\tapp" is not allowed: it contains the control character U+0009 (tab)`},
		{"my\napp", `app name "my\napp" is not allowed: it contains the control character U+000A (newline)`},
		{"a\u200bb", `app name "a\u200bb" is not allowed: it contains the control character U+200B`},
		{"all", `app name "all" is not allowed: "all" is the target of every app`},
		{"3", `app name "3" is not allowed: it is a number, which would be taken for an instance id`},
		{strings.Repeat("n", 101), "is not allowed: it is 101 bytes long; the limit is 100"},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%q", tc.name), func(t *testing.T) {
			// CLI
			harness.ErrLike(t, h.Fail("start", "sleep 1000", "--name", tc.name), tc.want)
			// JSON: the file and the app are named too.
			js, _ := json.Marshal(map[string]any{"apps": []any{map[string]any{"name": tc.name, "script": "sleep 1000"}}})
			jf := filepath.Join(dir, fmt.Sprintf("eco%d.json", i))
			if err := os.WriteFile(jf, js, 0o644); err != nil {
				t.Fatal(err)
			}
			harness.ErrLike(t, h.Fail("run", jf), fmt.Sprintf("eco%d.json: apps[0]", i), tc.want)
			// Lua
			lf := filepath.Join(dir, fmt.Sprintf("eco%d.lua", i))
			lua := fmt.Sprintf("cluster.start { name = %s, script = 'sleep 1000' }\n", luaQuote(tc.name))
			if err := os.WriteFile(lf, []byte(lua), 0o644); err != nil {
				t.Fatal(err)
			}
			harness.ErrLike(t, h.Fail("run", lf), fmt.Sprintf("eco%d.lua:1", i), tc.want)
			// The API, bypassing the CLI: start and start-many.
			code, body := rawAPI(t, h, "POST", "/v1/start", startBody(t, tc.name, "sleep 1000", 1))
			if code != http.StatusBadRequest || !strings.Contains(apiError(t, body), tc.want) {
				t.Errorf("POST /v1/start: %d %s; want 400 with %q", code, body, tc.want)
			}
			var good, bad map[string]any
			json.Unmarshal(startBody(t, "fine", "sleep 1000", 1), &good)
			json.Unmarshal(startBody(t, tc.name, "sleep 1000", 1), &bad)
			many, _ := json.Marshal(map[string]any{"apps": []any{good, bad}})
			code, body = rawAPI(t, h, "POST", "/v1/start-many", many)
			if msg := apiError(t, body); code != http.StatusBadRequest || !strings.HasPrefix(msg, "apps[1]: app name ") || !strings.Contains(msg, tc.want) {
				t.Errorf("POST /v1/start-many: %d %s; want 400 with apps[1] and %q", code, body, tc.want)
			}
		})
	}
	if rows := h.List(); len(rows) != 0 {
		t.Fatalf("refused names started something: %+v", rows)
	}
	if procs := h.AppProcs(); len(procs) != 0 {
		t.Fatalf("refused names left processes: %v", procs)
	}
}

// Targets are taken exactly as typed: "all " and " web" name nothing (they do not touch every
// app or web), " 3" and "+3" are not instance id 3, for every command that takes a target.
func TestTargetsResolveExactly(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 1000", "--name", "web", "-i", "2")
	h.OK("start", "sleep 1000", "--name", "db", "-i", "2")
	before := h.WaitList(20*time.Second, "4 instances online", func(rows []api.Instance) bool {
		return harness.AllOnline("web", 2)(rows) && harness.AllOnline("db", 2)(rows)
	})
	if _, ok := harness.ByID(before)[3]; !ok {
		t.Fatalf("no instance id 3: %+v", before)
	}
	for _, target := range []string{"all ", " all", "all\t", " 3", "3 ", "+3", " web", "web ", "web\n"} {
		for _, cmd := range [][]string{
			{"delete", target}, {"stop", target}, {"restart", target}, {"reload", target},
			{"info", target}, {"logs", target, "--lines", "1"}, {"flush", target},
		} {
			r := h.Run(cmd...)
			want := fmt.Sprintf("process '%s' not found", target)
			if r.Code != 1 || !strings.Contains(r.Stderr, want) {
				t.Errorf("pmdaemon %q: exit %d, stderr %q; want exit 1 and %q", cmd, r.Code, r.Stderr, want)
			}
		}
	}
	after := h.List()
	if len(after) != 4 {
		t.Fatalf("after the refused targets, %d instances listed, want 4: %+v", len(after), after)
	}
	for _, r := range after {
		b := harness.ByID(before)[r.ID]
		if r.Status != "online" || r.Pid != b.Pid || r.Restarts != 0 {
			t.Errorf("id %d was touched: %+v, before %+v", r.ID, r, b)
		}
	}
	// The exact forms still work.
	h.OK("stop", "3")
	h.WaitList(10*time.Second, "id 3 stopped", func(rows []api.Instance) bool {
		return harness.ByID(rows)[3].Status == "stopped"
	})
	h.OK("delete", "all")
	if rows := h.List(); len(rows) != 0 {
		t.Fatalf("delete all left %+v", rows)
	}
}
