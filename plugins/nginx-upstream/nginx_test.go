package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// TestNginxAcceptsOutput runs `nginx -t` on a configuration that includes the generated file
// inside http {} and proxies to every upstream, to prove the file is valid nginx syntax.
func TestNginxAcceptsOutput(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx, err = exec.LookPath("/usr/sbin/nginx")
	}
	if err != nil {
		t.Fatal("this test needs nginx (.ci/run installs it: apt-get install -y nginx):", err)
	}
	tests := []struct {
		name  string
		extra string
		live  map[string][]int
	}{
		{"all down", "", nil},
		{"some live", "", map[string][]int{"web": {8000, 8001, 8002}}},
		{"all live", "", map[string][]int{"web": {8000}, "api": {7000, 7001}}},
		{"IPv6, params", `"host": "::1", "server_params": "max_fails=3 fail_timeout=5s weight=2"`, map[string][]int{"web": {8000}}},
		{"no params", `"server_params": ""`, map[string][]int{"api": {7000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			output := filepath.Join(dir, "upstreams.conf")
			h := &Hook{}
			doc := fmt.Sprintf(`{"output": %q, "upstreams": {"web": "web_backend", "api": "api.v1"}`, output)
			if tt.extra != "" {
				doc += ", " + tt.extra
			}
			if err := h.Configure(context.Background(), json.RawMessage(doc+"}")); err != nil {
				t.Fatal(err)
			}
			for app, ports := range tt.live {
				if _, err := h.Handle(context.Background(), sdk.Event{Kind: sdk.Started, App: app, AppPorts: ports}); err != nil {
					t.Fatal(err)
				}
			}
			conf := fmt.Sprintf(`pid %s;
error_log %s;
events {}
http {
%s    access_log off;
    include %s;
    server {
        listen 127.0.0.1:18080;
        location /web/ { proxy_pass http://web_backend; }
        location /api/ { proxy_pass http://api.v1; }
    }
}
`, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"), tempPaths(dir), output)
			confPath := filepath.Join(dir, "nginx.conf")
			if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(nginx, "-t", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath).CombinedOutput()
			if err != nil {
				b, _ := os.ReadFile(output)
				t.Fatalf("nginx -t: %v\n%s\ngenerated file:\n%s", err, out, b)
			}
			if !strings.Contains(string(out), "test is successful") {
				t.Errorf("nginx -t said:\n%s", out)
			}
		})
	}
}

// tempPaths are the http {} directives that keep nginx's temporary files in dir (its defaults
// are system directories a test may not write).
func tempPaths(dir string) string {
	var temps strings.Builder
	for _, kind := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "    %s_temp_path %s;\n", kind, filepath.Join(dir, kind))
	}
	return temps.String()
}
