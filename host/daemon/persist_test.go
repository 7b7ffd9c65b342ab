package daemon

import (
	"context"
	"reflect"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/state"
)

// TestStateFileFollowsEveryConfigChange runs every operation that changes an app's config and
// checks, after each, that the state file holds the config the daemon runs: the state writer
// encodes a config again only when setConfig gave it a new number, so a change made any other
// way would be lost at the next daemon's start.
func TestStateFileFollowsEveryConfigChange(t *testing.T) {
	d := runningDaemon(t)
	ctx := context.Background()
	web := sleeper(t, "web", 2, "auto:43100-43199")
	steps := []struct {
		name string
		op   func() error
	}{
		{"start", func() error { _, err := d.Start(ctx, api.StartRequest{App: web}); return err }},
		{"update with a new env", func() error {
			cfg := web
			cfg.Env = map[string]string{"COLOUR": "blue"}
			_, err := d.Start(ctx, api.StartRequest{App: cfg, IfExists: "update"})
			return err
		}},
		{"scale up", func() error { _, err := d.Scale(ctx, api.ScaleRequest{Name: "web", Instances: 3}); return err }},
		{"scale down", func() error { _, err := d.Scale(ctx, api.ScaleRequest{Name: "web", Instances: 1}); return err }},
		{"restart with a port override", func() error {
			_, err := d.Restart(ctx, api.TargetRequest{Target: "web", Port: "43150"})
			return err
		}},
		{"delete", func() error { _, err := d.Delete(ctx, api.TargetRequest{Target: "web"}); return err }},
		{"the same name again, another command", func() error {
			cfg := sleeper(t, "web", 1, "")
			cfg.Args = []string{"700"}
			_, err := d.Start(ctx, api.StartRequest{App: cfg})
			return err
		}},
	}
	for _, st := range steps {
		if err := st.op(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		d.mu.Lock()
		err := d.saveLocked()
		want := map[string]*app{}
		for name, a := range d.apps {
			want[name] = a
		}
		d.mu.Unlock()
		if err != nil {
			t.Fatalf("%s: saving: %v", st.name, err)
		}
		f, err := state.Load(d.paths.State())
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if len(f.Apps) != len(want) {
			t.Fatalf("%s: %d apps in the state file, the daemon has %d", st.name, len(f.Apps), len(want))
		}
		for _, sa := range f.Apps {
			a := want[sa.Config.Name]
			d.mu.Lock()
			cfg, override, n := a.cfg, a.override, len(a.slots)
			d.mu.Unlock()
			if !reflect.DeepEqual(*sa.Config, *cfg) {
				t.Fatalf("%s: the state file has config\n%+v\nthe daemon runs\n%+v", st.name, sa.Config, cfg)
			}
			if sa.PortOverride != override || len(sa.Instances) != n {
				t.Fatalf("%s: the state file has override %q and %d instances; the daemon %q and %d",
					st.name, sa.PortOverride, len(sa.Instances), override, n)
			}
		}
	}
}
