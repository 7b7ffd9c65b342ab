package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDependsOnRead(t *testing.T) {
	tests := []struct {
		name, value string
		want        []Dependency
		wantErr     []string
	}{
		{"list", `["db", "cache"]`, []Dependency{{"db", DependStarted}, {"cache", DependStarted}}, nil},
		{"object", `{"db": {"condition": "ready"}, "migrate": {"condition": "completed_successfully"}}`,
			[]Dependency{{"db", DependReady}, {"migrate", DependCompleted}}, nil},
		{"condition alone", `{"db": "ready"}`, []Dependency{{"db", DependReady}}, nil},
		{"no condition", `{"db": {}}`, []Dependency{{"db", DependStarted}}, nil},
		{"process-compose names", `{"a": {"condition": "process_started"}, "b": {"condition": "process_healthy"}, "c": {"condition": "process_completed_successfully"}}`,
			[]Dependency{{"a", DependStarted}, {"b", DependReady}, {"c", DependCompleted}}, nil},
		{"bad condition", `{"db": {"condition": "healthy"}}`, nil,
			[]string{`apps[0] (web)`, `"depends_on"`, `"db"`, `condition must be "started", "ready" or "completed_successfully", got a string ("healthy")`}},
		{"unknown key", `{"db": {"conditon": "ready"}}`, nil, []string{`"depends_on"`, `unknown key "conditon"`, "condition"}},
		{"not a name", `["db", 3]`, nil, []string{`"depends_on"`, `[1] must be an app name, got a number ("3")`}},
		{"a string", `"db"`, nil, []string{`"depends_on" must be an array of app names or an object`, "got a string"}},
		{"itself", `["web"]`, nil, []string{`apps[0] (web)`, "depends_on names the app itself"}},
		{"twice", `["db", "db"]`, nil, []string{`apps[0] (web)`, `depends_on names "db" twice`}},
		{"bad name", `["all"]`, nil, []string{`apps[0] (web)`, `depends_on: app name "all" is not allowed`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps, err := ParseJSON([]byte(`{"apps": [{"name": "web", "script": "sleep 5", "depends_on": `+tt.value+`}]}`), "eco.json", "/srv")
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("read as %+v, want an error", apps[0].DependsOn)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(apps[0].DependsOn, tt.want) {
				t.Errorf("read as %+v, want %+v", apps[0].DependsOn, tt.want)
			}
		})
	}
}

func TestCheckDependencies(t *testing.T) {
	app := func(name string, deps ...Dependency) App {
		a := NewApp()
		a.Name, a.Script, a.Cwd, a.DependsOn = name, "sleep 5", "/srv", deps
		return a
	}
	once := app("migrate")
	once.Autorestart = false
	stopsOn0 := app("seed")
	stopsOn0.StopExitCodes = []int{0}
	tests := []struct {
		name    string
		apps    []App
		wantErr []string // nil: no error
	}{
		{"none", []App{app("a"), app("b")}, nil},
		{"chain", []App{app("web", Dependency{"db", DependReady}), app("db")}, nil},
		{"completed of a one-shot", []App{app("web", Dependency{"migrate", DependCompleted}), once}, nil},
		{"completed of stop_exit_codes 0", []App{app("web", Dependency{"seed", DependCompleted}), stopsOn0}, nil},
		{"unknown", []App{app("web", Dependency{"dbb", DependStarted}), app("db")},
			[]string{`eco.json: app "web"`, `depends_on names "dbb", which is not an app of this file (did you mean "db"?)`}},
		{"completed of a restarting app", []App{app("web", Dependency{"db", DependCompleted}), app("db")},
			[]string{`app "web"`, `completed_successfully waits for "db" to exit 0`, `"autorestart": false`}},
		{"cycle of two", []App{app("a", Dependency{"b", DependStarted}), app("b", Dependency{"a", DependReady})},
			[]string{"eco.json: depends_on has a cycle: a → b → a"}},
		{"cycle of three behind another app", []App{app("x", Dependency{"a", DependStarted}), app("a", Dependency{"b", DependStarted}),
			app("b", Dependency{"c", DependStarted}), app("c", Dependency{"a", DependStarted})},
			[]string{"cycle: a → b → c → a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDependencies("eco.json", tt.apps)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestStartOrderAndStopLevels(t *testing.T) {
	tests := []struct {
		name   string
		names  []string
		deps   map[string][]string
		start  []string
		stop   [][]string
		cycle  []string
		levels bool
	}{
		{name: "no dependencies keeps the order", names: []string{"c", "a", "b"},
			start: []string{"c", "a", "b"}, stop: [][]string{{"c", "a", "b"}}},
		{name: "a dependency first", names: []string{"web", "db"}, deps: map[string][]string{"web": {"db"}},
			start: []string{"db", "web"}, stop: [][]string{{"web"}, {"db"}}},
		{name: "chain", names: []string{"c", "b", "a"}, deps: map[string][]string{"c": {"b"}, "b": {"a"}},
			start: []string{"a", "b", "c"}, stop: [][]string{{"c"}, {"b"}, {"a"}}},
		{name: "diamond", names: []string{"web", "api", "worker", "db"},
			deps:  map[string][]string{"web": {"api"}, "api": {"db"}, "worker": {"db"}},
			start: []string{"db", "api", "web", "worker"}, stop: [][]string{{"web", "worker"}, {"api"}, {"db"}}},
		{name: "a dependency outside is the caller's", names: []string{"web"}, deps: map[string][]string{"web": {"db"}},
			start: []string{"web"}, stop: [][]string{{"web"}}},
		{name: "long chain beside a short one", names: []string{"d", "x", "c", "b", "a"},
			deps:  map[string][]string{"d": {"c"}, "c": {"b"}, "b": {"a"}, "x": {"a"}},
			start: []string{"a", "b", "c", "d", "x"}, stop: [][]string{{"d", "x"}, {"c"}, {"b"}, {"a"}}},
		{name: "cycle", names: []string{"a", "b", "c"}, deps: map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"b"}},
			cycle: []string{"b", "c", "b"}, stop: [][]string{{"a"}, {"b"}, {"c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps := func(n string) []string { return tt.deps[n] }
			got, err := StartOrder(tt.names, deps)
			var cyc *CycleError
			switch {
			case tt.cycle != nil:
				if !errors.As(err, &cyc) || !slices.Equal(cyc.Path, tt.cycle) {
					t.Errorf("StartOrder = %v, %v; want the cycle %v", got, err, tt.cycle)
				}
			case err != nil || !slices.Equal(got, tt.start):
				t.Errorf("StartOrder = %v, %v; want %v", got, err, tt.start)
			}
			levels := StopLevels(tt.names, deps)
			if !slices.EqualFunc(levels, tt.stop, slices.Equal) {
				t.Errorf("StopLevels = %v, want %v", levels, tt.stop)
			}
		})
	}
}

func TestRunsNodeAndItsReadiness(t *testing.T) {
	tests := []struct {
		script    string
		waitReady bool
		port      string
		node      bool
		rule      string
	}{
		{"server.js", true, "", true, ReadyNotify},
		{"server.mjs", true, "3000", true, ReadyNotify},
		{"node --inspect server.js", true, "3000", true, ReadyNotify},
		{"/usr/local/bin/node app", true, "", true, ReadyNotify},
		{"node server.js --port $PORT", true, "", true, ReadyNotify}, // sh -c 'exec node ...': the pid is node's
		{"server.js", false, "3000", true, ReadyPort},
		{"server.js", false, "", true, ReadyUptime},
		{"npm start", true, "3000", false, ReadyPort},
		{"python3 app.py", true, "", false, ReadyUptime},
		{"npm run build && node server.js", true, "", false, ReadyUptime},
	}
	for _, tt := range tests {
		a := NewApp()
		a.Script, a.WaitReady, a.Port = tt.script, tt.waitReady, tt.port
		if got := a.RunsNode(); got != tt.node {
			t.Errorf("%q: RunsNode = %t, want %t", tt.script, got, tt.node)
		}
		if got := a.ReadyRule(); got != tt.rule {
			t.Errorf("%q (wait_ready %t, port %q): ReadyRule = %q, want %q", tt.script, tt.waitReady, tt.port, got, tt.rule)
		}
	}
	// A health check, or a rule the app names, decides over the message.
	a := NewApp()
	a.Script, a.WaitReady, a.Port, a.Ready = "server.js", true, "3000", ReadyPort
	if got := a.ReadyRule(); got != ReadyPort {
		t.Errorf("ready: port with wait_ready: %q", got)
	}
}
