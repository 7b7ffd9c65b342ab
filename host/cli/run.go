package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
)

// runOptions are the flags of `run` (and of `start FILE.json`).
type runOptions struct {
	dryRun bool
	only   string
	update bool
}

func (e *Env) runCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run FILE.json|FILE.lua",
		Short: "Run an ecosystem file: start its apps (apps already running are left alone unless --update)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.runFile(cmd.Context(), args[0], o)
		},
	}
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "evaluate the file and print what would start; start nothing")
	cmd.Flags().StringVar(&o.only, "only", "", "start only the app of this name")
	cmd.Flags().BoolVar(&o.update, "update", false, "restart apps that are already running with the file's config")
	return cmd
}

// isEcosystem tells whether CMD names an ecosystem file rather than a program.
func isEcosystem(cmd string) bool {
	switch strings.ToLower(filepath.Ext(firstWord(cmd))) {
	case ".json", ".lua":
		return true
	}
	return false
}

func (e *Env) runFile(ctx context.Context, path string, o runOptions) error {
	var apps []config.App
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		var err error
		if apps, err = config.LoadFile(path); err != nil {
			return err
		}
	case ".lua":
		return fmt.Errorf("%s: Lua ecosystem files are not supported by this build yet", path)
	default:
		return fmt.Errorf("%s is not an ecosystem file: use a .json or .lua file", path)
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
		return RenderPlan(e.Stdout, apps)
	}
	c, err := e.client(ctx)
	if err != nil {
		return err
	}
	if err := e.applyApps(ctx, c, filepath.Base(path), apps, o.update); err != nil {
		return err
	}
	return e.printList(ctx, c)
}

// applyApps starts each app; one that exists is left alone, or updated with --update. It stops
// at the first failure and says which apps were started before it.
// where names the file in errors ("" when the apps come from elsewhere).
func (e *Env) applyApps(ctx context.Context, c *api.Client, where string, apps []config.App, update bool) error {
	ifExists := "keep"
	if update {
		ifExists = "update"
	}
	var done []string
	for i, a := range apps {
		st, err := c.Start(ctx, api.StartRequest{App: a, IfExists: ifExists})
		if err != nil {
			if where != "" {
				err = fmt.Errorf("%s: apps[%d] (%s): %w", where, i, a.Name, err)
			}
			if len(done) > 0 {
				return fmt.Errorf("%v (started before the error: %s)", err, strings.Join(done, ", "))
			}
			return err
		}
		switch {
		case st.Updated:
			fmt.Fprintf(e.Stdout, "[pmdaemon] updated %s with the file's config and restarted it (ids %s%s)\n", st.Name, joinInts(st.IDs), portNote(st.Ports))
		case st.Existed:
			fmt.Fprintf(e.Stdout, "[pmdaemon] %s is already running; left alone (use --update to restart it with the file's config)\n", st.Name)
		default:
			fmt.Fprintf(e.Stdout, "[pmdaemon] started %s (%d instance%s, ids %s%s)\n", st.Name, st.Instances, plural(st.Instances), joinInts(st.IDs), portNote(st.Ports))
			done = append(done, st.Name)
		}
	}
	return nil
}

// RenderPlan prints what an ecosystem would start.
func RenderPlan(w io.Writer, apps []config.App) error {
	t := tablewriter.NewTable(w,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleLight)})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
	)
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
