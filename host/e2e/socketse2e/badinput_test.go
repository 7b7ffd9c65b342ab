package socketse2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// A socket the daemon cannot or must not hold is refused before anything starts, from the
// CLI and from ecosystem files, with an error that names the key, the value and why; the
// app is then not in the list and its port is free.
func TestSocketBadInput(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	dir := t.TempDir()
	rng := harness.FreePorts(t, 2)
	busy := harness.FreePorts(t, 1)
	harness.Listen(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", busy)) // another program's listener
	spec := harness.PortRange(rng, rng+1)

	jsonFile := func(file string, app map[string]any) string {
		app["name"], app["script"] = "bad", harness.Echo
		b, _ := json.Marshal(map[string]any{"apps": []any{app}})
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	luaFile := func(file, fields string) string {
		p := filepath.Join(dir, file)
		body := fmt.Sprintf("cluster.start { name = \"bad\", script = %q, %s }\n", harness.Echo, fields)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"shared with a range (CLI)",
			[]string{"start", harness.Echo, "--name", "bad", "-i", "2", "--port", spec, "--socket", "shared", "--bind", "127.0.0.1"},
			[]string{"shared", spec}},
		{"shared with a range (JSON)",
			[]string{"start", jsonFile("shared-range.json", map[string]any{"instances": 2, "port": spec, "socket": "shared", "bind": "127.0.0.1"})},
			[]string{"shared-range.json", "apps[0] (bad)", "shared", spec}},
		{"shared with a range (Lua)",
			[]string{"run", luaFile("shared-range.lua", fmt.Sprintf("instances = 2, port = %q, socket = \"shared\", bind = \"127.0.0.1\"", spec))},
			[]string{"shared-range.lua", "shared", spec}},
		{"socket mode misspelt (JSON)",
			[]string{"start", jsonFile("socket-typo.json", map[string]any{"port": rng, "socket": "shraed"})},
			[]string{"socket-typo.json", "apps[0] (bad)", "socket", "shraed"}},
		{"a bind address not of this machine",
			[]string{"start", harness.Echo, "--name", "bad", "--port", strconv.Itoa(rng), "--socket", "--bind", "192.0.2.1"},
			[]string{"192.0.2.1"}},
		{"a port another program listens on",
			[]string{"start", harness.Echo, "--name", "bad", "--port", strconv.Itoa(busy), "--socket", "--bind", "127.0.0.1"},
			[]string{strconv.Itoa(busy)}},
		{"shared on a port another program listens on",
			[]string{"start", harness.Echo, "--name", "bad", "-i", "2", "--port", strconv.Itoa(busy), "--socket", "shared", "--bind", "127.0.0.1"},
			[]string{strconv.Itoa(busy)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stderr := h.Fail(tc.args...)
			harness.ErrLike(t, stderr, tc.want...)
			if rs := harness.Rows(h.List(), "bad"); len(rs) != 0 {
				t.Errorf("a refused start left rows: %+v", rs)
			}
			// Nothing holds the range afterwards: the daemon released what it had bound.
			for _, p := range harness.Seq(rng, 2) {
				l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", p))
				if err != nil {
					t.Errorf("port %d is still held after the refused start: %v", p, err)
					continue
				}
				l.Close()
			}
		})
	}
}

// An app that ignores LISTEN_FDS and binds $PORT itself cannot, since the daemon holds the
// port: info says why, naming LISTEN_FDS, and it is never ready, so a reload onto it fails and
// says which instance.
func TestAppIgnoringListenFDsIsExplained(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	p := harness.FreePorts(t, 1)
	h.OK("start", harness.Echo, "--name", "deaf", "--port", strconv.Itoa(p), "--socket", "--bind", "127.0.0.1",
		"--env", "IGNORE_LISTEN_FDS=1")
	var rows []map[string]any
	harness.Eventually(t, 30*time.Second, "info to explain the app's own bind, naming LISTEN_FDS", func() bool {
		rows = rawRows(t, h, "deaf")
		return len(rows) == 1 && mentions(rows[0]["notice"], "LISTEN_FDS")
	})
	t.Logf("info's notice: %s", rows[0]["notice"])
	harness.ErrLike(t, h.Fail("reload", "deaf"), "instance 0 of deaf")
	if r := harness.Rows(h.APIList(), "deaf"); len(r) != 1 || r[0].Restarts == 0 {
		t.Errorf("the app that cannot bind should be restarting: %+v", r)
	}
}
