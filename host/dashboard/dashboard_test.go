package dashboard

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Each file is served with its type and the security headers; anything else is 404, and
// anything but GET or HEAD 405.
func TestServes(t *testing.T) {
	for _, c := range []struct {
		method, path string
		status       int
		ctype, has   string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<script src="/ui/dashboard.js" defer>`},
		{"GET", "/?token=abc", 200, "text/html; charset=utf-8", "<table id=\"instances\">"},
		{"GET", "/ui/dashboard.js", 200, "text/javascript; charset=utf-8", "'use strict';"},
		{"GET", "/ui/dashboard.css", 200, "text/css; charset=utf-8", "#log-tail"},
		{"GET", "/ui/icon.svg", 200, "image/svg+xml", "<svg"},
		{"HEAD", "/ui/dashboard.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/ui/", 404, "", "no such file of the dashboard: /ui/"},
		{"GET", "/ui/nothing.js", 404, "", "no such file"},
		{"GET", "/ui/../dashboard.go", 404, "", "no such file"},
		{"GET", "/ui/static/index.html", 404, "", "no such file"},
		{"POST", "/", 405, "", "read with GET"},
		{"DELETE", "/ui/dashboard.js", 405, "", "read with GET"},
	} {
		resp, body := get(t, c.method, c.path)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d (%s)", c.method, c.path, resp.StatusCode, c.status, body)
			continue
		}
		if c.ctype != "" && resp.Header.Get("Content-Type") != c.ctype {
			t.Errorf("%s %s: Content-Type %q, want %q", c.method, c.path, resp.Header.Get("Content-Type"), c.ctype)
		}
		if !strings.Contains(body, c.has) {
			t.Errorf("%s %s: body lacks %q:\n%.300s", c.method, c.path, c.has, body)
		}
		for k, v := range securityHeaders {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s %s: %s is %q, want %q", c.method, c.path, k, got, v)
			}
		}
	}
}

func TestServesPaths(t *testing.T) {
	for path, want := range map[string]bool{
		"/": true, "/ui/dashboard.js": true, "/ui/": true,
		"/v1/list": false, "/metrics": false, "/index.html": false, "/uix": false, "": false,
	} {
		if Serves(path) != want {
			t.Errorf("Serves(%q) = %v, want %v", path, !want, want)
		}
	}
}

// The policy allows only the page's own script and style: the HTML must hold no inline
// script, style or event handler, and no file may load anything from elsewhere, or the browser
// refuses it (and the page breaks where the policy is enforced).
func TestNoInlineCode(t *testing.T) {
	page, err := static.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	scripts := regexp.MustCompile(`<script([^>]*)>([^<]*)</script>`).FindAllStringSubmatch(string(page), -1)
	if len(scripts) == 0 {
		t.Fatal("index.html has no script")
	}
	for _, m := range scripts {
		if !strings.Contains(m[1], `src="/ui/`) || strings.TrimSpace(m[2]) != "" {
			t.Errorf("index.html: %s is not a script of /ui/ without a body", m[0])
		}
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`<style`), regexp.MustCompile(`\sstyle=`), regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`javascript:`),
	} {
		if re.Match(page) {
			t.Errorf("index.html: %q is inline code, which the Content-Security-Policy refuses", re.Find(page))
		}
	}
	elsewhere := regexp.MustCompile(`(?:src=|href=|url\(|fetch\()["']?(?:[a-z]+:)?//`)
	err = fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(path)
		if err == nil && elsewhere.Match(b) {
			t.Errorf("%s: %q loads from elsewhere; the page loads only its own files", path, elsewhere.Find(b))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
