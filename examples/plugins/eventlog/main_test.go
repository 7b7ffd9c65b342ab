package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// hook serves the plugin over an in-memory gRPC connection, as pmdaemon would talk to it.
func hook(t *testing.T) sdk.Hook {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, sdk.TestPluginSet(sdk.ServeOpts{Hook: &EventLog{}}))
	t.Cleanup(func() {
		server.Stop()
		_ = client.Close()
	})
	raw, err := client.Dispense(sdk.KindHook)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(sdk.Hook)
}

func TestConfigure(t *testing.T) {
	tests := []struct{ name, config, wantErr string }{
		{"file", `{"file": "/tmp/x.log"}`, ""},
		{"veto list", `{"file": "/tmp/x.log", "veto_apps": ["a"]}`, ""},
		{"none", `null`, `eventlog: "file" must be an absolute path, got ""`},
		{"relative", `{"file": "x.log"}`, `eventlog: "file" must be an absolute path, got "x.log"`},
		{"unknown key", `{"file": "/x", "fil": 1}`, `eventlog: want {"file": "/abs/path/events.log", "veto_apps": [...]}: json: unknown field "fil"`},
		{"wrong type", `{"file": 1}`, `eventlog: want {"file"`},
	}
	h := hook(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := h.Configure(context.Background(), json.RawMessage(tt.config))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !sdk.IsConfigError(err) || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("error %v (config error: %v), want one starting %q", err, sdk.IsConfigError(err), tt.wantErr)
			}
		})
	}
}

func TestHandle(t *testing.T) {
	file := filepath.Join(t.TempDir(), "events.log")
	h := hook(t)
	cfg := `{"file": "` + file + `", "veto_apps": ["blocked"]}`
	if err := h.Configure(context.Background(), json.RawMessage(cfg)); err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		ev       sdk.Event
		wantVeto string
		wantLine string
	}{
		{sdk.Event{Kind: sdk.Starting, App: "web", Instance: 0, ID: 3, Ports: []int{8000}, AppPorts: []int{}, Time: when}, "",
			`{"kind":"starting","app":"web","instance":0,"id":3,"pid":0,"ports":[8000],"app_ports":[],"exit_code":0,"time":"2026-01-02T03:04:05.000000006Z","reason":""}`},
		{sdk.Event{Kind: sdk.Starting, App: "blocked", ID: 4, Time: when}, "eventlog: app blocked is on the veto list",
			`{"kind":"starting","app":"blocked","instance":0,"id":4,"pid":0,"ports":[],"app_ports":[],"exit_code":0,"time":"2026-01-02T03:04:05.000000006Z","reason":""}`},
		{sdk.Event{Kind: sdk.Crashed, App: "blocked", Instance: 1, ID: 5, Pid: 42, Ports: []int{1}, AppPorts: []int{2, 3}, ExitCode: 137, Time: when, Reason: "oom"}, "",
			`{"kind":"crashed","app":"blocked","instance":1,"id":5,"pid":42,"ports":[1],"app_ports":[2,3],"exit_code":137,"time":"2026-01-02T03:04:05.000000006Z","reason":"oom"}`},
		{sdk.Event{Kind: sdk.PortsChanged, App: "web", Instance: -1, ID: -1, Ports: []int{9000}, AppPorts: []int{9000}, Time: when}, "",
			`{"kind":"ports-changed","app":"web","instance":-1,"id":-1,"pid":0,"ports":[9000],"app_ports":[9000],"exit_code":0,"time":"2026-01-02T03:04:05.000000006Z","reason":""}`},
	}
	var want []string
	for _, tt := range tests {
		veto, err := h.Handle(context.Background(), tt.ev)
		if err != nil {
			t.Fatal(err)
		}
		if veto != tt.wantVeto {
			t.Errorf("%s %s: veto %q, want %q", tt.ev.Kind, tt.ev.App, veto, tt.wantVeto)
		}
		want = append(want, tt.wantLine)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("file:\n%s\nwant:\n%s", b, strings.Join(want, "\n"))
	}
}
