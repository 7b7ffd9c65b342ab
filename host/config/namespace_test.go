package config

import (
	"strings"
	"testing"
)

func TestNamespaceAndPidFileKeys(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr string // "" when the file loads
		ns      string
		pidFile string
	}{
		{name: "none", json: `{}`, ns: DefaultNamespace},
		{name: "namespace", json: `{"namespace": "shop"}`, ns: "shop"},
		{name: "pid_file relative to cwd", json: `{"pid_file": "run/web.pid"}`, ns: DefaultNamespace, pidFile: "/srv/app/run/web.pid"},
		{name: "PM2's alias pid", json: `{"pid": "/run/web.pid"}`, ns: DefaultNamespace, pidFile: "/run/web.pid"},
		{name: "numeric namespace", json: `{"namespace": "12"}`, wantErr: `namespace "12" is not allowed: it is a number`},
		{name: "namespace all", json: `{"namespace": "all"}`, wantErr: `namespace "all" is not allowed`},
		{name: "namespace with a slash", json: `{"namespace": "a/b"}`, wantErr: `namespace "a/b" is not allowed: it contains '/'`},
		{name: "empty namespace", json: `{"namespace": " "}`, wantErr: `"namespace" must be a non-empty string`},
		{name: "namespace not a string", json: `{"namespace": 3}`, wantErr: `"namespace" must be a non-empty string, got a number`},
		{name: "pid_file a directory", json: `{"pid_file": "/run/"}`, wantErr: `pid_file "/run/" names a directory`},
		{name: "pid_file and pid", json: `{"pid_file": "a.pid", "pid": "b.pid"}`, wantErr: `"pid_file" and "pid" are the same key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := strings.Replace(tt.json, "{", `{"name": "web", "script": "node app.js", "cwd": "/srv/app", `, 1)
			app = strings.Replace(app, ", }", "}", 1)
			apps, err := ParseJSON([]byte(`{"apps": [`+app+`]}`), "eco.json", "/srv")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "eco.json: apps[0] (web)") {
					t.Errorf("error %q does not say where", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := apps[0].NamespaceOf(); got != tt.ns {
				t.Errorf("namespace %q, want %q", got, tt.ns)
			}
			if apps[0].PidFile != tt.pidFile {
				t.Errorf("pid_file %q, want %q", apps[0].PidFile, tt.pidFile)
			}
		})
	}
}

// PidFileOf follows PM2: a name ending in .pid, or in -N.pid, gets -<id>.pid; another name is
// the same file for every instance.
func TestPidFileOf(t *testing.T) {
	tests := []struct {
		pattern, cwd string
		id           int
		want         string
	}{
		{"/run/web.pid", "/srv", 3, "/run/web-3.pid"},
		{"/run/web-7.pid", "/srv", 3, "/run/web-3.pid"},
		{"run/web.pid", "/srv", 0, "/srv/run/web-0.pid"},
		{"/run/web.lock", "/srv", 3, "/run/web.lock"},
		{"/run/web.pidfile", "/srv", 3, "/run/web.pidfile"},
		{"", "/srv", 3, ""},
	}
	for _, tt := range tests {
		if got := PidFileOf(tt.pattern, tt.cwd, tt.id); got != tt.want {
			t.Errorf("PidFileOf(%q, %q, %d) = %q, want %q", tt.pattern, tt.cwd, tt.id, got, tt.want)
		}
	}
}
