package nomad

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/export"
	"github.com/pmdaemon/pmdaemon/host/export/exporttest"
)

// goldenName is a source's golden file stem: examples/plugins/ecosystem.lua →
// examples-plugins-ecosystem.lua.
func goldenName(src string) string { return strings.ReplaceAll(src, "/", "-") }

// Each example becomes a job whose JSON decodes strictly into the nomad/api types, whose HCL
// re-parses with hcl/v2 into the same job and is what hclwrite writes for it, which keeps
// Nomad's registration rules; and the three outputs (HCL, JSON, the report) match their
// golden files.
func TestGolden(t *testing.T) {
	for _, rel := range exporttest.Sources {
		t.Run(goldenName(rel), func(t *testing.T) {
			src := exporttest.Load(t, rel)
			job, report, err := Build(src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			src.Merge(report)
			hclOut, err := HCL(job)
			if err != nil {
				t.Fatal(err)
			}
			jsonOut, err := JSON(job)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON := roundTrip(t, hclOut, jsonOut)
			if len(fromJSON.TaskGroups) < len(src.Apps) {
				t.Errorf("%d groups for %d apps", len(fromJSON.TaskGroups), len(src.Apps))
			}
			dir := filepath.Join("testdata", "golden")
			exporttest.CheckGolden(t, filepath.Join(dir, goldenName(rel)+".hcl"), hclOut)
			exporttest.CheckGolden(t, filepath.Join(dir, goldenName(rel)+".json"), jsonOut)
			exporttest.CheckGolden(t, filepath.Join(dir, goldenName(rel)+".report"), exporttest.ReportText(src.Report))
		})
	}
}

// roundTrip decodes both forms, checks they are one job, that the HCL is hclwrite's for it,
// and that the job keeps Nomad's rules.
func roundTrip(t *testing.T, hclOut, jsonOut []byte) *api.Job {
	t.Helper()
	fromJSON, err := DecodeJSON(jsonOut)
	if err != nil {
		t.Fatalf("the JSON does not decode strictly into api.Job: %v\n%s", err, jsonOut)
	}
	fromHCL, err := DecodeHCL(hclOut)
	if err != nil {
		t.Fatalf("the HCL does not re-parse into api.Job: %v\n%s", err, hclOut)
	}
	if !reflect.DeepEqual(fromHCL, fromJSON) {
		a, _ := json.MarshalIndent(fromHCL, "", "  ")
		t.Fatalf("the HCL and the JSON are different jobs:\n--- from HCL\n%s\n--- from JSON\n%s", a, jsonOut)
	}
	ref, err := referenceHCL(fromJSON)
	if err != nil {
		t.Fatalf("hclwrite cannot write the job: %v", err)
	}
	if !bytes.Equal(hclOut, ref) {
		t.Fatalf("the HCL is not what hclwrite writes for the job:\n--- HCL\n%s\n--- hclwrite\n%s", hclOut, ref)
	}
	if err := CheckRules(fromJSON); err != nil {
		t.Fatalf("the job breaks Nomad's rules:\n%v", err)
	}
	return fromJSON
}

func app(mod func(a *config.App)) config.App {
	a := config.NewApp()
	a.Name, a.Script, a.Cwd = "web", "./server", "/srv/web"
	mod(&a)
	if err := a.Validate(); err != nil {
		panic(err)
	}
	return a
}

func group(t *testing.T, job *api.Job, name string) *api.TaskGroup {
	t.Helper()
	for _, g := range job.TaskGroups {
		if *g.Name == name {
			return g
		}
	}
	t.Fatalf("no group %q", name)
	return nil
}

// How each pmdaemon concept lands in the job (the table in docs/scaling-out.md).
func TestMapping(t *testing.T) {
	tests := []struct {
		name  string
		app   config.App
		opts  Options
		check func(t *testing.T, job *api.Job, r export.Report)
	}{
		{"fixed port: a static port, PORT set", app(func(a *config.App) { a.Port = "3000" }), Options{}, func(t *testing.T, job *api.Job, r export.Report) {
			g := group(t, job, "web")
			if *g.Count != 1 || g.Networks[0].ReservedPorts[0] != (api.Port{Label: "port", Value: 3000}) {
				t.Errorf("count %d, ports %+v", *g.Count, g.Networks[0])
			}
			task := g.Tasks[0]
			if task.Env["PORT"] != "3000" || task.Config["command"] != "/srv/web/server" || task.Config["work_dir"] != "/srv/web" || task.Driver != "raw_exec" {
				t.Errorf("task %+v", task)
			}
			if s := task.Services[0]; s.Name != "web" || s.PortLabel != "port" || s.Provider != "nomad" {
				t.Errorf("service %+v", s)
			}
		}},
		{"range: a group per instance, each with its static port", app(func(a *config.App) { a.Port, a.Instances = "3000-3002", 3 }), Options{}, func(t *testing.T, job *api.Job, r export.Report) {
			for i, port := range []int{3000, 3001, 3002} {
				g := group(t, job, "web-"+string(rune('0'+i)))
				if *g.Count != 1 || g.Networks[0].ReservedPorts[0].Value != port || g.Tasks[0].Env["NODE_APP_INSTANCE"] != string(rune('0'+i)) {
					t.Errorf("instance %d: %+v %+v", i, g.Networks[0], g.Tasks[0].Env)
				}
			}
		}},
		{"auto: a dynamic port read from NOMAD_PORT", app(func(a *config.App) { a.Port, a.Instances = "auto:5000-5100", 3 }), Options{}, func(t *testing.T, job *api.Job, r export.Report) {
			g := group(t, job, "web")
			if *g.Count != 3 || len(g.Networks[0].DynamicPorts) != 1 || len(g.Networks[0].ReservedPorts) != 0 {
				t.Errorf("count %d, network %+v", *g.Count, g.Networks[0])
			}
			if env := g.Tasks[0].Env; env["PORT"] != "${NOMAD_PORT_port}" || env["NODE_APP_INSTANCE"] != "${NOMAD_ALLOC_INDEX}" {
				t.Errorf("env %v", env)
			}
			wantLine(t, r.Changed, "dynamic port", "5000-5100")
		}},
		{"no port: no network, no service", app(func(a *config.App) { a.Instances = 2 }), Options{}, func(t *testing.T, job *api.Job, r export.Report) {
			g := group(t, job, "web")
			if g.Networks != nil || g.Tasks[0].Services != nil || *g.Count != 2 {
				t.Errorf("group %+v", g)
			}
			if _, ok := g.Tasks[0].Env["PORT"]; ok {
				t.Error("PORT set for an app without a port")
			}
		}},
		{"restart policy, kill timeout, memory, logs", app(func(a *config.App) {
			a.MaxRestarts, a.MinUptime, a.RestartDelay, a.KillTimeout = 4, 2*time.Second, time.Second, 8*time.Second
			a.MaxMemoryRestart, a.LogMaxSize, a.LogKeep = 300<<20+1, 1<<20, 7
		}), Options{}, func(t *testing.T, job *api.Job, r export.Report) {
			g := group(t, job, "web")
			rp := g.RestartPolicy
			if *rp.Attempts != 4 || *rp.Delay != time.Second || *rp.Interval != 12*time.Second || *rp.Mode != "fail" {
				t.Errorf("restart %+v", rp)
			}
			task := g.Tasks[0]
			if *task.KillTimeout != 8*time.Second || *task.Resources.MemoryMB != 301 || *task.LogConfig.MaxFiles != 7 || *task.LogConfig.MaxFileSizeMB != 1 {
				t.Errorf("task %+v %+v %+v", task, task.Resources, task.LogConfig)
			}
		}},
		{"autorestart false: no attempts", app(func(a *config.App) { a.Autorestart = false }), Options{}, func(t *testing.T, job *api.Job, r export.Report) {
			if rp := group(t, job, "web").RestartPolicy; *rp.Attempts != 0 || *rp.Mode != "fail" {
				t.Errorf("restart %+v", rp)
			}
		}},
		{"http health check: a service check that restarts", app(func(a *config.App) {
			a.Port = "auto:5000-5100"
			a.HealthCheck = config.NewHealthCheck()
			a.HealthCheck.URL, a.HealthCheck.Retries = "https://127.0.0.1:{port}/up", 5
		}), Options{}, func(t *testing.T, job *api.Job, r export.Report) {
			c := group(t, job, "web").Tasks[0].Services[0].Checks[0]
			if c.Type != "http" || c.Path != "/up" || c.Protocol != "https" || c.CheckRestart.Limit != 5 || c.Interval != config.DefaultHealthInterval {
				t.Errorf("check %+v", c)
			}
		}},
		{"script health check: a Consul script check", app(func(a *config.App) {
			a.Port = "4000"
			a.HealthCheck = config.NewHealthCheck()
			a.HealthCheck.Script = "check --port {port}"
		}), Options{}, func(t *testing.T, job *api.Job, r export.Report) {
			s := group(t, job, "web").Tasks[0].Services[0]
			c := s.Checks[0]
			if s.Provider != "consul" || c.Type != "script" || c.Command != "check" || !reflect.DeepEqual(c.Args, []string{"--port", "${NOMAD_PORT_port}"}) {
				t.Errorf("service %+v check %+v", s, c)
			}
			wantLine(t, r.Changed, "Consul")
		}},
		{"interpreters and shell lines run by name through env", app(func(a *config.App) { a.Script, a.Args = "app.py", []string{"-v"} }), Options{}, func(t *testing.T, job *api.Job, r export.Report) {
			cfg := group(t, job, "web").Tasks[0].Config
			if cfg["command"] != "/usr/bin/env" || !reflect.DeepEqual(cfg["args"], []any{"python3", "/srv/web/app.py", "-v"}) {
				t.Errorf("config %v", cfg)
			}
		}},
		{"shell syntax: /bin/sh -c", app(func(a *config.App) { a.Script = "npm run build && npm start" }), Options{}, func(t *testing.T, job *api.Job, r export.Report) {
			cfg := group(t, job, "web").Tasks[0].Config
			if cfg["command"] != "/bin/sh" || !reflect.DeepEqual(cfg["args"], []any{"-c", "npm run build && npm start"}) {
				t.Errorf("config %v", cfg)
			}
		}},
		{"an image: the docker driver with the group's ports", app(func(a *config.App) { a.Port = "8080" }), Options{Image: "registry.example/web:1"}, func(t *testing.T, job *api.Job, r export.Report) {
			task := group(t, job, "web").Tasks[0]
			if task.Driver != "docker" || task.Config["image"] != "registry.example/web:1" || task.Config["command"] != "/srv/web/server" || !reflect.DeepEqual(task.Config["ports"], []any{"port"}) {
				t.Errorf("task %+v", task)
			}
		}},
		{"a shared socket: one port, every instance on it", app(func(a *config.App) { a.Port, a.Instances, a.Socket = "7000", 4, config.SocketShared }), Options{}, func(t *testing.T, job *api.Job, r export.Report) {
			g := group(t, job, "web")
			if *g.Count != 4 || g.Networks[0].ReservedPorts[0].Value != 7000 {
				t.Errorf("group %+v", g)
			}
			wantLine(t, r.Dropped, "socket", "bind $PORT itself")
			wantLine(t, r.Changed, "different clients")
		}},
		{"keys with no place in Nomad are listed", app(func(a *config.App) {
			a.Watch, a.CronRestart, a.EnvFile, a.StopExitCodes = []string{"src"}, "0 * * * *", []string{".env"}, []int{0}
		}), Options{}, func(t *testing.T, job *api.Job, r export.Report) {
			for _, key := range []string{"watch", "cron_restart", "env_file", "stop_exit_codes"} {
				wantLine(t, r.Dropped, key)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			built, report, err := Build(&export.Source{Name: "test", Apps: []config.App{tt.app}}, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			hclOut, err := HCL(built)
			if err != nil {
				t.Fatal(err)
			}
			jsonOut, err := JSON(built)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, roundTrip(t, hclOut, jsonOut), report) // what the JSON says, which the HCL says too
		})
	}
}

func wantLine(t *testing.T, lines []string, words ...string) {
	t.Helper()
	for _, l := range lines {
		all := true
		for _, w := range words {
			all = all && strings.Contains(l, w)
		}
		if all {
			return
		}
	}
	t.Errorf("no line with %q in:\n%s", words, strings.Join(lines, "\n"))
}

// The checks that make the round trip meaningful fail on what they are meant to catch.
func TestDecodersRefuse(t *testing.T) {
	for _, tt := range []struct {
		name, doc string
		hcl       bool
		want      string
	}{
		{"json: a field nomad/api does not have", `{"Job": {"ID": "x", "Groups": []}}`, false, `unknown field "Groups"`},
		{"json: trailing data", `{"Job": {"ID": "x"}} {}`, false, "trailing"},
		{"hcl: an attribute Nomad does not have", "job \"x\" {\n  kount = 1\n}\n", true, `attribute "kount" is not in Nomad's schema`},
		{"hcl: a block Nomad does not have", "job \"x\" {\n  grop \"a\" {\n  }\n}\n", true, `block "grop" is not in Nomad's schema`},
		{"hcl: a wrong type", "job \"x\" {\n  group \"a\" {\n    count = \"two\"\n  }\n}\n", true, "want a number"},
		{"hcl: not HCL", "job \"x\" {", true, "Unclosed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.hcl {
				_, err = DecodeHCL([]byte(tt.doc))
			} else {
				_, err = DecodeJSON([]byte(tt.doc))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v; want one with %q", err, tt.want)
			}
		})
	}
	bad := &api.Job{ID: new("x"), TaskGroups: []*api.TaskGroup{{Name: new("g"), Count: new(1),
		RestartPolicy: &api.RestartPolicy{Attempts: new(10), Delay: new(time.Second), Interval: new(5 * time.Second), Mode: new("fail")},
		Tasks:         []*api.Task{{Name: "t", Driver: "raw_exec", Config: map[string]any{"command": "node"}, Services: []*api.Service{{Name: "My_Svc"}}}}}}}
	err := CheckRules(bad)
	for _, want := range []string{"do not fit in interval", "absolute command", "not a valid Nomad service name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckRules: %v; want %q", err, want)
		}
	}
	onlyPrestart := &api.Job{ID: new("x"), TaskGroups: []*api.TaskGroup{{Name: new("g"), Count: new(1), Tasks: []*api.Task{{
		Name: "t", Driver: "raw_exec", Config: map[string]any{"command": "/bin/true"}, Lifecycle: &api.TaskLifecycle{Hook: "prestrat"},
		RestartPolicy: &api.RestartPolicy{Attempts: new(1), Interval: new(time.Second), Mode: new("fail")}}}}}}
	err = CheckRules(onlyPrestart)
	for _, want := range []string{`lifecycle hook "prestrat"`, "none is the main task", `task "t": restart interval 1s is under 5s`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckRules: %v; want %q", err, want)
		}
	}
}

// Two apps whose names convert to one service label get distinct labels, and the same ones
// every time.
func TestServiceNamesDistinctAndStable(t *testing.T) {
	a := app(func(a *config.App) { a.Name, a.Port = "Web_1", "3000" })
	b := app(func(a *config.App) { a.Name, a.Port = "web.1", "3001" })
	var names [2][]string
	for run := range 2 {
		job, _, err := Build(&export.Source{Name: "t", Apps: []config.App{a, b}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range job.TaskGroups {
			names[run] = append(names[run], g.Tasks[0].Services[0].Name)
		}
	}
	if names[0][0] == names[0][1] || !reflect.DeepEqual(names[0], names[1]) || names[0][0] != "web-1" {
		t.Errorf("service names %v", names)
	}
}

// depends_on: a migration that others wait for to complete runs as a prestart task of each of
// their groups; every other dependency is reported, never dropped silently.
func TestDependsOn(t *testing.T) {
	migrate := app(func(a *config.App) { a.Name, a.Script, a.Autorestart = "migrate", "./migrate", false })
	db := app(func(a *config.App) { a.Name, a.Script, a.Port = "db", "./db", "5432" })
	withPort := app(func(a *config.App) { a.Name, a.Script, a.Port, a.Autorestart = "seed", "./seed", "7000", false })
	server := app(func(a *config.App) {
		a.Name, a.Port, a.Instances = "server", "3000-3001", 2
		a.DependsOn = []config.Dependency{{App: "migrate", Condition: config.DependCompleted}, {App: "db", Condition: config.DependReady}}
	})
	worker := app(func(a *config.App) {
		a.Name = "worker"
		a.DependsOn = []config.Dependency{{App: "seed", Condition: config.DependCompleted}}
	})
	job, report := buildAndCheck(t, []config.App{server, migrate, db, withPort, worker})
	for _, g := range job.TaskGroups {
		if *g.Name == "migrate" {
			t.Error("migrate has a group of its own")
		}
	}
	for _, name := range []string{"server-0", "server-1"} {
		tasks := group(t, job, name).Tasks
		if len(tasks) != 2 || tasks[0].Name != "migrate" || tasks[1].Name != "server" || tasks[1].Lifecycle != nil {
			t.Fatalf("%s: tasks %+v", name, tasks)
		}
		pre := tasks[0]
		if pre.Lifecycle == nil || pre.Lifecycle.Hook != "prestart" || pre.Lifecycle.Sidecar || pre.Config["command"] != "/srv/web/migrate" ||
			pre.RestartPolicy == nil || *pre.RestartPolicy.Attempts != 0 || *pre.RestartPolicy.Mode != "fail" || pre.Env["NODE_APP_INSTANCE"] != "0" {
			t.Errorf("%s: prestart task %+v", name, pre)
		}
	}
	if len(group(t, job, "seed").Tasks) != 1 || len(group(t, job, "worker").Tasks) != 1 {
		t.Error("seed, which has a port, did not keep its own group")
	}
	wantLine(t, report.Changed, `app "migrate" runs as a prestart task before server`)
	wantLine(t, report.Dropped, `app "server": depends_on db (ready)`, "server must wait for db itself")
	wantLine(t, report.Dropped, `app "worker": depends_on seed (completed_successfully)`, "cannot run before it")

	// Exported alone, the app's dependencies are not there: each is named.
	_, alone := buildAndCheck(t, []config.App{server})
	wantLine(t, alone.Dropped, "depends_on migrate (completed_successfully): migrate is not part of this export")
}

// buildAndCheck builds the job of apps, checks it as roundTrip does, and returns what its JSON
// decodes to.
func buildAndCheck(t *testing.T, apps []config.App) (*api.Job, export.Report) {
	t.Helper()
	built, report, err := Build(&export.Source{Name: "test", Apps: apps}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hclOut, err := HCL(built)
	if err != nil {
		t.Fatal(err)
	}
	jsonOut, err := JSON(built)
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, hclOut, jsonOut), report
}
