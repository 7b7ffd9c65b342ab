package daemon

import (
	"strconv"
	"strings"
)

// target is what a TARGET names: whole apps, or one slot of one app.
type target struct {
	app  *app
	slot *slot // nil: the whole app
}

// resolve finds TARGET: "all", an app name, a namespace, or an instance id (decimal digits
// only). As in PM2, a name is an app's before it is a namespace's: with an app "shop" and a
// namespace "shop", `restart shop` restarts the app. Namespaces cannot be numbers, so an id is
// never one. The target is taken exactly as given, never trimmed: "all " or " 3" name an app
// or namespace of that name or nothing (names cannot have such spaces, be numbers or be
// "all"). d.mu must be held.
func (d *Daemon) resolve(t string) ([]target, error) {
	if t == "" {
		return nil, userErr("no target given: name an app, an instance id, or all")
	}
	if t == "all" {
		var out []target
		for _, name := range d.order {
			out = append(out, target{app: d.apps[name]})
		}
		return out, nil
	}
	if a, ok := d.apps[t]; ok {
		return []target{{app: a}}, nil
	}
	if ts := d.namespaceTargets(t); len(ts) > 0 {
		return ts, nil
	}
	if id, err := strconv.Atoi(t); err == nil && strings.Trim(t, "0123456789") == "" {
		for _, name := range d.order {
			a := d.apps[name]
			for _, s := range a.slots {
				if s.id == id {
					return []target{{app: a, slot: s}}, nil
				}
			}
		}
	}
	return nil, &NotFoundError{Target: t}
}

// namespaceTargets are the apps of namespace ns, in creation order; apps that name none are
// in config.DefaultNamespace. d.mu must be held.
func (d *Daemon) namespaceTargets(ns string) []target {
	var out []target
	for _, name := range d.order {
		if a := d.apps[name]; a.cfg.NamespaceOf() == ns {
			out = append(out, target{app: a})
		}
	}
	return out
}

func (t target) slots() []*slot {
	if t.slot != nil {
		return []*slot{t.slot}
	}
	return t.app.slots
}
