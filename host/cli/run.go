package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/lua"
)

// runOptions are the flags of `run` (and of `start FILE.json`).
type runOptions struct {
	dryRun  bool
	only    string
	update  bool
	timeout time.Duration
	env     string              // PM2's env_<env> sections are merged over env
	plugins []config.PluginDecl // a JSON file's plugin declarations
}

func (e *Env) runCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run FILE (.json, .json5, .lua, or PM2's ecosystem.config.js, .cjs, .mjs)",
		Short: "Run an ecosystem file: start its apps (apps already running are left alone unless --update)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.runFile(cmd.Context(), args[0], o)
		},
	}
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "evaluate the file and print what would start; start nothing")
	cmd.Flags().StringVar(&o.only, "only", "", "start only the app of this name")
	cmd.Flags().BoolVar(&o.update, "update", false, "restart apps that are already running with the file's config")
	cmd.Flags().DurationVar(&o.timeout, "timeout", lua.DefaultTimeout, "wall-clock limit for evaluating a Lua file")
	cmd.Flags().StringVar(&o.env, "env", "", "merge each app's env_NAME section over its env (PM2's --env NAME)")
	return cmd
}

// isEcosystem tells whether CMD names an ecosystem file rather than a program.
func isEcosystem(cmd string) bool {
	word := firstWord(cmd)
	return strings.EqualFold(filepath.Ext(word), ".lua") || config.IsEcosystemFile(word)
}

func (e *Env) runFile(ctx context.Context, path string, o runOptions) error {
	switch {
	case strings.EqualFold(filepath.Ext(path), ".lua"):
		if o.env != "" {
			return fmt.Errorf("--env %s selects PM2's env_%s sections, which a Lua file does not have", o.env, o.env)
		}
		return e.runLua(ctx, path, o)
	case config.IsEcosystemFile(path) || config.IsJavaScript(path):
		eco, err := config.LoadEcosystemWith(path, config.LoadOptions{Env: o.env})
		if err != nil {
			return err
		}
		for _, n := range eco.Notes {
			fmt.Fprintf(e.Stderr, "[pmdaemon] note: %s\n", n)
		}
		o.plugins = eco.Plugins
		return e.startApps(ctx, path, eco.Apps, o)
	default:
		return fmt.Errorf("%s is not an ecosystem file: use a .json, .json5, .yml or .lua file, or PM2's ecosystem.config.js (.cjs, .mjs)", path)
	}
}

// ensurePlugins registers an ecosystem file's plugins before its apps start.
func (e *Env) ensurePlugins(ctx context.Context, c *api.Client, where string, ps []config.PluginDecl, update bool) error {
	for i, p := range ps {
		timeout, err := api.ParsePluginTimeout(p.Timeout)
		if err != nil {
			return fmt.Errorf("%s: plugins[%d] (%s): %w", where, i, p.Name, err)
		}
		res, err := c.EnsurePlugin(ctx, api.PluginAddRequest{Name: p.Name, Path: p.Path, Config: p.Config, Timeout: timeout, Update: update})
		if err != nil {
			return fmt.Errorf("%s: plugins[%d] (%s): %w", where, i, p.Name, err)
		}
		e.reportPlugin(*res)
	}
	return nil
}

// reportPlugin prints one line for a plugin an ecosystem file declared.
func (e *Env) reportPlugin(res api.PluginEnsured) {
	name := res.Plugin.Name
	switch {
	case res.Updated:
		fmt.Fprintf(e.Stdout, "[pmdaemon] updated plugin %s with the file's binary and config\n", name)
	case res.Differs:
		fmt.Fprintf(e.Stdout, "[pmdaemon] plugin %s is registered with another binary or config; left alone (use --update to replace it)\n", name)
	case res.Existed:
		fmt.Fprintf(e.Stdout, "[pmdaemon] plugin %s is already registered; left alone\n", name)
	default:
		fmt.Fprintf(e.Stdout, "[pmdaemon] added plugin %s (%s, sha256 %s)\n", name, strings.Join(res.Plugin.Kinds, "+"), short(res.Plugin.SHA256))
	}
}

// startApps starts (or with DryRun, plans) the apps of an ecosystem file.
func (e *Env) startApps(ctx context.Context, path string, apps []config.App, o runOptions) error {
	if err := config.CheckDependencies(filepath.Base(path), apps); err != nil {
		return err
	}
	if o.only != "" {
		var kept []config.App
		var names []string
		for _, a := range apps {
			names = append(names, a.Name)
			if a.Name == o.only {
				kept = append(kept, a)
			}
		}
		if len(kept) == 0 {
			return fmt.Errorf("%s has no app named %q (it has: %s)", path, o.only, strings.Join(names, ", "))
		}
		apps = kept
	}
	if o.dryRun {
		fmt.Fprintf(e.Stdout, "[pmdaemon] dry run of %s: nothing is started\n", path)
		for _, p := range o.plugins {
			fmt.Fprintf(e.Stdout, "[pmdaemon] would register plugin %s (%s)\n", p.Name, p.Path)
		}
		e.printStartOrder(apps)
		return RenderPlan(e.Stdout, apps)
	}
	c, err := e.client(ctx)
	if err != nil {
		return err
	}
	if err := e.ensurePlugins(ctx, c, filepath.Base(path), o.plugins, o.update); err != nil {
		return err
	}
	if err := e.applyApps(ctx, c, filepath.Base(path), apps, o.update); err != nil {
		return err
	}
	return e.printList(ctx, c)
}

// runLua evaluates a Lua ecosystem script. Its cluster.start calls act as they run; apps it
// declares with `return { apps = {...} }` are then started like those of a JSON file.
func (e *Env) runLua(ctx context.Context, path string, o runOptions) error {
	opts := lua.Options{DryRun: o.dryRun, Update: o.update, Only: o.only, Timeout: o.timeout, Log: e.Stderr}
	if !o.dryRun {
		c, err := e.client(ctx)
		if err != nil {
			return err
		}
		opts.Client = c
	} else if c, ok := e.existingClient(ctx); ok {
		opts.Client = c // read-only queries (ports.is_free) may use a running daemon
	}
	res, err := lua.Run(ctx, path, opts)
	if res != nil {
		for _, p := range res.Plugins {
			e.reportPlugin(p)
		}
		for _, st := range res.Started {
			e.reportStarted(st)
		}
	}
	if err != nil {
		return err
	}
	if o.dryRun {
		if err := config.CheckDependencies(filepath.Base(path), res.Declared); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "[pmdaemon] dry run of %s: nothing is started\n", path)
		e.printStartOrder(res.Declared)
		if err := RenderPlan(e.Stdout, append(res.Planned, res.Declared...)); err != nil {
			return err
		}
		for _, a := range res.Actions {
			fmt.Fprintf(e.Stdout, "[pmdaemon] would run: pmdaemon %s\n", a)
		}
		return nil
	}
	if len(res.Declared) > 0 {
		return e.startApps(ctx, path, res.Declared, runOptions{update: o.update, only: o.only})
	}
	return e.printList(ctx, opts.Client)
}

// printStartOrder says, for a file whose apps depend on each other, in which order they start
// (the order the daemon follows; CheckDependencies has refused a cycle).
func (e *Env) printStartOrder(apps []config.App) {
	names := make([]string, len(apps))
	deps := map[string][]string{}  // app -> the apps it depends on
	waits := map[string][]string{} // app -> "db ready", ...
	for i, a := range apps {
		names[i] = a.Name
		for _, d := range a.DependsOn {
			deps[a.Name] = append(deps[a.Name], d.App)
			waits[a.Name] = append(waits[a.Name], d.App+" "+d.Condition)
		}
	}
	if len(deps) == 0 {
		return
	}
	order, err := config.StartOrder(names, func(n string) []string { return deps[n] })
	if err != nil {
		return
	}
	fmt.Fprintf(e.Stdout, "[pmdaemon] start order: %s\n", strings.Join(order, ", "))
	for _, n := range order {
		if len(waits[n]) > 0 {
			fmt.Fprintf(e.Stdout, "[pmdaemon] %s waits for: %s\n", n, strings.Join(waits[n], ", "))
		}
	}
}

// reportStarted prints one line for an app a start request answered.
func (e *Env) reportStarted(st api.Started) {
	switch {
	case st.Updated:
		fmt.Fprintf(e.Stdout, "[pmdaemon] updated %s with the file's config and restarted it (ids %s%s)\n", st.Name, joinInts(st.IDs), portNote(st.Ports))
	case st.Existed:
		fmt.Fprintf(e.Stdout, "[pmdaemon] %s is already running; left alone (use --update to restart it with the file's config)\n", st.Name)
	default:
		fmt.Fprintf(e.Stdout, "[pmdaemon] started %s (%d instance%s, ids %s%s)\n", st.Name, st.Instances, plural(st.Instances), joinInts(st.IDs), portNote(st.Ports))
	}
}

// applyApps starts each app; one that exists is left alone, or updated with --update. The
// daemon starts each after the apps it depends on; an app that fails does not stop the others
// (only those that depend on it), and the error names every app that failed, then those that
// started. where names the file in errors ("" when the apps come from elsewhere).
func (e *Env) applyApps(ctx context.Context, c *api.Client, where string, apps []config.App, update bool) error {
	ifExists := "keep"
	if update {
		ifExists = "update"
	}
	reqs := make([]api.StartRequest, len(apps))
	for i, a := range apps {
		reqs[i] = api.StartRequest{App: a, IfExists: ifExists}
	}
	// One request for the whole file: the daemon writes its state once, not once per app.
	res, err := c.StartMany(ctx, api.StartManyRequest{Apps: reqs})
	if err != nil {
		return err
	}
	var done []string
	for _, st := range res.Started {
		e.reportStarted(st)
		e.warn(st.Warnings)
		if !st.Existed {
			done = append(done, st.Name)
		}
	}
	if res.Failed < 0 {
		return nil
	}
	failures := res.Failures
	if len(failures) == 0 { // a daemon from before failures were listed
		failures = []api.StartFailure{{Index: res.Failed, Name: apps[res.Failed].Name, Error: res.Error}}
	}
	lines := make([]string, len(failures))
	for i, f := range failures {
		lines[i] = f.Error
		if where != "" {
			idx := f.Index
			if strings.HasSuffix(where, ".lua") {
				idx++ // Lua tables count from 1, as the script's own errors do
			}
			lines[i] = fmt.Sprintf("%s: apps[%d] (%s): %s", where, idx, f.Name, f.Error)
		}
	}
	err = errors.New(strings.Join(lines, "\n"))
	if len(done) > 0 {
		return fmt.Errorf("%v (started: %s)", err, strings.Join(done, ", "))
	}
	return err
}

// RenderPlan prints what an ecosystem would start.
func RenderPlan(w io.Writer, apps []config.App) error {
	t := newTable(w)
	t.Header("Name", "Command", "Instances", "Port", "Cwd")
	for _, a := range apps {
		command := strings.TrimSpace(a.Script + " " + strings.Join(quoteArgs(a.Args), " "))
		port := a.Port
		if port == "" {
			port = "-"
		}
		if err := t.Append([]string{a.Name, command, strconv.Itoa(a.Instances), port, a.Cwd}); err != nil {
			return err
		}
	}
	return t.Render()
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return out
}
