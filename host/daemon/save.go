package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"sort"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/state"
)

// Save writes every app's saved configuration to dump.json.
func (d *Daemon) Save() (string, error) {
	d.mu.Lock()
	dump := state.Dump{Apps: []config.App{}}
	for _, name := range d.order {
		dump.Apps = append(dump.Apps, *d.apps[name].cfg)
	}
	d.mu.Unlock()
	b, err := json.MarshalIndent(dump, "", "  ")
	if err != nil {
		return "", err
	}
	if err := state.WriteAtomic(d.paths.Dump(), b, 0o600); err != nil {
		return "", err
	}
	return d.paths.Dump(), nil
}

// Resurrect starts every app of dump.json that is not running, with its saved configuration.
// A client that goes away stops it before the next app; the apps started keep running.
func (d *Daemon) Resurrect(ctx context.Context) (*api.Result, error) {
	dump, err := state.LoadDump(d.paths.Dump())
	if err != nil {
		return nil, &UserError{err.Error()}
	}
	res := &api.Result{Apps: []api.Started{}}
	var errs []error
	// The whole resurrect is one operation: an app is looked up and started under opMu, so a
	// delete cannot slip in between and have a deleted app brought back unlisted.
	end, err := d.beginBatchOp(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	for _, cfg := range dump.Apps {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		d.mu.Lock()
		a, exists := d.apps[cfg.Name]
		idle := exists
		if exists {
			for _, s := range a.slots {
				if s.wanted {
					idle = false
				}
			}
		}
		d.mu.Unlock()
		var st *api.Started
		var err error
		switch {
		case !exists:
			st, err = d.startNew(ctx, cfg, 0)
		case idle:
			// The dump's config is the saved one; any runtime override ends here.
			st, err = d.update(ctx, a, cfg, 0)
		default:
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res.Apps = append(res.Apps, *st)
	}
	sort.Slice(res.Apps, func(i, j int) bool { return res.Apps[i].Name < res.Apps[j].Name })
	return res, errors.Join(errs...)
}
