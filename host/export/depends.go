package export

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pmdaemon/pmdaemon/host/config"
)

// Depends is how an export keeps depends_on. Neither scheduler orders separate workloads
// (Nomad groups, Kubernetes Deployments), but both run something to completion before an
// app's own process in the same allocation or pod: a Nomad prestart task, a Kubernetes init
// container. So an app that others wait for with "completed_successfully" (a migration) runs
// there, before each of them, when it can; every other dependency is reported as not carried
// over.
type Depends struct {
	// Before lists, by app name, the apps that run to completion before that app's process.
	Before map[string][]config.App
	// Inside names the apps that run only inside their dependents: they get no workload of
	// their own.
	Inside map[string]bool
}

// PlanDepends works out Depends for apps; what it cannot keep goes to r. An app runs inside
// its dependents when every app that depends on it waits for "completed_successfully" and it
// is a plain command: one instance, no port, no health check, no dependencies of its own.
func PlanDepends(apps []config.App, target string, r *Report) Depends {
	d := Depends{Before: map[string][]config.App{}, Inside: map[string]bool{}}
	byName := map[string]config.App{}
	for _, a := range apps {
		byName[a.Name] = a
	}
	inside := map[string]bool{}
	for _, a := range apps {
		inside[a.Name] = runsToCompletion(a)
	}
	for _, a := range apps {
		for _, dep := range a.DependsOn {
			if dep.Condition != config.DependCompleted {
				inside[dep.App] = false
			}
		}
	}
	for _, a := range apps {
		app := AppLabel(a.Name)
		for _, dep := range a.DependsOn {
			other, ok := byName[dep.App]
			switch {
			case !ok:
				r.Drop("%s: depends_on %s (%s): %s is not part of this export; start it before this app yourself", app, dep.App, dep.Condition, dep.App)
			case inside[dep.App]:
				d.Before[a.Name] = append(d.Before[a.Name], other)
				d.Inside[dep.App] = true
			default:
				r.Drop("%s: depends_on %s (%s): %s starts %s and %s independently; %s must wait for %s itself (retry until it answers)%s", app, dep.App, dep.Condition, target, a.Name, dep.App, a.Name, dep.App, whyNotInside(other, dep))
			}
		}
	}
	for _, a := range apps {
		if !d.Inside[a.Name] {
			continue
		}
		var dependents []string
		for _, b := range apps {
			if slices.ContainsFunc(d.Before[b.Name], func(x config.App) bool { return x.Name == a.Name }) {
				dependents = append(dependents, b.Name)
			}
		}
		r.Change("%s runs as %s before %s, in each %s (depends_on completed_successfully): once per %s, with no workload of its own", AppLabel(a.Name), runsAs(target), strings.Join(dependents, ", "), unitOf(target), unitOf(target))
	}
	return d
}

// runsToCompletion reports whether a can run inside another app's allocation or pod: a
// command that exits, with nothing that needs a workload of its own.
func runsToCompletion(a config.App) bool {
	return a.Instances == 1 && a.Port == "" && a.HealthCheck == nil && len(a.DependsOn) == 0
}

// whyNotInside says why a completed_successfully dependency keeps its own workload.
func whyNotInside(dep config.App, d config.Dependency) string {
	if d.Condition != config.DependCompleted {
		return ""
	}
	if !runsToCompletion(dep) {
		return fmt.Sprintf("; %s cannot run before it as a task of its own (it has instances, a port, a health check or dependencies)", dep.Name)
	}
	return fmt.Sprintf("; %s cannot run before it, since another app waits for it to start rather than to complete", dep.Name)
}

func unitOf(target string) string {
	if target == "Kubernetes" {
		return "pod"
	}
	return "allocation"
}

func runsAs(target string) string {
	if target == "Kubernetes" {
		return "an init container"
	}
	return "a prestart task"
}
