package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The environment testdata/pm2import/make.sh ran PM2 in: what the shell passed on.
var fixtureShell = map[string]string{"PATH": "/usr/bin:/bin", "HOME": "/tmp/pmd-fixture/home", "LANG": "C.UTF-8"}

// Both shapes of PM2's list, from a real PM2 7 running our demo apps (make.sh), make the same
// file: one app per name, instances collapsed, PM2's state and defaults left out, env trimmed
// to what the apps were given.
func TestImportPM2(t *testing.T) {
	want, err := os.ReadFile("testdata/pm2import/want.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"dump.pm2", "jlist.json"} {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/pm2import", file))
			if err != nil {
				t.Fatal(err)
			}
			imp, err := ImportPM2(data, file, fixtureShell)
			if err != nil {
				t.Fatal(err)
			}
			if string(imp.File) != string(want) {
				t.Errorf("the file is not testdata/pm2import/want.json:\n%s", imp.File)
			}
			if got := []string{"web", "api", "shards", "worker", "pyhttp", "sleeper"}; !slices.Equal(imp.Apps, got) {
				t.Errorf("apps %v, want %v", imp.Apps, got)
			}
			for _, line := range []string{
				"dropped PM2's state of each process (pmdaemon keeps its own): ",
				"dropped env PM2 set itself (its home and mode, process ids, a variable named after each app): PM2_HOME, ",
				"dropped env inherited from the shell that ran pm2 (the same value here; a daemon started from this shell passes it on): HOME, LANG, PATH",
				"dropped PM2's default log files (pmdaemon writes $PMDAEMON_HOME/logs/NAME-INDEX-out.log and -err.log) of: web, shards, worker, pyhttp, sleeper",
				"dropped PM2's default pid files (pmdaemon writes pid files only for pid_file) of: web, shards, worker, pyhttp, sleeper",
				"dropped PM2 keys pmdaemon does not act on: vizion (worker)",
				"stopped under PM2, started by `pmdaemon run` (remove them from the file to keep them off): sleeper",
			} {
				if !slices.ContainsFunc(imp.Dropped, func(d string) bool { return strings.HasPrefix(d, line) }) {
					t.Errorf("no line %q in what was dropped:\n%s", line, strings.Join(imp.Dropped, "\n"))
				}
			}
			kinds := map[string]bool{}
			for _, d := range imp.Dropped {
				kind, _, _ := strings.Cut(d, ": ")
				if kinds[kind] {
					t.Errorf("two lines of kind %q", kind)
				}
				kinds[kind] = true
			}
		})
	}
}

// The imported file runs the apps as PM2 ran them: read by pmdaemon's loader, PM2's keys give
// the ports, interpreters and instances PM2 had.
func TestImportPM2Loads(t *testing.T) {
	data, err := os.ReadFile("testdata/pm2import/want.json")
	if err != nil {
		t.Fatal(err)
	}
	eco, err := ParseEcosystem(data, "want.json", "/")
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		script, port string
		socket       SocketMode
		instances    int
		namespace    string
		pidFile      string
		env          map[string]string
	}
	wants := map[string]want{
		"web":     {script: "/tmp/pmd-fixture/app/server.js", port: "23101", socket: SocketShared, instances: 2, namespace: "shop", env: map[string]string{"GREETING": "hello world", "NODE_ENV": "production", "PORT": "23101"}},
		"api":     {script: "/tmp/pmd-fixture/app/server.js", instances: 1, namespace: "shop", pidFile: "/tmp/pmd-fixture/run/api.pid", env: map[string]string{"PORT": "23102"}},
		"shards":  {script: "/tmp/pmd-fixture/app/server.js", port: "23110-23112", instances: 3, namespace: "default", env: map[string]string{"PORT": "23110"}},
		"worker":  {script: "python3 -u /tmp/pmd-fixture/app/worker.py", instances: 1, namespace: "default", env: map[string]string{"PATH": "/opt/worker/bin:/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}},
		"pyhttp":  {script: "python3 -m http.server 23120 --bind 127.0.0.1", instances: 1, namespace: "default"},
		"sleeper": {script: "/usr/bin/sleep", instances: 1, namespace: "default"},
	}
	if len(eco.Apps) != len(wants) {
		t.Fatalf("%d apps, want %d", len(eco.Apps), len(wants))
	}
	for _, a := range eco.Apps {
		w := wants[a.Name]
		env := a.Env
		if len(env) == 0 {
			env = nil
		}
		if a.Script != w.script || a.Port != w.port || a.Socket != w.socket || a.Instances != w.instances ||
			a.NamespaceOf() != w.namespace || a.PidFile != w.pidFile || !mapsEqual(env, w.env) {
			t.Errorf("%s: script %q port %q socket %q instances %d namespace %q pid_file %q env %v\nwant %+v",
				a.Name, a.Script, a.Port, a.Socket, a.Instances, a.NamespaceOf(), a.PidFile, a.Env, w)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// What PM2 recorded for a process's env, and which of it the app keeps.
func TestImportPM2Env(t *testing.T) {
	tests := []struct {
		name string
		env  string // the process's env, JSON
		here map[string]string
		want string // the app's env in the file, JSON; "" for none
	}{
		{name: "the user's variables stay", env: `{"PORT": 3000, "GREETING": "hi"}`, want: `{"GREETING":"hi","PORT":3000}`},
		{name: "PM2's own go", env: `{"PM2_HOME": "/root/.pm2", "PM2_USAGE": "CLI", "PM2_JSON_PROCESSING": "true", "unique_id": "x", "pm_id": 3, "app": "{}", "NODE_APP_INSTANCE": 0, "A": "1"}`, want: `{"A":"1"}`},
		{name: "the shell session's go", env: `{"PWD": "/srv", "OLDPWD": "/", "SHLVL": "2", "_": "/usr/bin/pm2"}`},
		{name: "inherited with the same value goes", env: `{"PATH": "/usr/bin", "LANG": "C"}`, here: map[string]string{"PATH": "/usr/bin", "LANG": "C"}},
		{name: "a value other than here's stays", env: `{"PATH": "/opt/bin:/usr/bin"}`, here: map[string]string{"PATH": "/usr/bin"}, want: `{"PATH":"/opt/bin:/usr/bin"}`},
		{name: "a variable this shell lacks stays", env: `{"DATABASE_URL": "postgres://db"}`, here: map[string]string{"PATH": "/usr/bin"}, want: `{"DATABASE_URL":"postgres://db"}`},
		{name: "a number equal to here's text goes", env: `{"WORKERS": 4}`, here: map[string]string{"WORKERS": "4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dump := `[{"name": "app", "pm_exec_path": "/srv/app.js", "pm_cwd": "/srv", "exec_interpreter": "node", "env": ` + tt.env + `}]`
			imp, err := ImportPM2([]byte(dump), "dump.pm2", tt.here)
			if err != nil {
				t.Fatal(err)
			}
			_, after, found := strings.Cut(compact(string(imp.File)), `"env":`)
			got := ""
			if found {
				got = after[:strings.IndexByte(after, '}')+1]
			}
			if got != tt.want {
				t.Errorf("env %s, want %s\n%s", got, tt.want, imp.File)
			}
		})
	}
}

func compact(s string) string {
	return strings.NewReplacer("\n", "", " ", "").Replace(s)
}

// Shapes of one app's processes: how the script, interpreter and files come out.
func TestImportPM2Apps(t *testing.T) {
	tests := []struct {
		name  string
		dump  string
		want  []string // substrings of the compacted file
		avoid []string
	}{
		{name: "a command line PM2 runs with bash -c is the line again",
			dump: `[{"name": "py", "pm_exec_path": "/usr/bin/bash", "args": ["-c", "python3 -m http.server 8000"], "exec_interpreter": "none", "pm_cwd": "/srv"}]`,
			want: []string{`"script":"python3-mhttp.server8000"`}, avoid: []string{`"args"`, `"interpreter"`}},
		{name: "a binary run with interpreter none is executed",
			dump: `[{"name": "bin", "pm_exec_path": "/srv/server", "exec_interpreter": "none", "pm_cwd": "/srv"}]`,
			want: []string{`"script":"/srv/server"`}, avoid: []string{`"interpreter"`}},
		{name: "a .js run with interpreter none keeps none",
			dump: `[{"name": "js", "pm_exec_path": "/srv/run.js", "exec_interpreter": "none", "pm_cwd": "/srv"}]`,
			want: []string{`"interpreter":"none"`}},
		{name: "an interpreter other than pmdaemon's pick is written",
			dump: `[{"name": "py", "pm_exec_path": "/srv/app.py", "exec_interpreter": "python3.11", "pm_cwd": "/srv"}]`,
			want: []string{`"interpreter":"python3.11"`}},
		{name: "a path with a space is quoted",
			dump: `[{"name": "sp", "pm_exec_path": "/srv/my app/run.js", "exec_interpreter": "node", "pm_cwd": "/srv"}]`,
			want: []string{`"script":"'/srv/myapp/run.js'"`}},
		{name: "PM2's -id is taken out of unmerged logs and pid files",
			dump: `[{"name": "l", "pm_exec_path": "/srv/l.js", "exec_interpreter": "node", "pm_cwd": "/srv", "env": {"PM2_HOME": "/p"},
				"pm_out_log_path": "/var/log/l-4.log", "pm_err_log_path": "/p/logs/l-error-4.log", "pm_pid_path": "/run/l-4.pid"}]`,
			want: []string{`"out_file":"/var/log/l.log"`, `"pid_file":"/run/l.pid"`}, avoid: []string{`"error_file"`}},
		{name: "merged logs are kept as named",
			dump: `[{"name": "m", "pm_exec_path": "/srv/m.js", "exec_interpreter": "node", "pm_cwd": "/srv", "merge_logs": true, "pm_out_log_path": "/var/log/m-2024.log"}]`,
			want: []string{`"out_file":"/var/log/m-2024.log"`}, avoid: []string{`"merge_logs"`}},
		{name: "two programs under one name become two apps",
			dump: `[{"name": "a", "pm_exec_path": "/srv/a.js", "exec_interpreter": "node", "pm_cwd": "/srv"},
				{"name": "a", "pm_exec_path": "/srv/b.js", "exec_interpreter": "node", "pm_cwd": "/srv"}]`,
			want: []string{`"name":"a","script":"/srv/a.js"`, `"name":"a-2","script":"/srv/b.js"`}},
		{name: "a module of jlist is not an app",
			dump: `[{"pid": 1, "name": "pm2-logrotate", "pm_id": 0, "pm2_env": {"name": "pm2-logrotate", "pm_exec_path": "/m/app.js", "pmx_module": true}},
				{"pid": 2, "name": "web", "pm_id": 1, "pm2_env": {"name": "web", "pm_exec_path": "/srv/web.js", "exec_interpreter": "node", "pm_cwd": "/srv"}}]`,
			want: []string{`"name":"web"`}, avoid: []string{`logrotate`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imp, err := ImportPM2([]byte(tt.dump), "dump.pm2", nil)
			if err != nil {
				t.Fatal(err)
			}
			got := compact(string(imp.File))
			for _, w := range tt.want {
				if !strings.Contains(got, compact(w)) {
					t.Errorf("no %s in\n%s", w, imp.File)
				}
			}
			for _, a := range tt.avoid {
				if strings.Contains(got, a) {
					t.Errorf("%s in\n%s", a, imp.File)
				}
			}
		})
	}
}

// Input that is not PM2's list is an error naming the file and what is wrong; nothing is made.
func TestImportPM2Refuses(t *testing.T) {
	tests := []struct {
		name, data, wantErr string
	}{
		{"not JSON", "PM2 is not running\n", "dump.pm2 is not PM2's process list: line 1, column 2: invalid JSON: invalid character 'P'"},
		{"truncated", `[{"name": "a"`, "dump.pm2 is not PM2's process list: the JSON ends too early"},
		{"an object", `{"apps": []}`, "dump.pm2 is not PM2's process list: want a JSON array of processes (PM2's dump.pm2 or `pm2 jlist`), got an object"},
		{"empty", `[]`, "dump.pm2 lists no processes: PM2 saved none"},
		{"not objects", `[1]`, "dump.pm2: [0] is not a PM2 process: want an object, got a number"},
		{"an ecosystem's apps", `[{"name": "web", "script": "app.js"}]`, `dump.pm2: [0] is not a PM2 process: it has no "pm_exec_path"`},
		{"no name", `[{"pm_exec_path": "/a.js"}]`, `dump.pm2: [0] is not a PM2 process: it has no "name"`},
		{"only modules", `[{"name": "m", "pm_exec_path": "/m.js", "pmx_module": true}]`, "dump.pm2 lists only PM2 modules (m), no apps"},
		{"a name pmdaemon refuses", `[{"name": "42", "pm_exec_path": "/a.js", "pm_cwd": "/"}]`, `dump.pm2 cannot be imported as it is: the ecosystem file made of it: apps[0] (42): app name "42" is not allowed: it is a number`},
		{"trailing data", `[] []`, "dump.pm2 is not PM2's process list: trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imp, err := ImportPM2([]byte(tt.data), "dump.pm2", nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one with %q", err, tt.wantErr)
			}
			if imp != nil {
				t.Errorf("an import was made: %+v", imp)
			}
		})
	}
}
