package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// socketApp is a valid app to which a case applies its socket settings.
func socketApp(edit func(*App)) App {
	a := NewApp()
	a.Name, a.Script = "web", "sleep 5"
	edit(&a)
	return a
}

func TestValidateSockets(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*App)
		wantKey string   // "" when the app is valid
		want    []string // what the message must say
	}{
		{name: "socket per instance on a range", edit: func(a *App) { a.Socket, a.Port, a.Instances = SocketInstance, "3000-3002", 3 }},
		{name: "socket shared on one port", edit: func(a *App) { a.Socket, a.Port, a.Instances = SocketShared, "3000", 4 }},
		{name: "socket shared on auto", edit: func(a *App) { a.Socket, a.Port, a.Instances = SocketShared, "auto:3000-3999", 4 }},
		{name: "socket shared on a one-port range", edit: func(a *App) { a.Socket, a.Port, a.Instances = SocketShared, "3000-3000", 2 }},
		{name: "bind with a socket", edit: func(a *App) { a.Socket, a.Port, a.Bind = SocketInstance, "3000", "127.0.0.1" }},
		{name: "bind on IPv6", edit: func(a *App) { a.Socket, a.Port, a.Bind = SocketInstance, "3000", "::1" }},
		{name: "ready notify without a port", edit: func(a *App) { a.Ready = ReadyNotify }},
		{name: "ready port with a port", edit: func(a *App) { a.Ready, a.Port = ReadyPort, "3000" }},
		{name: "watchdog at its minimum", edit: func(a *App) { a.Watchdog = MinWatchdog }},
		{name: "single port with two instances stays an error without shared",
			edit: func(a *App) { a.Port, a.Instances = "3000", 2 }, wantKey: "port", want: []string{"3000"}},
		{name: "socket shared with a range", edit: func(a *App) { a.Socket, a.Port, a.Instances = SocketShared, "3000-3003", 4 },
			wantKey: "socket", want: []string{`socket "shared"`, "3000-3003", "auto:3000-3003"}},
		{name: "socket without a port", edit: func(a *App) { a.Socket = SocketInstance },
			wantKey: "socket", want: []string{"socket needs a port"}},
		{name: "shared socket without a port", edit: func(a *App) { a.Socket = SocketShared },
			wantKey: "socket", want: []string{"socket needs a port"}},
		{name: "unknown socket mode", edit: func(a *App) { a.Socket, a.Port = SocketMode("cluster"), "3000" },
			wantKey: "socket", want: []string{`"cluster"`, "true, false or \"shared\""}},
		{name: "bind without a socket", edit: func(a *App) { a.Port, a.Bind = "3000", "127.0.0.1" },
			wantKey: "bind", want: []string{"bind \"127.0.0.1\"", "socket: true"}},
		{name: "bind a host name", edit: func(a *App) { a.Socket, a.Port, a.Bind = SocketInstance, "3000", "localhost" },
			wantKey: "bind", want: []string{"IP address", `"localhost"`}},
		{name: "bind with a port in it", edit: func(a *App) { a.Socket, a.Port, a.Bind = SocketInstance, "3000", "127.0.0.1:80" },
			wantKey: "bind", want: []string{"IP address", `"127.0.0.1:80"`}},
		{name: "unknown ready rule", edit: func(a *App) { a.Ready = "soon" },
			wantKey: "ready", want: []string{`ready must be "port", "notify" or "uptime"`, `"soon"`}},
		{name: "ready port without a port", edit: func(a *App) { a.Ready = ReadyPort },
			wantKey: "ready", want: []string{`ready "port" needs a port`}},
		{name: "watchdog below the minimum", edit: func(a *App) { a.Watchdog = 99 * time.Millisecond },
			wantKey: "watchdog", want: []string{"watchdog must be at least 100ms", "99ms"}},
		{name: "watchdog of a nanosecond", edit: func(a *App) { a.Watchdog = 1 },
			wantKey: "watchdog", want: []string{"watchdog must be at least 100ms", "1ns"}},
		{name: "negative watchdog", edit: func(a *App) { a.Watchdog = -time.Second },
			wantKey: "watchdog", want: []string{"watchdog must be at least 100ms", "-1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := socketApp(tt.edit)
			err := a.Validate()
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Key != tt.wantKey {
				t.Fatalf("Validate() = %#v; want a FieldError for key %q", err, tt.wantKey)
			}
			if !strings.Contains(err.Error(), `app "web"`) {
				t.Errorf("message %q does not name the app", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestReadyRuleDefault(t *testing.T) {
	tests := []struct {
		name  string
		ready string
		port  string
		want  string
	}{
		{name: "port given", port: "3000", want: ReadyPort},
		{name: "no port", want: ReadyUptime},
		{name: "named rule wins over the port", ready: ReadyUptime, port: "3000", want: ReadyUptime},
		{name: "notify without a port", ready: ReadyNotify, want: ReadyNotify},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := socketApp(func(a *App) { a.Ready, a.Port = tt.ready, tt.port })
			if got := a.ReadyRule(); got != tt.want {
				t.Fatalf("ReadyRule() = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestSharedPorts(t *testing.T) {
	for _, tt := range []struct {
		mode SocketMode
		want int
	}{{SocketNone, 4}, {SocketInstance, 4}, {SocketShared, 1}} {
		a := App{Socket: tt.mode}
		if got := a.SharedPorts(4); got != tt.want {
			t.Errorf("SharedPorts(4) with socket %q = %d; want %d", tt.mode, got, tt.want)
		}
	}
}

// The wire and JSON files say socket as a boolean or as the mode's name.
func TestSocketModeJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    SocketMode
		wantErr string
	}{
		{in: `true`, want: SocketInstance},
		{in: `false`, want: SocketNone},
		{in: `"shared"`, want: SocketShared},
		{in: `"instance"`, want: SocketInstance},
		{in: `"true"`, want: SocketInstance},
		{in: `""`, want: SocketNone},
		{in: `"x"`, wantErr: `socket must be true, false or "shared", got "x"`},
		{in: `"Shared"`, wantErr: `got "Shared"`},
		{in: `1`, wantErr: "socket must be true, false or \"shared\", got a number"},
		{in: `null`, wantErr: "socket must be true, false or \"shared\""},
		{in: `["shared"]`, wantErr: "socket must be true, false or \"shared\""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got struct {
				Socket SocketMode `json:"socket"`
			}
			err := json.Unmarshal([]byte(`{"socket":`+tt.in+`}`), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Unmarshal(%s) = %q, %v; want an error saying %q", tt.in, got.Socket, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Socket != tt.want {
				t.Fatalf("Unmarshal(%s) = %q, %v; want %q", tt.in, got.Socket, err, tt.want)
			}
		})
	}
}

// An ecosystem file's socket key goes through the field table: the error names the file, the
// app and the key.
func TestSocketInEcosystemJSON(t *testing.T) {
	tests := []struct {
		name    string
		socket  string
		port    string
		want    SocketMode
		wantErr []string
	}{
		{name: "true", socket: `true`, port: `"3000-3001"`, want: SocketInstance},
		{name: "false", socket: `false`, port: `"3000-3001"`, want: SocketNone},
		{name: "shared", socket: `"shared"`, port: `"3000"`, want: SocketShared},
		{name: "unknown word", socket: `"x"`, port: `"3000"`, wantErr: []string{"eco.json", "socket", `"x"`}},
		{name: "number", socket: `3`, port: `"3000"`, wantErr: []string{"eco.json", "socket", "number"}},
		{name: "shared with a range", socket: `"shared"`, port: `"3000-3001"`, wantErr: []string{"eco.json", "socket", "3000-3001"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"apps": [{"name": "web", "script": "sleep 5", "instances": 2, "port": ` + tt.port + `, "socket": ` + tt.socket + `}]}`
			apps, err := ParseJSON([]byte(doc), "eco.json", t.TempDir())
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("ParseJSON = %+v; want an error", apps)
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
			if len(apps) != 1 || apps[0].Socket != tt.want {
				t.Fatalf("apps = %+v; want one with socket %q", apps, tt.want)
			}
		})
	}
}

// FuzzSocketValue: whatever a decoded JSON value is, socketValue either gives one of the three
// modes or an error saying what it takes, and a mode it gives survives a round trip through
// the field's JSON.
func FuzzSocketValue(f *testing.F) {
	for _, s := range []string{`true`, `false`, `"shared"`, `"x"`, `1`, `null`, `{}`, `"instance"`, `"none"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var v any
		if json.Unmarshal([]byte(doc), &v) != nil {
			return
		}
		m, err := socketValue(v)
		if err != nil {
			if !strings.Contains(err.Error(), `must be true, false or "shared"`) {
				t.Fatalf("socketValue(%s) error %q does not say what it takes", doc, err)
			}
			return
		}
		switch m {
		case SocketNone, SocketInstance, SocketShared:
		default:
			t.Fatalf("socketValue(%s) = %q, not a mode", doc, m)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back SocketMode
		if err := json.Unmarshal(b, &back); err != nil || back != m {
			t.Fatalf("round trip of %q through %s = %q, %v", m, b, back, err)
		}
	})
}
