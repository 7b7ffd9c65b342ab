package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
)

// A start of one app waits for its dependencies among the apps the daemon runs (as `run
// --only` and Lua's cluster.start send it), and refuses one it has not, naming both; an app
// kept as it is (if_exists keep) waits for nothing.
func TestStartWaitsForRunningDependencies(t *testing.T) {
	d := runningDaemon(t)
	ctx := context.Background()
	web := sleeper(t, "web", 1, "")
	web.DependsOn = []config.Dependency{{App: "db", Condition: config.DependStarted}}
	_, err := d.Start(ctx, api.StartRequest{App: web})
	if err == nil || !strings.Contains(err.Error(), "web was not started: it depends on db (started), which is neither in this file nor an app the daemon has; start db first") {
		t.Fatalf("start with a dependency the daemon does not have: %v", err)
	}
	if len(rows(d, "web")) != 0 {
		t.Fatal("web was started")
	}
	mustStart(t, d, sleeper(t, "db", 1, ""))
	mustStart(t, d, web)

	// db stopped: web, there already, is left alone; a new app that needs db is refused.
	if _, err := d.Stop(ctx, api.TargetRequest{Target: "db"}); err != nil {
		t.Fatal(err)
	}
	if st, err := d.Start(ctx, api.StartRequest{App: web, IfExists: "keep"}); err != nil || !st.Existed {
		t.Errorf("keeping web: %+v, %v", st, err)
	}
	api2 := sleeper(t, "api", 1, "")
	api2.DependsOn = web.DependsOn
	if _, err := d.Start(ctx, api.StartRequest{App: api2}); err == nil || !strings.Contains(err.Error(), "which has no running instance") {
		t.Errorf("start with a stopped dependency: %v", err)
	}
}
