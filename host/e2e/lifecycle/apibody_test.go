package lifecycle

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// post sends body as it is to the daemon's API and returns the status and the answer.
func post(t *testing.T, h *harness.Home, path, body string) (int, string) {
	t.Helper()
	a := request(t, h, "POST", path, body)
	return a.status, a.body
}

// A request body that gives a key twice in one object is refused with the key and its place,
// and changes nothing; the same body without the repeat is served. encoding/json alone would
// keep the last value without a word.
func TestAPIRefusesDuplicateKeys(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	h.OK("start", "sleep 1000", "--name", "web")
	h.WaitList(10*time.Second, "web online", harness.AllOnline("web", 1))
	cfg := h.Info("web").Config
	cfg.Name = "web2"
	good, err := json.Marshal(api.StartRequest{App: cfg.Config()})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(good, []byte(`{"app":{"name":"web2",`)) {
		t.Fatalf("unexpected encoding of a start request: %s", good)
	}
	twice := `{"app":{"name":"web3",` + strings.TrimPrefix(string(good), `{"app":{`)

	for _, tt := range []struct {
		name, path, body, want string
	}{
		{"top-level key", "/v1/stop", `{"target": "web", "target": "all"}`, `key \"target\" appears twice`},
		{"key of the app", "/v1/start", twice, `app: key \"name\" appears twice`},
		{"key of an env", "/v1/start", strings.Replace(string(good), `"name":"web2",`, `"name":"web2","env":{"A":"1","A":"2"},`, 1),
			`app.env: key \"A\" appears twice`},
		{"key in a list", "/v1/start-many", `{"apps": [{"app": {"name": "x"}}, {"if_exists": "keep", "if_exists": "update"}]}`,
			`apps[1]: key \"if_exists\" appears twice`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, answer := post(t, h, tt.path, tt.body)
			if code != http.StatusBadRequest || !strings.Contains(answer, `bad request body: `+tt.want) {
				t.Fatalf("POST %s %s: %d %s; want 400 saying %s", tt.path, tt.body, code, answer, tt.want)
			}
		})
	}
	rows := h.List()
	if len(rows) != 1 || rows[0].Name != "web" || rows[0].Status != "online" {
		t.Fatalf("a refused request changed the apps: %+v", rows)
	}
	if code, answer := post(t, h, "/v1/start", string(good)); code != http.StatusOK {
		t.Fatalf("the same start without the repeated key: %d %s", code, answer)
	}
	h.WaitList(10*time.Second, "web2 online", harness.AllOnline("web2", 1))
}
