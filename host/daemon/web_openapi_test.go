package daemon

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// Every route the document describes has a handler, and every handler is described.
func TestOpenAPIRoutesServed(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	handled := newAPIServer(&Daemon{}, &control{}).routes()
	described := map[api.Route]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			r := api.Route{Method: method, Path: path}
			described[r] = true
			if handled[r] == nil {
				t.Errorf("the document describes %s, which the daemon does not serve", r)
			}
		}
	}
	for r := range handled {
		if !described[r] {
			t.Errorf("the daemon serves %s, which the document does not describe", r)
		}
	}
}

// Real answers of a running daemon, to real requests, match the document: requests and answers
// validated by openapi3filter, errors included.
func TestOpenAPIAnswers(t *testing.T) {
	f := newWebFixture(t)
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	port := strings.Split(freeLoopback(t), ":")[1]
	start := `{"app":{"name":"oa","script":"sleep","args":["600"],"instances":1,"cwd":"` + t.TempDir() + `","kill_timeout":"1s"}}`
	calls := []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/v1/ping", "", 200},
		{"GET", "/v1/list", "", 200},
		{"POST", "/v1/start", start, 200},
		{"POST", "/v1/start", start, 409},
		{"GET", "/v1/list", "", 200},
		{"GET", "/v1/info?target=oa", "", 200},
		{"GET", "/v1/info?target=nothing", "", 404},
		{"GET", "/v1/ports", "", 200},
		{"GET", "/v1/ports/free?port=" + port, "", 200},
		{"GET", "/v1/plugins", "", 200},
		{"POST", "/v1/plugins/remove", `{"name":"nothing"}`, 404},
		{"GET", "/v1/env?id=0", "", 200},
		{"POST", "/v1/signal", `{"target":"oa","signal":"SIGCONT"}`, 200},
		{"POST", "/v1/restart", `{"target":"oa"}`, 200},
		{"POST", "/v1/reload", `{"target":"oa"}`, 200},
		{"POST", "/v1/reset", `{"target":"oa"}`, 200},
		{"POST", "/v1/scale", `{"name":"oa","instances":1}`, 200},
		{"POST", "/v1/save", "", 200},
		{"POST", "/v1/stop", `{"target":"oa"}`, 200},
		{"POST", "/v1/resurrect", "", 200},
		{"POST", "/v1/delete", `{"target":"oa"}`, 200},
		{"POST", "/v1/stop", `{"target":"oa","bogus":1}`, 400},
		{"GET", "/v1/web", "", 200},
		{"POST", "/v1/web", `{"addr":"` + f.webAddr + `"}`, 200},
		{"POST", "/v1/web/token", `{"read_only":true}`, 200},
		{"GET", "/metrics", "", 200},
		{"GET", "/v1/openapi.json", "", 200},
	}
	for _, c := range calls {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, err := http.NewRequest(c.method, f.url+c.path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+f.admin)
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s %s: not in the document: %v", c.method, c.path, err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if c.status < 400 {
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Errorf("%s %s: the request does not match the document: %v", c.method, c.path, err)
			}
		}
		if c.body != "" { // the validation read it
			req.Body = io.NopCloser(strings.NewReader(c.body))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, resp.StatusCode, c.status, b)
			continue
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(b)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s: the answer (%s) does not match the document: %v\n%.400s", c.method, c.path, strconv.Itoa(resp.StatusCode), err, b)
		}
	}
}
