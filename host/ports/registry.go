package ports

import (
	"fmt"
	"sort"
)

// Registry records which app holds which port. It is not safe for concurrent use: the daemon
// serialises every allocation under its own lock so that check and reserve are one step.
//
// It is indexed both ways, so that what one app holds is found without a look at every port
// held: with thousands of apps, deleting, restarting or releasing one costs its own ports only.
type Registry struct {
	owner map[int]string
	byApp map[string]map[int]struct{}
}

func NewRegistry() *Registry {
	return &Registry{owner: map[int]string{}, byApp: map[string]map[int]struct{}{}}
}

// Holder returns the app holding port, if any.
func (r *Registry) Holder(port int) (string, bool) {
	app, ok := r.owner[port]
	return app, ok
}

// Reserve records ports as held by app. A port held by another app is an error and nothing is
// recorded.
func (r *Registry) Reserve(app string, ports []int) error {
	for _, p := range ports {
		if other, ok := r.owner[p]; ok && other != app {
			return fmt.Errorf("Port %d is already assigned to process '%s'", p, other)
		}
	}
	if len(ports) == 0 {
		return nil
	}
	held := r.byApp[app]
	if held == nil {
		held = map[int]struct{}{}
		r.byApp[app] = held
	}
	for _, p := range ports {
		r.owner[p] = app
		held[p] = struct{}{}
	}
	return nil
}

// ReleaseApp frees every port app holds.
func (r *Registry) ReleaseApp(app string) {
	for p := range r.byApp[app] {
		delete(r.owner, p)
	}
	delete(r.byApp, app)
}

// Release frees the given ports if app holds them.
func (r *Registry) Release(app string, ports []int) {
	held := r.byApp[app]
	for _, p := range ports {
		if r.owner[p] == app {
			delete(r.owner, p)
			delete(held, p)
		}
	}
	if held != nil && len(held) == 0 {
		delete(r.byApp, app)
	}
}

// PortsOf lists the ports app holds, ascending.
func (r *Registry) PortsOf(app string) []int {
	held := r.byApp[app]
	if len(held) == 0 {
		return nil
	}
	out := make([]int, 0, len(held))
	for p := range held {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// Assigned returns a copy of the port -> app map.
func (r *Registry) Assigned() map[int]string {
	out := make(map[int]string, len(r.owner))
	for p, a := range r.owner {
		out[p] = a
	}
	return out
}
