package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// The commands PM2 users reach for under PM2's names (docs/migrating-from-pm2.md). Those that
// are another command under another name are their own commands, not cobra aliases, so that
// help lists them where a PM2 user looks.

// statusCmd is `list` under PM2's other name for it.
func (e *Env) statusCmd() *cobra.Command {
	cmd := e.listCmd()
	cmd.Use, cmd.Aliases = "status", nil
	cmd.Short = "Same as list (PM2's name)"
	return cmd
}

// describeCmd is `info` under PM2's name for it.
func (e *Env) describeCmd() *cobra.Command {
	cmd := e.infoCmd()
	cmd.Use, cmd.Aliases = "describe NAME|ID", nil
	cmd.Short = "Same as info (PM2's name)"
	return cmd
}

// jsonListCmd prints the rows of `list --json`: on one line for jlist (for programs, as PM2
// prints it), indented for prettylist.
func (e *Env) jsonListCmd(use string, indent bool) *cobra.Command {
	short := "Print every instance as JSON on one line (the rows of list --json)"
	if indent {
		short = "Print every instance as indented JSON (the rows of list --json)"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rows, err := e.listJSON(cmd.Context())
			if err != nil {
				return err
			}
			return writeRawJSON(e.Stdout, rows, indent)
		},
	}
}

func (e *Env) envCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "env ID",
		Short: "Print the environment instance ID's process runs with, one NAME=value a line",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || !isID(args[0]) {
				return fmt.Errorf("env takes one instance ID (a number from pmdaemon list), got %q", strings.Join(args, " "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			env, err := c.Env(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, env)
			}
			for _, kv := range env.Env {
				fmt.Fprintln(e.Stdout, kv)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (e *Env) signalCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "signal SIGNAL TARGET",
		Aliases: []string{"sendSignal"},
		Short:   "Send a signal (SIGUSR1, USR1 or 10) to the main process of an app's instances, an id's, or all",
		Long: "Send a signal to the main process of every running instance the target names: the process " +
			"pmdaemon started, not its children (an app that should pass it on does so itself).",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("signal takes a SIGNAL and a TARGET (signal SIGUSR1 web), got %d arguments", len(args))
			}
			_, _, err := api.ParseSignal(args[0])
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Signal(cmd.Context(), api.SignalRequest{Signal: args[0], Target: args[1]})
			if err != nil {
				return err
			}
			for _, s := range res.Sent {
				fmt.Fprintf(e.Stdout, "[pmdaemon] sent %s to %s (id %d, pid %d)\n", res.Signal, s.Name, s.ID, s.Pid)
			}
			return nil
		},
	}
}

func (e *Env) resetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reset TARGET",
		Short: "Set the restart counters of an app, an instance id, or all back to 0",
		Args:  exactTarget,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.targetAction(cmd.Context(), "reset", args[0], func(c *api.Client) (*api.Result, error) {
				return c.Reset(cmd.Context(), api.TargetRequest{Target: args[0]})
			})
		},
	}
}

func (e *Env) scaleCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "scale NAME N",
		Short: "Run N instances of an app from now on (saved); a port range grows to fit, the highest indexes stop first",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("scale takes an app NAME and a count N (scale web 4), got %d arguments", len(args))
			}
			if n, err := strconv.Atoi(args[1]); err != nil || n < 1 {
				return fmt.Errorf("scale %s %s: N must be a whole number of instances, at least 1", args[0], args[1])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			n, _ := strconv.Atoi(args[1])
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Scale(cmd.Context(), api.ScaleRequest{Name: args[0], Instances: n})
			if err != nil {
				return err
			}
			switch {
			case len(res.Added) > 0:
				fmt.Fprintf(e.Stdout, "[pmdaemon] scaled %s to %d: started ids %s%s\n", res.Name, res.Instances, joinInts(res.Added), portNote(res.Ports))
			case len(res.Removed) > 0:
				fmt.Fprintf(e.Stdout, "[pmdaemon] scaled %s to %d: stopped ids %s\n", res.Name, res.Instances, joinInts(res.Removed))
			default:
				fmt.Fprintf(e.Stdout, "[pmdaemon] %s already runs %d instance%s\n", res.Name, res.Instances, plural(res.Instances))
			}
			if res.Spec != "" {
				fmt.Fprintf(e.Stdout, "[pmdaemon] %s's port spec is now %s (saved)\n", res.Name, res.Spec)
			}
			e.warn(res.Warnings)
			return e.printList(cmd.Context(), c)
		},
	}
}

// isID reports whether s is an instance id as the daemon reads one: decimal digits only.
func isID(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
