package export

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/lua"
)

// FileOptions are what loading a Lua file needs; a JSON or PM2 file needs none of them.
type FileOptions struct {
	// Client, when set, answers a Lua script's read-only queries (ports.is_free), as in
	// `run --dry-run`; nothing is started.
	Client *api.Client
	// Log receives the script's log.info and print output.
	Log io.Writer
}

// FromFile loads an ecosystem file with the loaders `run` uses: JSON, JSON5, PM2's
// ecosystem.config.js, or Lua evaluated as a dry run.
func FromFile(ctx context.Context, path string, o FileOptions) (*Source, error) {
	src := &Source{Name: JobName(path), From: filepath.Base(path)}
	switch {
	case strings.EqualFold(filepath.Ext(path), ".lua"):
		res, err := lua.Run(ctx, path, lua.Options{DryRun: true, Client: o.Client, Log: o.Log})
		if err != nil {
			return nil, err
		}
		src.Apps = append(res.Planned, res.Declared...)
		src.Drop("%s is a Lua script: it was evaluated now, on this machine, and the export holds the apps of this one evaluation; its logic (env.get, conditions, loops, ports.is_free) does not carry over", src.From)
		for _, action := range res.Actions {
			if rest, ok := strings.CutPrefix(action, "plugin add "); ok {
				src.Drop("%s: plugin %s: pmdaemon plugins run in pmdaemon's daemon; neither Nomad nor Kubernetes runs them", src.From, rest)
				continue
			}
			src.Drop("%s: `pmdaemon %s`: the script's later operations on running apps are not part of a job", src.From, action)
		}
	case config.IsEcosystemFile(path):
		eco, err := config.LoadEcosystem(path)
		if err != nil {
			return nil, err
		}
		src.Apps = eco.Apps
		for _, n := range eco.Notes {
			src.Change("%s", n) // each names the file already
		}
		for _, p := range eco.Plugins {
			src.Drop("%s: plugin %s (%s): pmdaemon plugins run in pmdaemon's daemon; neither Nomad nor Kubernetes runs them", src.From, p.Name, p.Path)
		}
	default:
		return nil, fmt.Errorf("%s is not an ecosystem file: use a .json, .json5 or .lua file, or PM2's ecosystem.config.js (.cjs, .mjs)", path)
	}
	return src, nil
}

// FromDaemon reads the running daemon's apps: each app's saved configuration (info), in the
// order list shows them, and its plugins.
func FromDaemon(ctx context.Context, c *api.Client) (*Source, error) {
	src := &Source{Name: "pmdaemon", From: "the running apps"}
	rows, err := c.List(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, row := range rows {
		if seen[row.Name] {
			continue
		}
		seen[row.Name] = true
		info, err := c.Info(ctx, row.Name)
		if err != nil {
			return nil, fmt.Errorf("reading app %q from the daemon: %w", row.Name, err)
		}
		src.Apps = append(src.Apps, info.Config.Config())
		if info.PortOverride {
			src.Change("%s runs with a runtime port override (%s); the export has its saved port %s", AppLabel(info.Name), info.LivePortSpec, info.PortSpec)
		}
	}
	plugins, err := c.Plugins(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range plugins {
		src.Drop("plugin %s (%s): pmdaemon plugins run in pmdaemon's daemon; neither Nomad nor Kubernetes runs them", p.Name, strings.Join(p.Kinds, "+"))
	}
	if len(src.Apps) == 0 {
		return nil, fmt.Errorf("the daemon runs no apps: nothing to export (give an ecosystem file, or start the apps first)")
	}
	return src, nil
}
