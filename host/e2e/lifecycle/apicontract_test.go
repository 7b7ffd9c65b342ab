package lifecycle

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// answer is one raw answer of the daemon's API.
type answer struct {
	status  int
	version string
	body    string
}

// request sends method path with body (none when "") as it is, over the home's socket.
func request(t *testing.T, h *harness.Home, method, path, body string) answer {
	t.Helper()
	c := h.HTTP(30 * time.Second)
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://pmdaemon"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return answer{resp.StatusCode, resp.Header.Get(api.VersionHeader), string(b)}
}

// Real bad requests over the socket are answered with a stable code, the HTTP status of that
// code, a message saying what is wrong and where, and the daemon's version; so are good ones
// (the version), and nothing a bad request asked for happens.
func TestAPIErrorContract(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	base := harness.FreePorts(t, 1)
	h.OK("start", "sleep 1000", "--name", "web", "--port", fmt.Sprint(base))
	h.WaitList(10*time.Second, "web online", harness.AllOnline("web", 1))
	cfg := h.Info("web").Config
	if cfg.KillTimeout.String() != "5s" {
		t.Errorf("info shows kill_timeout %v, want the default 5s", cfg.KillTimeout)
	}
	again, err := json.Marshal(api.StartRequest{App: cfg.Config()})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name = "other"
	samePort, err := json.Marshal(api.StartRequest{App: cfg.Config()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     api.Code
		message                  string // the whole message, or its start when it ends in "..."
	}{
		{"unknown route", "GET", "/v1/nope", "", 404, api.CodeNotFound, "no API endpoint GET /v1/nope"},
		{"unknown method", "DELETE", "/v1/list", "", 404, api.CodeNotFound, "no API endpoint DELETE /v1/list"},
		{"bad JSON", "POST", "/v1/start", `{"app": `, 400, api.CodeInvalid, "bad request body: unexpected EOF"},
		{"unknown field", "POST", "/v1/stop", `{"target": "web", "force": true}`, 400, api.CodeInvalid,
			`bad request body: json: unknown field "force"`},
		{"bad duration", "POST", "/v1/restart", `{"target": "web", "wait_timeout": "soon"}`, 400, api.CodeInvalid,
			`bad request body: json: cannot unmarshal "soon" (a duration is a string such as "1.5s" or "500ms", or a whole number of nanoseconds) into Go struct field TargetRequest.wait_timeout of type api.Duration`},
		{"not-found target", "POST", "/v1/stop", `{"target": "ghost"}`, 404, api.CodeNotFound, "process 'ghost' not found"},
		{"not-found info", "GET", "/v1/info?target=ghost", "", 404, api.CodeNotFound, "process 'ghost' not found"},
		{"not-found plugin", "POST", "/v1/plugins/remove", `{"name": "ghost"}`, 404, api.CodeNotFound, "plugin 'ghost' not found"},
		{"conflicting start", "POST", "/v1/start", string(again), 409, api.CodeConflict,
			"process 'web' already exists; restart it, or delete it first"},
		{"port held", "POST", "/v1/start", string(samePort), 409, api.CodeConflict,
			fmt.Sprintf("Port %d is already assigned to process 'web'", base)},
		{"too large", "POST", "/v1/start-many", `{"apps": [` + strings.Repeat(" ", 5<<20) + `]}`, 413, api.CodeTooLarge,
			"request body is larger than 4 MiB, the daemon's limit for one request..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := request(t, h, tt.method, tt.path, tt.body)
			var e struct {
				Code    api.Code `json:"code"`
				Message string   `json:"message"`
			}
			if err := json.Unmarshal([]byte(a.body), &e); err != nil {
				t.Fatalf("answer %d %q is not an API error: %v", a.status, a.body, err)
			}
			msgOK := e.Message == tt.message
			if start, ok := strings.CutSuffix(tt.message, "..."); ok {
				msgOK = strings.HasPrefix(e.Message, start)
			}
			if a.status != tt.status || e.Code != tt.code || !msgOK {
				t.Errorf("answer %d %s %q\nwant   %d %s %q", a.status, e.Code, e.Message, tt.status, tt.code, tt.message)
			}
			if a.version != api.Version {
				t.Errorf("version header %q, want %q", a.version, api.Version)
			}
		})
	}
	if rows := h.List(); len(rows) != 1 || rows[0].Name != "web" || rows[0].Status != "online" {
		t.Errorf("bad requests changed the apps: %+v", rows)
	}
	// Good answers carry the version too, and are the named types of host/api.
	a := request(t, h, "POST", "/v1/save", "")
	var saved api.Saved
	if err := json.Unmarshal([]byte(a.body), &saved); a.status != 200 || err != nil || saved.Path != filepath.Join(h.Dir, "dump.json") || a.version != api.Version {
		t.Errorf("save: %d %q (version %q)", a.status, a.body, a.version)
	}
	// The CLI shows the daemon's message as it was.
	harness.ErrLike(t, h.Fail("stop", "ghost"), "process 'ghost' not found")
}
