package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	pmdconfig "github.com/pmdaemon/pmdaemon/host/config"
)

// TestReloadSetupEcosystems checks each setup's ecosystem file as the manager reads it:
// pmdaemon's with pmdaemon's own parser and validation, PM2's by its keys.
func TestReloadSetupEcosystems(t *testing.T) {
	const script, base = "/repo/bench/compare/apps/reload-web.js", 29300
	cases := []struct {
		setup string
		ports []int
		// pmdaemon
		port   string
		socket pmdconfig.SocketMode
		bind   string
		// PM2
		execMode     string
		incrementVar any
	}{
		{setup: "pmdaemon, port range", ports: []int{29300, 29301, 29302, 29303}, port: "29300-29303", socket: pmdconfig.SocketNone},
		{setup: "pmdaemon --socket, port range", ports: []int{29300, 29301, 29302, 29303}, port: "29300-29303", socket: pmdconfig.SocketInstance, bind: "127.0.0.1"},
		{setup: "pmdaemon --socket shared, one port", ports: []int{29300}, port: "29300", socket: pmdconfig.SocketShared, bind: "127.0.0.1"},
		{setup: "PM2 fork mode, port per instance", ports: []int{29300, 29301, 29302, 29303}, execMode: "fork", incrementVar: "PORT"},
		{setup: "PM2 cluster mode, one port", ports: []int{29300}, execMode: "cluster"},
	}
	if len(cases) != len(reloadSetups) {
		t.Fatalf("%d setups, %d cases", len(reloadSetups), len(cases))
	}
	for i, c := range cases {
		s := reloadSetups[i]
		if s.Name != c.setup {
			t.Fatalf("setup %d is %q, want %q", i, s.Name, c.setup)
		}
		if got := s.ports(base); !reflect.DeepEqual(got, c.ports) {
			t.Errorf("%s: load on ports %v, want %v", s.Name, got, c.ports)
		}
		spec := s.spec(script, base)
		if s.Manager == "pmdaemon" {
			b, err := pmdaemonEcosystem([]appSpec{spec})
			if err != nil {
				t.Fatal(err)
			}
			apps, err := pmdconfig.ParseJSON(b, "reload.json", "/repo")
			if err != nil {
				t.Fatalf("%s: pmdaemon refuses the ecosystem: %v\n%s", s.Name, err, b)
			}
			a := apps[0]
			if err := a.Validate(); err != nil {
				t.Errorf("%s: %v", s.Name, err)
			}
			if a.Name != reloadAppName || a.Script != script || a.Instances != reloadInstances || a.Port != c.port || a.Socket != c.socket || a.Bind != c.bind {
				t.Errorf("%s: pmdaemon reads name %q script %q instances %d port %q socket %q bind %q", s.Name, a.Name, a.Script, a.Instances, a.Port, a.Socket, a.Bind)
			}
			continue
		}
		a := ecosystemApps(t, pm2Ecosystem, []appSpec{spec})[0]
		if a["name"] != reloadAppName || a["script"] != script || a["interpreter"] != "node" || a["exec_mode"] != c.execMode ||
			a["instances"] != float64(reloadInstances) || a["increment_var"] != c.incrementVar || a["env"].(map[string]any)["PORT"] != float64(base) {
			t.Errorf("%s: PM2 app %v", s.Name, a)
		}
	}
}

// ecosystemApps writes apps with ecosystem and decodes the file's apps back.
func ecosystemApps(t *testing.T, ecosystem func([]appSpec) ([]byte, error), apps []appSpec) []map[string]any {
	t.Helper()
	b, err := ecosystem(apps)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Apps []map[string]any `json:"apps"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%v in\n%s", err, b)
	}
	return doc.Apps
}

func TestReloadRows(t *testing.T) {
	pmdSocket, pm2Cluster := reloadSetups[1].Name, reloadSetups[4].Name
	b := &bench{cfg: config{Runs: 3}, results: map[string]map[string][]float64{
		"reload_refused": {pmdSocket: {0, 0, 0}, pm2Cluster: {0, 3, 1}},
		"reload_other":   {pmdSocket: {0, 0, 0}, pm2Cluster: {2, 0, 1}},
		"reload_ok":      {pmdSocket: {9000, 9100, 8900}},
		"reload_1":       {pmdSocket: {410.5, 380, 400}},
		"reload_2":       {pmdSocket: {390, 395}},
	}}
	rows, out := b.reloadRows(false)
	if len(rows) != len(reloadSetups) || len(out) != len(reloadSetups) {
		t.Fatalf("%d rows, %d JSON setups", len(rows), len(out))
	}
	want := []string{pmdSocket, "0 (0–0)", "0 (0–0)", "9000 (8900–9100)", "400 (380–410)", "392 (390–395) n=2/3"}
	if !reflect.DeepEqual(rows[1], want) {
		t.Errorf("socket row %q, want %q", rows[1], want)
	}
	if rows[4][1] != "1 (0–3)" || rows[4][3] != "-" {
		t.Errorf("cluster row %q", rows[4])
	}
	if rows[0][1] != "-" || len(out[0].Figures) != 0 {
		t.Errorf("a setup without figures: %q, JSON %v", rows[0], out[0].Figures)
	}
	if f := out[1].Figures["reload_1"]; f == nil || f.Median != 400 || f.Min != 380 {
		t.Errorf("JSON reload_1 %+v", f)
	}
	rows, _ = b.reloadRows(true)
	for _, r := range rows {
		if strings.HasPrefix(r[0], "PM2") {
			t.Errorf("PM2 skipped, yet a row %q", r)
		}
	}
	if len(rows) != 3 {
		t.Errorf("%d rows without PM2, want 3", len(rows))
	}
}

func TestRenderGrid(t *testing.T) {
	header := []string{"setup", "failed", "reload, ms"}
	rows := [][]string{{"a", "0 (0–0)", "12"}, {"long name", "491 (180–520)", "1234 (1000–2000)"}}
	var text bytes.Buffer
	if err := renderGrid(&text, header, rows, false); err != nil {
		t.Fatal(err)
	}
	wantText := "" +
		"setup      failed         reload, ms\n" +
		"------------------------------------------\n" +
		"a                0 (0–0)                12\n" +
		"long name  491 (180–520)  1234 (1000–2000)\n"
	if text.String() != wantText {
		t.Errorf("text:\n%s\nwant:\n%s", text.String(), wantText)
	}
	var md bytes.Buffer
	if err := renderGrid(&md, header, [][]string{{"x|y", "1", "2"}}, true); err != nil {
		t.Fatal(err)
	}
	wantMD := "| setup | failed | reload, ms |\n|---|---:|---:|\n| x\\|y | 1 | 2 |\n"
	if md.String() != wantMD {
		t.Errorf("markdown:\n%s\nwant:\n%s", md.String(), wantMD)
	}
}

func TestFormatRequests(t *testing.T) {
	cases := map[float64]string{0: "0", 7: "7", 491: "491", 12345: "12345", 2.5: "2.5"}
	for v, want := range cases {
		if got := formatValue(v, "req"); got != want {
			t.Errorf("formatValue(%v, req) = %q, want %q", v, got, want)
		}
	}
}
