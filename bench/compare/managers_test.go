package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePMDaemonList(t *testing.T) {
	out := `[
  {
    "id": 0, "name": "app-0", "instance": 0, "status": "online", "pid": 5221, "port": null,
    "cpu": 0, "memory": 0, "uptime_ms": 6, "restarts": 0,
    "started_at": "2026-11-24T19:22:49.241845716Z", "out_log": "/x", "err_log": "/y"
  },
  {"id": 1, "name": "web", "instance": 0, "status": "errored", "pid": 0, "port": 41000}
]
`
	got, err := parsePMDaemonList([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []proc{{"app-0", 0, 5221, "online"}, {"web", 1, 0, "errored"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got, err := parsePMDaemonList([]byte("null\n")); err != nil || len(got) != 0 {
		t.Errorf("null: %v %v", got, err)
	}
	if _, err := parsePMDaemonList([]byte("Error: daemon not running")); err == nil {
		t.Error("no error for text")
	}
}

func TestParsePM2List(t *testing.T) {
	line := `[{"pid":5362,"name":"s","pm2_env":{"name":"s","args":["1000"],"status":"online","env":{"PATH":"/bin"},"pm_uptime":1},"pm_id":0,"monit":{"memory":1500000,"cpu":0}},` +
		`{"pid":0,"name":"t","pm2_env":{"status":"stopped"},"pm_id":3,"monit":{"memory":0,"cpu":0}}]`
	want := []proc{{"s", 0, 5362, "online"}, {"t", 3, 0, "stopped"}}
	for name, out := range map[string]string{
		"plain":    line + "\n",
		"notices":  "\x1b[33m[PM2][WARN] \x1b[39mCurrent process list is not synchronized\n[PM2] something\n" + line + "\n",
		"no final": line,
	} {
		got, err := parsePM2List([]byte(out))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
	if got, err := parsePM2List([]byte("[]\n")); err != nil || len(got) != 0 {
		t.Errorf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"", "[PM2] Spawning PM2 daemon\n", "{}"} {
		if _, err := parsePM2List([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestOnlineCheck(t *testing.T) {
	live := func(pid int) bool { return pid != 99 }
	procs := []proc{{"a", 0, 10, "online"}, {"b", 1, 11, "online"}}
	if !onlineCheck(procs, 2, nil, live) {
		t.Error("all online")
	}
	if onlineCheck(procs, 3, nil, live) {
		t.Error("count mismatch accepted")
	}
	if onlineCheck(procs, 2, map[int]bool{11: true}, live) {
		t.Error("an old pid accepted")
	}
	if onlineCheck([]proc{{"a", 0, 10, "online"}, {"b", 1, 0, "starting"}}, 2, nil, live) {
		t.Error("a starting instance accepted")
	}
	if onlineCheck([]proc{{"a", 0, 99, "online"}}, 1, nil, live) {
		t.Error("a dead pid accepted")
	}
	if got := pidSet(procs); !reflect.DeepEqual(got, map[int]bool{10: true, 11: true}) {
		t.Errorf("pidSet = %v", got)
	}
}

func TestEcosystems(t *testing.T) {
	apps := append(sleepers("app", 2), appSpec{Name: "web", Script: "/x/echo", Instances: 3, PortBase: 41000})
	if apps[0].Name != "app-0" || apps[1].Name != "app-1" {
		t.Errorf("sleeper names %q %q", apps[0].Name, apps[1].Name)
	}
	if n := sleepers("big", 1000)[7].Name; n != "big-0007" {
		t.Errorf("padded name %q", n)
	}

	pmd := ecosystemApps(t, pmdaemonEcosystem, apps)
	if len(pmd) != 3 || pmd[0]["script"] != "/bin/sleep" || pmd[2]["port"] != "41000-41002" || pmd[0]["port"] != nil {
		t.Errorf("pmdaemon ecosystem: %v", pmd)
	}
	for _, a := range pmd {
		for k := range a {
			// Keys pmdaemon knows (docs/ecosystem-json.md); an unknown key is an error there.
			if !strings.Contains(" name script args instances port restart_delay ", " "+k+" ") {
				t.Errorf("pmdaemon ecosystem key %q", k)
			}
		}
	}

	pm2 := ecosystemApps(t, pm2Ecosystem, apps)
	a0, web := pm2[0], pm2[2]
	if a0["interpreter"] != "none" || a0["exec_mode"] != "fork" || a0["restart_delay"] != 0.0 || a0["env"] != nil {
		t.Errorf("PM2 sleeper: %v", a0)
	}
	if web["increment_var"] != "PORT" || web["env"].(map[string]any)["PORT"] != 41000.0 || web["instances"] != 3.0 {
		t.Errorf("PM2 web: %v", web)
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"--quick", "--runs", "3", "--n", "20", "--only", "list, cpu"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Runs != 3 || c.N != 20 || c.Big != 0 || c.Idle.Seconds() != 5 || !c.Only["list"] || !c.Only["cpu"] || len(c.Only) != 2 {
		t.Errorf("quick config %+v", c)
	}
	c, err = parseFlags(nil)
	if err != nil || c.Runs != 5 || c.N != 100 || c.Big != 1000 || c.Idle.Seconds() != 60 || c.Only != nil {
		t.Errorf("default config %+v %v", c, err)
	}
	if _, err := parseFlags([]string{"--only", "lst"}); err == nil || !strings.Contains(err.Error(), "unknown group") {
		t.Errorf("bad group: %v", err)
	}
	if _, err := parseFlags([]string{"--runs", "0"}); err == nil {
		t.Error("--runs 0 accepted")
	}
}

func TestBaseEnvDropsManagerVariables(t *testing.T) {
	t.Setenv("PM2_HOME", "/elsewhere")
	t.Setenv("PMDAEMON_HOME", "/elsewhere")
	for _, kv := range baseEnv() {
		if strings.HasPrefix(kv, "PM2_") || strings.HasPrefix(kv, "PMDAEMON_") {
			t.Errorf("baseEnv kept %s", kv)
		}
	}
	m := newPM2("/x/pm2", "/tmp/h")
	if !contains(m.Env, "PM2_HOME=/tmp/h") || !contains(m.Env, "PM2_DISABLE_VERSION_CHECK=1") {
		t.Error("PM2 env lacks its home or the version-check switch")
	}
}

func TestTableRows(t *testing.T) {
	b := &bench{cfg: config{Runs: 2, N: 10, HTTPInstances: 4, Only: map[string]bool{"list": true}},
		results: map[string]map[string][]float64{
			"list_0": {"pmdaemon": {5, 4}, "PM2": {110, 120}},
			"list_n": {"pmdaemon": {5}},
		}}
	rows, out := b.table(false)
	if len(rows) != 2 || len(out.Metrics) != 2 {
		t.Fatalf("rows %+v", rows)
	}
	if rows[0].PMDaemon != "4.50 (4.00–5.00)" || rows[0].PM2 != "115 (110–120)" || rows[0].Ratio != "25.6x" {
		t.Errorf("row 0 %+v", rows[0])
	}
	if rows[1].PMDaemon != "5.00 (5.00–5.00) n=1/2" || rows[1].PM2 != "-" || rows[1].Ratio != "-" || out.Metrics[1].Ratio != nil {
		t.Errorf("row 1 %+v", rows[1])
	}
	rows, _ = b.table(true)
	if rows[0].PM2 != "skipped" {
		t.Errorf("skipped PM2 shows %q", rows[0].PM2)
	}
}
