package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/home"
	"github.com/pmdaemon/pmdaemon/host/procfs"
)

func (e *Env) startCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "start CMD [flags] [-- ARGS...]",
		Short: "Start an app: a command line or a script (.js node, .py python3, .sh bash, else exec)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if isEcosystem(args[0]) {
				// --env NAME (no "=") is PM2's `start FILE --env NAME`: the file's env_NAME.
				envs, _ := cmd.Flags().GetStringArray("env")
				pm2Env := len(envs) == 1 && !strings.Contains(envs[0], "=") && cmd.Flags().NFlag() == 1
				if len(args) > 1 || (cmd.Flags().NFlag() > 0 && !pm2Env) {
					return fmt.Errorf("start %s runs an ecosystem file and takes no flags or arguments but --env NAME; set them in the file", args[0])
				}
				o := runOptions{}
				if pm2Env {
					o.env = envs[0]
				}
				return e.runFile(cmd.Context(), args[0], o)
			}
			app, err := appFromFlags(cmd.Flags(), args, cmd.ArgsLenAtDash())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := e.client(ctx)
			if err != nil {
				return err
			}
			st, err := c.Start(ctx, api.StartRequest{App: app})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "[pmdaemon] started %s (%d instance%s, ids %s%s)\n", st.Name, st.Instances,
				plural(st.Instances), joinInts(st.IDs), portNote(st.Ports))
			e.warn(st.Warnings)
			return e.printList(ctx, c)
		},
	}
	f := cmd.Flags()
	registerFieldFlags(f, config.AppFields)
	registerFieldFlags(f, config.HealthFields)
	f.SetInterspersed(true)
	cmd.SetFlagErrorFunc(suggestFlag)
	return cmd
}

// registerFieldFlags declares the flags of the fields that have one, typed by kind: a count
// is an int flag and a yes/no a bool flag, so that pflag refuses "x" for them as it always has.
func registerFieldFlags[T any](f *pflag.FlagSet, fields []config.Field[T]) {
	for _, fd := range fields {
		switch {
		case fd.Flag == "":
		case fd.Kind == config.KindBool:
			f.BoolP(fd.Flag, fd.Short, fd.FlagDefault == "true", fd.Usage)
		case fd.Kind == config.KindCount:
			n, err := strconv.Atoi(fd.FlagDefault)
			if err != nil {
				panic(fmt.Sprintf("field %s: flag default %q is not a count", fd.Key, fd.FlagDefault))
			}
			f.IntP(fd.Flag, fd.Short, n, fd.Usage)
		case fd.Kind == config.KindEnv:
			f.StringArrayP(fd.Flag, fd.Short, nil, fd.Usage)
		case fd.Kind == config.KindSocket || fd.Kind == config.KindWatch:
			// --socket and --watch alone are true; a value is optional (see optionalValues).
			f.StringP(fd.Flag, fd.Short, fd.FlagDefault, fd.Usage)
			f.Lookup(fd.Flag).NoOptDefVal = "true"
		default:
			f.StringP(fd.Flag, fd.Short, fd.FlagDefault, fd.Usage)
		}
	}
}

// flagTexts are the values given to a flag, as text: every value of a repeatable one.
func flagTexts(f *pflag.FlagSet, name string) []string {
	fl := f.Lookup(name)
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	return []string{fl.Value.String()}
}

// setFromFlags sets t's fields from the flags given; a flag left out leaves t's default.
func setFromFlags[T any](f *pflag.FlagSet, fields []config.Field[T], t *T) error {
	for i := range fields {
		fd := &fields[i]
		if fd.Flag == "" || !f.Changed(fd.Flag) {
			continue
		}
		if err := fd.FlagValue(t, flagTexts(f, fd.Flag)); err != nil {
			return err
		}
	}
	return nil
}

// appFromFlags is the App `start` asks for: args are CMD and the words after -- (dash is
// where -- was, or -1), flags the rest.
func appFromFlags(f *pflag.FlagSet, args []string, dash int) (config.App, error) {
	app := config.NewApp()
	app.Script = args[0]
	if dash >= 0 {
		if dash != 1 {
			return app, fmt.Errorf("start takes one CMD before --; quote a command line with spaces, like \"node server.js\"")
		}
		app.Args = args[1:]
	} else if len(args) > 1 {
		return app, fmt.Errorf("start takes one CMD; quote a command line with spaces (\"node server.js\") or put arguments after --")
	}
	if err := setFromFlags(f, config.AppFields, &app); err != nil {
		return app, err
	}
	if app.Name == "" {
		app.Name = config.DefaultName(app.Script)
	}
	cwd := app.Cwd
	if cwd == "" {
		cwd, _ = os.Getwd()
	}
	var err error
	if app.Cwd, err = filepath.Abs(cwd); err != nil {
		return app, flagErr("cwd", cwd, err)
	}
	if app.HealthCheck, err = healthFromFlags(f); err != nil {
		return app, err
	}
	return app, app.Validate()
}

// healthFromFlags builds the health check the --health-* flags describe, or nil when neither
// --health-url nor --health-script (the string fields: what to check) is given.
func healthFromFlags(f *pflag.FlagSet) (*config.HealthCheck, error) {
	what := false
	for _, fd := range config.HealthFields {
		if fd.Kind == config.KindString && f.Changed(fd.Flag) && f.Lookup(fd.Flag).Value.String() != "" {
			what = true
		}
	}
	if !what {
		for _, fd := range config.HealthFields {
			if fd.Kind != config.KindString && f.Changed(fd.Flag) {
				return nil, fmt.Errorf("--%s needs --health-url or --health-script", fd.Flag)
			}
		}
		return nil, nil
	}
	hc := config.NewHealthCheck()
	if err := setFromFlags(f, config.HealthFields, hc); err != nil {
		return nil, err
	}
	return hc, nil
}

// suggestFlag adds the nearest flag to pflag's "unknown flag: --instnaces", as the ecosystem
// readers do for an unknown key.
func suggestFlag(cmd *cobra.Command, err error) error {
	var unknown *pflag.NotExistError
	if !errors.As(err, &unknown) || unknown.GetSpecifiedShortnames() != "" {
		return err
	}
	var flags []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) { flags = append(flags, f.Name) })
	if s := config.Suggest(unknown.GetSpecifiedName(), flags); s != "" {
		return fmt.Errorf("%w (did you mean --%s?)", err, s)
	}
	return err
}

func firstWord(s string) string {
	w, err := config.SplitCommand(s)
	if err != nil || len(w) == 0 {
		return s
	}
	return w[0]
}

func flagErr(flag, val string, err error) error {
	return &config.FieldError{Where: "--" + flag, Value: val, Err: err}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func portNote(ps []int) string {
	if len(ps) == 0 {
		return ""
	}
	return ", ports " + joinInts(ps)
}

func (e *Env) stopCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stop TARGET",
		Short: "Stop an app, an instance id, or all; its ports are released",
		Args:  exactTarget,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.targetAction(cmd.Context(), "stopped", args[0], func(c *api.Client) (*api.Result, error) {
				return c.Stop(cmd.Context(), api.TargetRequest{Target: args[0]})
			})
		},
	}
}

func (e *Env) deleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "delete TARGET",
		Aliases: []string{"del"},
		Short:   "Stop and forget an app, an instance id, or all",
		Args:    exactTarget,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.targetAction(cmd.Context(), "deleted", args[0], func(c *api.Client) (*api.Result, error) {
				return c.Delete(cmd.Context(), api.TargetRequest{Target: args[0]})
			})
		},
	}
}

// overrides are the App fields restart and reload take for one run (the saved config stays
// as it is), with their help there.
var overrides = []struct{ key, usage string }{
	{"port", "new port spec for this run (runtime override)"},
	{"instances", "new number of instances for this run"},
	{"wait_ready", "answer only once every new instance is ready"},
	{"wait_timeout", "how long to wait for readiness (default: the app's wait_timeout, 30s)"},
}

func (e *Env) restartCmd(verb string) *cobra.Command {
	short := "Restart an app, an instance id, or all (--port: runtime override, saved config unchanged)"
	if verb == "reload" {
		short = "Gracefully reload: new instances are up before old ones stop (--port A-B: one instance per port)"
	}
	cmd := &cobra.Command{
		Use:   verb + " TARGET",
		Short: short,
		Args:  exactTarget,
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.TargetRequest{Target: args[0]}
			// The flags are read as start reads them, into an App whose fields given (and not
			// empty) become the request's.
			var run config.App
			for _, o := range overrides {
				fd := config.AppField(o.key)
				fl := cmd.Flags().Lookup(fd.Flag)
				if fl == nil || !fl.Changed || fl.Value.String() == "" {
					continue
				}
				if err := fd.FlagValue(&run, []string{fl.Value.String()}); err != nil {
					return err
				}
			}
			req.Port, req.Instances, req.WaitReady, req.WaitTimeout = run.Port, run.Instances, run.WaitReady, api.Duration(run.WaitTimeout)
			return e.targetAction(cmd.Context(), verb+"ed", args[0], func(c *api.Client) (*api.Result, error) {
				if verb == "reload" {
					return c.Reload(cmd.Context(), req)
				}
				return c.Restart(cmd.Context(), req)
			})
		},
	}
	for _, o := range overrides {
		fd := config.AppField(o.key)
		switch {
		case fd.Kind == config.KindBool && verb == "restart":
			cmd.Flags().Bool(fd.Flag, false, o.usage)
		case fd.Kind != config.KindBool:
			cmd.Flags().StringP(fd.Flag, fd.Short, "", o.usage)
		}
	}
	return cmd
}

func exactTarget(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s takes one TARGET (an app name, an instance id, or all), got %d arguments", cmd.Name(), len(args))
	}
	return nil
}

func (e *Env) targetAction(ctx context.Context, done, target string, call func(*api.Client) (*api.Result, error)) error {
	c, err := e.client(ctx)
	if err != nil {
		return err
	}
	res, err := call(c)
	if err != nil {
		return err
	}
	rows, err := c.List(ctx)
	if err != nil {
		return err
	}
	for _, a := range res.Apps {
		ids, ports := a.IDs, a.Ports
		if isID(target) {
			// An id names one instance: say that one, not every id of its app.
			ids, ports = onlyInstance(target, rows)
		}
		fmt.Fprintf(e.Stdout, "[pmdaemon] %s %s (ids %s%s)\n", done, a.Name, joinInts(ids), portNote(ports))
	}
	e.warn(res.Warnings)
	return RenderList(e.Stdout, rows, e.Fancy)
}

// onlyInstance is the id target names and its port as the list shows it now (none when the
// instance is stopped or was deleted).
func onlyInstance(target string, rows []api.Instance) (ids, ports []int) {
	id, _ := strconv.Atoi(target)
	for _, r := range rows {
		if r.ID == id && r.Port != nil {
			return []int{id}, []int{*r.Port}
		}
	}
	return []int{id}, nil
}

func (e *Env) listCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List every instance: ID, Name, Status, PID, Port, CPU, Memory, Uptime, Restarts",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON {
				rows, err := e.listJSON(cmd.Context())
				if err != nil {
					return err
				}
				return writeRawJSON(e.Stdout, rows, true)
			}
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			return e.printList(cmd.Context(), c)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (e *Env) printList(ctx context.Context, c *api.Client) error {
	rows, err := c.List(ctx)
	if err != nil {
		return err
	}
	return RenderList(e.Stdout, rows, e.Fancy)
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// listJSON is the daemon's list as it sent it, in one request when a daemon runs: `list
// --json` and `jlist` are what scripts poll, so they do not ping first (the answer's headers
// bring the version and the problems a ping would have). When no daemon answers, it goes the
// way of every command, which starts one, and asks again: a GET can be.
func (e *Env) listJSON(ctx context.Context) (json.RawMessage, error) {
	raw, err := e.newClient().ListJSON(ctx)
	if err == nil || api.IsRemote(err) || ctx.Err() != nil {
		return raw, err
	}
	c, err := e.client(ctx)
	if err != nil {
		return nil, err
	}
	return c.ListJSON(ctx)
}

// writeRawJSON writes JSON the daemon sent as it is, indented as writeJSON indents or compact,
// and a newline: what decoding it into the wire types and encoding them again would print
// (the daemon's encoder escapes as writeJSON's does) at a fraction of a CLI run's cost.
func writeRawJSON(w io.Writer, raw json.RawMessage, indent bool) error {
	// The daemon's encoder ends the body with a newline, which Indent would keep.
	raw = bytes.TrimRight(raw, " \t\r\n")
	var buf bytes.Buffer
	buf.Grow(len(raw) + len(raw)/2 + 1)
	var err error
	if indent {
		err = json.Indent(&buf, raw, "", "  ")
	} else {
		err = json.Compact(&buf, raw)
	}
	if err != nil {
		return fmt.Errorf("daemon: bad answer: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

func (e *Env) infoCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "info NAME|ID",
		Aliases: []string{"show"},
		Short:   "Show an app's configuration and live state, including configured vs live ports",
		Args:    exactTarget,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			info, err := c.Info(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, info)
			}
			return RenderInfo(e.Stdout, info)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (e *Env) saveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "save",
		Short: "Write the app list (saved configurations) to dump.json for resurrect",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			p, err := c.Save(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "[pmdaemon] saved the process list to %s\n", p)
			return nil
		},
	}
}

func (e *Env) resurrectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "resurrect",
		Short: "Start every app of dump.json that is not running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Resurrect(cmd.Context())
			if res != nil {
				for _, a := range res.Apps {
					fmt.Fprintf(e.Stdout, "[pmdaemon] resurrected %s (ids %s%s)\n", a.Name, joinInts(a.IDs), portNote(a.Ports))
				}
			}
			if err != nil {
				return err
			}
			return e.printList(cmd.Context(), c)
		},
	}
}

func (e *Env) pingCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ping",
		Short: "Check that the daemon answers (starting it if needed), and how it owns processes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			p, err := c.Ping(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, p)
			}
			fmt.Fprintf(e.Stdout, "pong: daemon pid %d, version %s, home %s\n", p.Pid, p.Version, p.Home)
			if p.ProcessMode == "cgroup" {
				fmt.Fprintf(e.Stdout, "processes: one cgroup per instance under %s\n", p.CgroupRoot)
			} else {
				fmt.Fprintf(e.Stdout, "processes: process groups (no cgroups: %s); see docs/guarantees.md\n", p.ProcessModeReason)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the daemon's answer as JSON")
	return cmd
}

func (e *Env) killCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "kill",
		Short: "Stop every app, then the daemon (the next command starts it again and restores the apps)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := e.newClient()
			p, err := c.Ping(ctx)
			if err != nil {
				// No answer does not mean no daemon: it may be stopped or wedged.
				return e.killUnanswering(err)
			}
			if err := c.Kill(ctx); err != nil {
				return err
			}
			// Wait for the process itself to end, so a following command finds no daemon.
			deadline := time.Now().Add(2 * time.Minute)
			for procfs.Alive(p.Pid) {
				if time.Now().After(deadline) {
					return fmt.Errorf("daemon %d did not exit", p.Pid)
				}
				time.Sleep(10 * time.Millisecond)
			}
			fmt.Fprintln(e.Stdout, "[pmdaemon] apps stopped, daemon killed")
			return nil
		},
	}
}

func (e *Env) daemonCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "daemon",
		Short: "Run the daemon in the foreground (for systemd)",
		Long: "Run the daemon in the foreground (for systemd): this process becomes pmdaemond, the daemon\n" +
			"binary installed beside pmdaemon, keeping its pid.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if by := os.Getenv(home.ExecedEnv); by != "" {
				return fmt.Errorf("the daemon binary %s, started by pmdaemon, is a pmdaemon CLI, not pmdaemond: "+
					"install the pmdaemond built with this pmdaemon there, or name it in %s", by, home.DaemonEnv)
			}
			bin, err := e.daemonBinary()
			if err != nil {
				return err
			}
			env := append(os.Environ(), "PMDAEMON_HOME="+e.Home, home.ExecedEnv+"="+bin)
			// exec, not a child: systemd and scripts see the daemon's own pid and signals.
			err = syscall.Exec(bin, []string{bin, "daemon"}, env)
			return fmt.Errorf("cannot run the daemon %s: %w", bin, err)
		},
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
