package webe2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// openWeb turns the home's web listener on at a free loopback port and returns its base URL
// and the admin and read tokens, as a user gets them from the CLI.
func openWeb(t *testing.T, h *harness.Home) (url, admin, read string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePorts(t, 1))
	out := h.OK("web", "--addr", addr)
	if !strings.Contains(out, "listening on http://"+addr) {
		t.Fatalf("web --addr %s: %s", addr, out)
	}
	admin = strings.TrimSpace(h.OK("web", "token"))
	read = strings.TrimSpace(h.OK("web", "token", "--read-only"))
	if admin == "" || read == "" || admin == read {
		t.Fatalf("tokens: admin %q, read %q", admin, read)
	}
	return "http://" + addr, admin, read
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// `pmdaemon web` opens the listener, refuses an address other machines reach without
// --allow-remote, and the listener comes back with the daemon after a kill; `web --off` closes
// it for good. Tokens: none is 401, read may list but not act (403), admin acts.
func TestWebCommand(t *testing.T) {
	h := harness.NewHome(t)
	url, admin, read := openWeb(t, h)
	if msg := h.Fail("web", "--addr", "0.0.0.0:9615"); !strings.Contains(msg, "--allow-remote") {
		t.Errorf("a wildcard address without --allow-remote: %s", msg)
	}
	if code, _ := get(t, url+"/v1/list", ""); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, body := get(t, url+"/v1/list", read); code != 200 || body != "[]\n" {
		t.Errorf("read token, list: %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", url+"/v1/kill", nil)
	req.Header.Set("Authorization", "Bearer "+read)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("read token, kill: %v %v", resp, err)
	}
	resp.Body.Close()

	h.OK("kill")
	h.OK("ping") // a new daemon
	harness.Eventually(t, 10*time.Second, "the web listener back after a daemon restart", func() bool {
		code, _ := get(t, url+"/v1/ping", admin)
		return code == 200
	})
	if got := strings.TrimSpace(h.OK("web", "token")); got != admin {
		t.Errorf("the admin token changed across a restart")
	}
	var st api.WebStatus
	if err := json.Unmarshal([]byte(h.OK("web", "status", "--json")), &st); err != nil || !st.On || st.Listening == "" {
		t.Fatalf("web status: %+v %v", st, err)
	}
	h.OK("web", "--off")
	if _, err := http.Get(url + "/v1/ping"); err == nil {
		t.Errorf("the listener still answers after web --off")
	}
	h.OK("kill")
	h.OK("ping")
	if _, err := http.Get(url + "/v1/ping"); err == nil {
		t.Errorf("web --off did not outlive the daemon")
	}
}

// `pmdaemon events` prints the stream: a restart from the CLI and a crash show up as their
// events, in order, with the instance they are about.
func TestEventsCommand(t *testing.T) {
	h := harness.NewHome(t)
	h.OK("start", "sleep 600", "--name", "ev", "--kill-timeout", "1s")
	rows := h.WaitList(30*time.Second, "ev online", harness.AllOnline("ev", 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.Bin, "events", "--json")
	cmd.Env = append(cmd.Environ(), "PMDAEMON_HOME="+h.Dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel() // ends the command
		cmd.Wait()
	}()
	events := make(chan api.Event, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev api.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
		close(events)
	}()
	// The stream opens while the command starts: restart until its first events arrive.
	var seen []string
	deadline := time.Now().Add(30 * time.Second)
	for !contains(seen, "restarting:requested") {
		if time.Now().After(deadline) {
			t.Fatalf("no restart seen; events: %v", seen)
		}
		h.OK("restart", "ev")
		seen = drain(events, seen, time.Second)
	}
	rows = h.WaitList(30*time.Second, "ev online again", harness.AllOnline("ev", 1))
	harness.Sigkill(t, rows[0].Pid)
	deadline = time.Now().Add(30 * time.Second)
	for !contains(seen, "restarting:crash") {
		if time.Now().After(deadline) {
			t.Fatalf("no crash restart seen; events: %v", seen)
		}
		seen = drain(events, seen, 200*time.Millisecond)
	}
	if i, j := index(seen, "crashed:"), index(seen, "restarting:crash"); i < 0 || i > j {
		t.Errorf("crashed should come before its restart: %v", seen)
	}
}

// drain adds what arrives within d to seen as kind:cause.
func drain(events <-chan api.Event, seen []string, d time.Duration) []string {
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return seen
			}
			seen = append(seen, ev.Kind+":"+ev.Cause)
		case <-timeout:
			return seen
		}
	}
}

func contains(xs []string, x string) bool { return index(xs, x) >= 0 }

func index(xs []string, x string) int {
	for i, s := range xs {
		if s == x {
			return i
		}
	}
	return -1
}
