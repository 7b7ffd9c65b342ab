// Package dashboard is the web dashboard that `pmdaemon web` serves at /: a few static files
// embedded in the binary (plain HTML, CSS and JavaScript; nothing to build), which talk to the
// daemon through the same API as every other client, with the token the page was opened with.
// docs/dashboard.md describes it.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// assetPrefix is where the page's scripts and styles are served; the page itself is at /.
const assetPrefix = "/ui/"

// securityHeaders go on every answer of the dashboard. The page runs only its own script and
// style (no inline code, nothing from elsewhere), may only talk to this listener, cannot be
// framed, and sends no Referer: the first load's URL carries the token.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options":       "nosniff",
	"X-Frame-Options":              "DENY",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
	// The page's URL may hold the token on its first load: keep no copy of the answer.
	"Cache-Control": "no-store",
}

// Serves reports whether urlPath is the dashboard's (the page or one of its files) rather than
// the API's. Those paths are served without a token: they hold no data, only the code that
// asks the API for it with the token.
func Serves(urlPath string) bool {
	return urlPath == "/" || strings.HasPrefix(urlPath, assetPrefix)
}

// Handler serves the page at / and its files under /ui/.
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range securityHeaders {
			h.Set(k, v)
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "the dashboard's files are read with GET", http.StatusMethodNotAllowed)
			return
		}
		name := "index.html"
		if r.URL.Path != "/" {
			name = strings.TrimPrefix(path.Clean(r.URL.Path), assetPrefix)
		}
		b, err := fs.ReadFile(files, name)
		if strings.Contains(name, "/") || err != nil { // only the files at the top of static/
			http.Error(w, "no such file of the dashboard: "+r.URL.Path, http.StatusNotFound)
			return
		}
		h.Set("Content-Type", contentType(name))
		w.Write(b)
	})
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}
