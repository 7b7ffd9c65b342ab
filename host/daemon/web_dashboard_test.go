package daemon

import (
	"net/http"
	"strings"
	"testing"
)

// The web listener serves the dashboard's page and files without a token (they hold no data)
// and with its security headers; the API behind it still answers 401 without one.
func TestWebServesDashboard(t *testing.T) {
	f := newWebFixture(t)
	for _, c := range []struct {
		method, path, token string
		status              int
		has                 string
	}{
		{"GET", "/", "", http.StatusOK, `<script src="/ui/dashboard.js"`},
		{"GET", "/?token=whatever", "", http.StatusOK, `<table id="instances">`},
		{"GET", "/ui/dashboard.js", "", http.StatusOK, "Authorization"},
		{"GET", "/ui/missing.js", "", http.StatusNotFound, "no such file"},
		{"POST", "/", f.admin, http.StatusMethodNotAllowed, "GET"},
		{"GET", "/v1/list", "", http.StatusUnauthorized, "no valid token"},
		{"GET", "/v1/list", f.read, http.StatusOK, "["},
		{"GET", "/index.html", f.admin, http.StatusNotFound, "no API endpoint"},
	} {
		resp, body := f.do(t, c.method, c.path, c.token, nil)
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.has) {
			t.Errorf("%s %s: %d %.200s; want %d with %q", c.method, c.path, resp.StatusCode, body, c.status, c.has)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if page := c.path == "/" || strings.HasPrefix(c.path, "/ui/") || strings.HasPrefix(c.path, "/?"); page != strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s %s: Content-Security-Policy %q", c.method, c.path, csp)
		}
	}
}
