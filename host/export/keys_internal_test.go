package export

import (
	"maps"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// A key the exporters do not know is reported when an app sets it, and only then; every key
// handledKeys names is an app key.
func TestUnknownKeysAreReported(t *testing.T) {
	for k := range handledKeys {
		if config.AppField(k) == nil { // AppField panics on a key that is not there
			t.Errorf("%s is no app key", k)
		}
	}
	handled := maps.Clone(handledKeys)
	delete(handled, "pid_file") // as if pid_file were new

	a := config.NewApp()
	a.Name, a.Script = "web", "./server"
	var quiet Report
	unknownKeys(a, config.AppFields, handled, "Nomad", &quiet)
	if len(quiet.Dropped)+len(quiet.Changed) > 0 {
		t.Errorf("an app that sets no unknown key: %v", quiet)
	}

	a.PidFile = "/run/web.pid"
	var r Report
	unknownKeys(a, config.AppFields, handled, "Nomad", &r)
	if len(r.Dropped) != 1 || !strings.Contains(r.Dropped[0], `app "web": pid_file /run/web.pid: this version of the export does not know the key`) {
		t.Errorf("report %v", r.Dropped)
	}
}
