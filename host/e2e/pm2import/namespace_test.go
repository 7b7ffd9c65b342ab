package pm2import

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// A namespace is a TARGET, as in PM2: `restart blue` restarts every app in blue, `stop
// default` the apps that name none; a name that is an app's and a namespace's is the app's.
func TestNamespaceTargets(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	b := harness.FreePorts(t, 5)
	dir := t.TempDir()
	app := func(name string, port int, ns string) string {
		s := fmt.Sprintf(`{"name": %q, "script": %q, "port": %d`, name, harness.Echo, port)
		if ns != "" {
			s += fmt.Sprintf(`, "namespace": %q`, ns)
		}
		return s + "}"
	}
	eco := filepath.Join(dir, "eco.json")
	apps := []string{app("a", b, "blue"), app("b", b+1, "blue"), app("c", b+2, ""), app("green", b+3, ""), app("d", b+4, "green")}
	if err := os.WriteFile(eco, []byte(`{"apps": [`+strings.Join(apps, ", ")+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	h.OK("run", eco)
	all := []string{"a", "b", "c", "green", "d"}
	rows := h.WaitList(30*time.Second, "every app online", online(all...))

	namespaces := map[string]string{}
	for _, r := range rows {
		namespaces[r.Name] = r.Namespace
	}
	want := map[string]string{"a": "blue", "b": "blue", "c": "default", "green": "default", "d": "green"}
	for name, ns := range want {
		if namespaces[name] != ns {
			t.Errorf("list: %s is in namespace %q, want %q", name, namespaces[name], ns)
		}
	}
	if out := h.OK("describe", "a"); !strings.Contains(out, "namespace:") || !strings.Contains(out, " blue\n") {
		t.Errorf("describe a does not show namespace blue:\n%s", out)
	}

	tests := []struct {
		name    string
		args    []string
		touched []string // the apps whose process the command replaced or stopped
		stopped []string // the apps stopped after it
	}{
		{"restart a namespace", []string{"restart", "blue"}, []string{"a", "b"}, nil},
		{"an app's name before a namespace's", []string{"restart", "green"}, []string{"green"}, nil},
		{"stop the default namespace", []string{"stop", "default"}, []string{"c", "green"}, []string{"c", "green"}},
		{"restart a namespace's stopped apps", []string{"restart", "default"}, []string{"c", "green"}, nil},
	}
	for _, tt := range tests {
		before := pidsByApp(h.List())
		out := h.OK(tt.args...)
		for _, name := range tt.touched {
			if !strings.Contains(out, " "+name+" ") {
				t.Errorf("%s: the output does not name %s:\n%s", tt.name, name, out)
			}
		}
		rows := h.WaitList(30*time.Second, tt.name, func(rows []api.Instance) bool {
			for _, r := range rows {
				if slices.Contains(tt.stopped, r.Name) != (r.Status == "stopped") {
					return false
				}
				if !slices.Contains(tt.stopped, r.Name) && (r.Status != "online" || r.Pid == 0) {
					return false
				}
			}
			return true
		})
		after := pidsByApp(rows)
		for _, name := range all {
			if changed := after[name] != before[name]; changed != slices.Contains(tt.touched, name) {
				t.Errorf("%s: %s's pid went from %d to %d", tt.name, name, before[name], after[name])
			}
		}
	}

	harness.ErrLike(t, h.Fail("info", "blue"), `info takes one app name or instance id; "blue" names 2 apps`)
	h.OK("delete", "blue")
	rows = h.WaitList(30*time.Second, "blue deleted", online("c", "green", "d"))
	if len(rows) != 3 {
		t.Errorf("after delete blue, %d rows, want c, green and d", len(rows))
	}
	harness.ErrLike(t, h.Fail("restart", "blue"), "process 'blue' not found")
}

// A namespace is refused where an app name would be, at every entry.
func TestNamespaceRefused(t *testing.T) {
	t.Parallel()
	h := harness.NewHome(t)
	harness.ErrLike(t, h.Fail("start", harness.Echo, "--name", "x", "--namespace", "7"), `namespace "7" is not allowed: it is a number`)
	harness.ErrLike(t, h.Fail("start", harness.Echo, "--name", "x", "--namespace", "all"), `namespace "all" is not allowed`)
	if rows := h.List(); len(rows) != 0 {
		t.Errorf("a refused start left rows: %+v", rows)
	}
}

func online(names ...string) func([]api.Instance) bool {
	return func(rows []api.Instance) bool {
		for _, n := range names {
			if !harness.AllOnline(n, 1)(rows) {
				return false
			}
		}
		return true
	}
}

func pidsByApp(rows []api.Instance) map[string]int {
	m := map[string]int{}
	for _, r := range rows {
		m[r.Name] = r.Pid
	}
	return m
}
