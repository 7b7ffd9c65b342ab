package config

import (
	"fmt"
	"slices"
	"strings"
)

// depends_on (process-compose's key): an app starts only once the apps it names meet their
// condition, and stops before them. The graph logic is here, on names alone, so the loaders
// (a file's apps) and the daemon (a request's apps beside the running ones) share it.

// Dependency is one entry of an app's depends_on: the app it waits for, and for what.
type Dependency struct {
	App       string `json:"app"`
	Condition string `json:"condition"`
}

// The conditions a dependency may wait for.
const (
	// DependStarted: the app has a running instance (the default, and what a plain list of
	// names means).
	DependStarted = "started"
	// DependReady: every instance of the app is ready, by its own readiness rule.
	DependReady = "ready"
	// DependCompleted: every instance of the app ran and exited 0 (a migration).
	DependCompleted = "completed_successfully"
)

// dependConditions are the conditions and their process-compose spellings.
var dependConditions = map[string]string{
	DependStarted: DependStarted, "process_started": DependStarted,
	DependReady: DependReady, "process_healthy": DependReady,
	DependCompleted: DependCompleted, "process_completed_successfully": DependCompleted,
}

// dependsValue reads depends_on: an array of names (each "started"), or an object of
// NAME: {"condition": C} (process-compose's shape) or NAME: C.
func dependsValue(v any) ([]Dependency, error) {
	var out []Dependency
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			name, ok := e.(string)
			if !ok || name == "" {
				return nil, fmt.Errorf("[%d] must be an app name, got %s", i, describe(e))
			}
			out = append(out, Dependency{App: name, Condition: DependStarted})
		}
	case map[string]any:
		for _, name := range sortedKeys(x) {
			cond, err := conditionValue(x[name])
			if err != nil {
				return nil, fmt.Errorf("%q: %w", name, err)
			}
			out = append(out, Dependency{App: name, Condition: cond})
		}
	default:
		return nil, fmt.Errorf(`must be an array of app names or an object like {"db": {"condition": "ready"}}, got %s`, typeName(v))
	}
	return out, nil
}

// conditionValue reads one dependency's condition: {"condition": C}, C alone, or {} (started).
func conditionValue(v any) (string, error) {
	text, isText := v.(string)
	if obj, ok := v.(map[string]any); ok {
		for _, k := range sortedKeys(obj) {
			if k != "condition" {
				return "", &UnknownKeyError{Key: k, Object: "a dependency", Known: []string{"condition"}}
			}
		}
		c, present := obj["condition"]
		if !present {
			return DependStarted, nil
		}
		text, isText = c.(string)
		v = c
	}
	cond, known := dependConditions[text]
	if !isText || !known {
		return "", fmt.Errorf("condition must be %s, got %s", quoteAll([]string{DependStarted, DependReady, DependCompleted}), describe(v))
	}
	return cond, nil
}

// checkDepends validates an app's own depends_on: names that can be apps, each once, not itself.
func (a *App) checkDepends(bad func(key, format string, x ...any) error) error {
	if len(a.DependsOn) > MaxApps {
		return bad("depends_on", "depends_on names %d apps; at most %d", len(a.DependsOn), MaxApps)
	}
	seen := map[string]bool{}
	for _, d := range a.DependsOn {
		if err := CheckName(d.App); err != nil {
			return bad("depends_on", "depends_on: %v", err)
		}
		if d.App == a.Name {
			return bad("depends_on", "depends_on names the app itself")
		}
		if seen[d.App] {
			return bad("depends_on", "depends_on names %q twice", d.App)
		}
		seen[d.App] = true
		if _, ok := dependConditions[d.Condition]; !ok || dependConditions[d.Condition] != d.Condition {
			return bad("depends_on", "depends_on %q: condition must be %s, got %q", d.App,
				quoteAll([]string{DependStarted, DependReady, DependCompleted}), d.Condition)
		}
	}
	return nil
}

// CheckDependencies checks the depends_on of a file's apps against each other: every app named
// is one of them, an app waited on to complete runs once, and there is no cycle. file names
// the file in errors ("" for none).
func CheckDependencies(file string, apps []App) error {
	byName := map[string]*App{}
	for i := range apps {
		byName[apps[i].Name] = &apps[i]
	}
	where := func(a *App) string {
		if file == "" {
			return fmt.Sprintf("app %q", a.Name)
		}
		return fmt.Sprintf("%s: app %q", file, a.Name)
	}
	for i := range apps {
		a := &apps[i]
		for _, d := range a.DependsOn {
			dep, ok := byName[d.App]
			if !ok {
				return &FieldError{Where: where(a), Key: "depends_on", Err: fmt.Errorf("depends_on names %q, which is not an app of this file%s", d.App, didYouMean(d.App, byName))}
			}
			if d.Condition == DependCompleted && !dep.RunsOnce() {
				return &FieldError{Where: where(a), Key: "depends_on", Err: fmt.Errorf(
					"depends_on %q: completed_successfully waits for %q to exit 0, but it is restarted when it exits: give %q \"autorestart\": false (or 0 in \"stop_exit_codes\")", d.App, d.App, d.App)}
			}
		}
	}
	_, err := StartOrder(names(apps), dependsOf(apps))
	if err != nil && file != "" {
		return fmt.Errorf("%s: %w", file, err)
	}
	return err
}

// RunsOnce reports whether an exit 0 ends the app rather than restarting it.
func (a *App) RunsOnce() bool {
	return !a.Autorestart || slices.Contains(a.StopExitCodes, 0)
}

func didYouMean(name string, byName map[string]*App) string {
	var known []string
	for n := range byName {
		known = append(known, n)
	}
	if s := suggest(name, known); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

func names(apps []App) []string {
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = a.Name
	}
	return out
}

// dependsOf is the dependency lookup of apps for StartOrder.
func dependsOf(apps []App) func(string) []string {
	m := map[string][]string{}
	for _, a := range apps {
		for _, d := range a.DependsOn {
			m[a.Name] = append(m[a.Name], d.App)
		}
	}
	return func(n string) []string { return m[n] }
}

// CycleError is a dependency cycle; Path starts and ends with the same app.
type CycleError struct{ Path []string }

func (e *CycleError) Error() string {
	return fmt.Sprintf("depends_on has a cycle: %s; none of them can start first", strings.Join(e.Path, " → "))
}

// StartOrder orders names so that every app comes after the apps it depends on (deps gives
// them; a dependency not among names is left to the caller), keeping the given order wherever
// the dependencies allow. A cycle is a *CycleError naming its apps.
func StartOrder(names []string, deps func(string) []string) ([]string, error) {
	return order(names, deps, true)
}

// StopLevels groups names for stopping: every app in a level before the apps it depends on,
// which come in later levels; the apps of one level may stop together. Dependencies not among
// names are ignored, and so is the edge that closes a cycle (a cycle cannot be loaded, but a
// stop must never refuse).
func StopLevels(names []string, deps func(string) []string) [][]string {
	started, _ := order(names, deps, false)
	in := make(map[string]bool, len(names))
	for _, n := range names {
		in[n] = true
	}
	// Walked from the last app to start: every app that depends on n is met before n, so
	// n's depth (the longest chain of apps that depend on it) is final when n is met.
	depth := map[string]int{}
	pos := map[string]int{}
	for i, n := range started {
		pos[n] = i
	}
	for i := len(started) - 1; i >= 0; i-- {
		n := started[i]
		for _, d := range deps(n) {
			if in[d] && pos[d] < i {
				depth[d] = max(depth[d], depth[n]+1)
			}
		}
	}
	var levels [][]string
	for _, n := range names {
		for len(levels) <= depth[n] {
			levels = append(levels, nil)
		}
		levels[depth[n]] = append(levels[depth[n]], n)
	}
	return levels
}

// order is a depth-first topological order of names. strict makes a cycle an error; else
// the edge that closes it is skipped.
func order(names []string, deps func(string) []string, strict bool) ([]string, error) {
	in := make(map[string]bool, len(names))
	for _, n := range names {
		in[n] = true
	}
	const (
		unvisited = iota
		visiting
		done
	)
	mark := make(map[string]int, len(names))
	out := make([]string, 0, len(names))
	var stack []string
	var visit func(n string) error
	visit = func(n string) error {
		mark[n] = visiting
		stack = append(stack, n)
		for _, d := range deps(n) {
			switch {
			case !in[d] || mark[d] == done:
			case mark[d] == visiting:
				if strict {
					i := slices.Index(stack, d)
					return &CycleError{Path: append(slices.Clone(stack[i:]), d)}
				}
			default:
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		mark[n] = done
		out = append(out, n)
		return nil
	}
	for _, n := range names {
		if mark[n] == unvisited {
			if err := visit(n); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
