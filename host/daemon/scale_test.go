package daemon

import (
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// A range grows from its start to hold the instances, and no further than port 65535; a
// shared socket keeps its one port; an auto: range is left to the allocation; a single port
// cannot hold a second instance.
func TestGrownSpec(t *testing.T) {
	tests := []struct {
		spec    string
		socket  config.SocketMode
		n       int
		want    string
		wantErr string
	}{
		{spec: "3000-3003", n: 6, want: "3000-3005"},
		{spec: "3000-3003", n: 2, want: "3000-3003"},
		{spec: "3000-3003", n: 4, want: "3000-3003"},
		{spec: "auto:5000-5002", n: 9, want: "auto:5000-5002"},
		{spec: "4000", n: 1, want: "4000"},
		{spec: "4000", socket: config.SocketShared, n: 8, want: "4000"},
		{spec: "", n: 5, want: ""},
		{spec: "65530-65534", n: 6, want: "65530-65535"},
		{spec: "65530-65534", n: 7, wantErr: "its range 65530-65534 would have to grow to port 65536, past 65535"},
		{spec: "4000", n: 2, wantErr: "its port spec is the single port 4000; give it a range first (pmdaemon restart web --port 4000-4001)"},
	}
	for _, tt := range tests {
		cfg := config.App{Name: "web", Socket: tt.socket}
		got, err := grownSpec(cfg, tt.spec, tt.n)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "cannot scale web to") {
				t.Errorf("grownSpec(%q, %d) = %q, %v; want an error saying %s", tt.spec, tt.n, got, err, tt.wantErr)
			}
			if _, ok := err.(*UserError); !ok {
				t.Errorf("grownSpec(%q, %d): %T, want a UserError (invalid)", tt.spec, tt.n, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("grownSpec(%q, %d) = %q, %v; want %q", tt.spec, tt.n, got, err, tt.want)
		}
	}
}
