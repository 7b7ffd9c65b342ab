package ports

import (
	"fmt"
	"sort"
)

// Registry records which app holds which port. It is not safe for concurrent use: the daemon
// serialises every allocation under its own lock so that check and reserve are one step.
type Registry struct {
	owner map[int]string
}

func NewRegistry() *Registry { return &Registry{owner: map[int]string{}} }

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
	for _, p := range ports {
		r.owner[p] = app
	}
	return nil
}

// ReleaseApp frees every port app holds.
func (r *Registry) ReleaseApp(app string) {
	for p, a := range r.owner {
		if a == app {
			delete(r.owner, p)
		}
	}
}

// Release frees the given ports if app holds them.
func (r *Registry) Release(app string, ports []int) {
	for _, p := range ports {
		if r.owner[p] == app {
			delete(r.owner, p)
		}
	}
}

// PortsOf lists the ports app holds, ascending.
func (r *Registry) PortsOf(app string) []int {
	var out []int
	for p, a := range r.owner {
		if a == app {
			out = append(out, p)
		}
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
