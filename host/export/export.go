// Package export turns pmdaemon apps into the job files of a distributed scheduler (DESIGN
// §13): a Nomad job (host/export/nomad) or Kubernetes objects (host/export/kube). This package
// holds what both share: where the apps come from (an ecosystem file of any front, or the
// running daemon), the report of what could not be carried over, the command line a
// scheduler runs, and names a cluster accepts.
//
// Only the CLI's export command imports it. It and its subpackages link none of the
// schedulers' libraries (nomad/api, hcl/v2, k8s.io/api): those are the tests' only
// (cmd/pmdaemon's TestBinaryLinksNoHeavyLibraries).
package export

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/ports"
)

// Source is the apps to export and what loading them already could not carry over.
type Source struct {
	// Name names the whole export (the Nomad job, the Kubernetes part-of label): the file's
	// base name, or "pmdaemon" for the running apps.
	Name string
	// From says where the apps came from, for messages ("ecosystem.json", "the running apps").
	From string
	Apps []config.App
	Report
}

// Report collects, in order, what an export could not carry over (Dropped) and what it
// carried over in another form the user should know of (Changed). Nothing is left out
// silently: every key of an app that the target has no place for ends up in Dropped.
type Report struct {
	Dropped []string
	Changed []string
}

// Drop records something the export leaves out, and why.
func (r *Report) Drop(format string, a ...any) {
	r.Dropped = append(r.Dropped, fmt.Sprintf(format, a...))
}

// Change records something carried over in another form.
func (r *Report) Change(format string, a ...any) {
	r.Changed = append(r.Changed, fmt.Sprintf(format, a...))
}

// Merge appends other's lines after r's.
func (r *Report) Merge(other Report) {
	r.Dropped = append(r.Dropped, other.Dropped...)
	r.Changed = append(r.Changed, other.Changed...)
}

// Only keeps the app named only (all apps when only is ""); an unknown name is an error that
// lists the names there are.
func (s *Source) Only(only string) error {
	if only == "" {
		return nil
	}
	var names []string
	for _, a := range s.Apps {
		if a.Name == only {
			s.Apps = []config.App{a}
			return nil
		}
		names = append(names, a.Name)
	}
	if len(names) == 0 {
		return fmt.Errorf("%s has no app named %q (it has none)", s.From, only)
	}
	return fmt.Errorf("%s has no app named %q (it has: %s)", s.From, only, strings.Join(names, ", "))
}

// JobName is the export's name for a file: its base name without extensions
// (ecosystem.config.js → ecosystem).
func JobName(path string) string {
	base := filepath.Base(path)
	if i := strings.IndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	return base
}

// interpreters are config.App.Argv's: a script with one of these extensions runs under it.
var interpreters = map[string]string{".js": "node", ".mjs": "node", ".cjs": "node", ".py": "python3", ".sh": "bash"}

// Command is the argv a scheduler runs for a, as pmdaemon would (config.App.Argv) but without
// looking at this machine: a script path is made absolute against the app's cwd, an
// interpreter and a bare command stay names for the target's PATH, and a command line with
// shell syntax runs under /bin/sh -c.
func Command(a config.App) ([]string, error) {
	if shell, _ := config.ShellSyntax(a.Script); shell {
		return a.Argv("") // the shell form touches no file
	}
	words, err := config.SplitCommand(a.Script)
	if err != nil {
		return nil, fmt.Errorf("app %q: script: %w", a.Name, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("app %q: script is missing", a.Name)
	}
	first, rest := words[0], append(words[1:len(words):len(words)], a.Args...)
	abs := first
	if !filepath.IsAbs(abs) && a.Cwd != "" {
		abs = filepath.Join(a.Cwd, abs)
	}
	if interp, ok := interpreters[filepath.Ext(first)]; ok {
		return append([]string{interp, abs}, rest...), nil
	}
	if strings.Contains(first, "/") {
		return append([]string{abs}, rest...), nil
	}
	return append([]string{first}, rest...), nil
}

// Ports is how an app's instances get their ports on a scheduler.
type Ports struct {
	// Kind is ports.Single (every instance on Fixed[0]: one instance, or a shared socket),
	// ports.Range (instance i on Fixed[i]) or ports.Auto (the scheduler picks; Spec says the
	// range pmdaemon picked from). None is set for an app without a port.
	None  bool
	Kind  ports.Kind
	Fixed []int
	Spec  ports.Spec
}

// PortsOf reads a's port spec for a scheduler. A range whose instances share one socket is
// one fixed port for all of them, as pmdaemon runs it.
func PortsOf(a config.App) (Ports, error) {
	if a.Port == "" {
		return Ports{None: true}, nil
	}
	spec, err := ports.ParseSpec(a.Port)
	if err != nil {
		return Ports{}, fmt.Errorf("app %q: %w", a.Name, err)
	}
	p := Ports{Kind: spec.Kind, Spec: spec}
	switch {
	case spec.Kind == ports.Auto:
	case spec.Kind == ports.Single || a.Socket == config.SocketShared:
		p.Kind, p.Fixed = ports.Single, []int{spec.Start}
	default:
		for i := range a.Instances {
			p.Fixed = append(p.Fixed, spec.Start+i)
		}
	}
	return p, nil
}

// InstanceEnv is the environment pmdaemon gives every instance besides the app's env (see
// docs/behaviour.md), for a scheduler to set: PORT (when port is not ""), the instance index
// under PM2's names (when index is not ""), and the app's name.
func InstanceEnv(a config.App, port, index string) map[string]string {
	env := make(map[string]string, len(a.Env)+4)
	for k, v := range a.Env {
		env[k] = v
	}
	if port != "" {
		env["PORT"] = port
	}
	if index != "" {
		env["PM2_INSTANCE_ID"] = index
		env["NODE_APP_INSTANCE"] = index
	}
	env["PMDAEMON_APP_NAME"] = a.Name
	return env
}

// SortedKeys returns m's keys in order, for output that does not change from run to run.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
