package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/daemon"
	"github.com/pmdaemon/pmdaemon/host/ports"
	"github.com/pmdaemon/pmdaemon/host/procfs"
)

func (e *Env) startCmd() *cobra.Command {
	var (
		name, instances, port, cwd, maxMem               string
		minUptime, restartDelay, expBackoff, killTimeout string
		envs                                             []string
		maxRestarts                                      int
		noAutorestart                                    bool
		health                                           healthFlags
		waitReady                                        bool
		waitTimeout, logMaxSize                          string
		logKeep                                          int
	)
	cmd := &cobra.Command{
		Use:   "start CMD [flags] [-- ARGS...]",
		Short: "Start an app: a command line or a script (.js node, .py python3, .sh bash, else exec)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := config.NewApp()
			app.Script = args[0]
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				if dash != 1 {
					return fmt.Errorf("start takes one CMD before --; quote a command line with spaces, like \"node server.js\"")
				}
				app.Args = args[1:]
			} else if len(args) > 1 {
				return fmt.Errorf("start takes one CMD; quote a command line with spaces (\"node server.js\") or put arguments after --")
			}
			if isEcosystem(app.Script) {
				if len(app.Args) > 0 || cmd.Flags().NFlag() > 0 {
					return fmt.Errorf("start %s runs an ecosystem file and takes no flags or arguments; set them in the file", app.Script)
				}
				return e.runFile(cmd.Context(), app.Script, runOptions{})
			}
			app.Name = name
			if app.Name == "" {
				app.Name = config.DefaultName(app.Script)
			}
			var err error
			if app.Instances, err = config.ParseInstances(instances); err != nil {
				return flagErr("instances", instances, err)
			}
			if port != "" {
				spec, err := ports.ParseSpec(port)
				if err != nil {
					return err
				}
				app.Port = spec.String()
			}
			if cwd == "" {
				cwd, _ = os.Getwd()
			}
			if app.Cwd, err = filepath.Abs(cwd); err != nil {
				return flagErr("cwd", cwd, err)
			}
			if len(envs) > 0 {
				app.Env = map[string]string{}
				for _, kv := range envs {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return flagErr("env", kv, errors.New("use NAME=VALUE"))
					}
					app.Env[k] = v
				}
			}
			if cmd.Flags().Changed("max-restarts") {
				if maxRestarts < 0 {
					return flagErr("max-restarts", strconv.Itoa(maxRestarts), errors.New("must not be negative"))
				}
				app.MaxRestarts = maxRestarts
			}
			for _, d := range []struct {
				flag, val string
				dst       *time.Duration
			}{
				{"min-uptime", minUptime, &app.MinUptime}, {"restart-delay", restartDelay, &app.RestartDelay},
				{"exp-backoff-restart-delay", expBackoff, &app.ExpBackoffRestartDelay}, {"kill-timeout", killTimeout, &app.KillTimeout},
			} {
				if !cmd.Flags().Changed(d.flag) {
					continue
				}
				if *d.dst, err = config.ParseDuration(d.val); err != nil {
					return flagErr(d.flag, d.val, err)
				}
			}
			if maxMem != "" {
				if app.MaxMemoryRestart, err = config.ParseMemory(maxMem); err != nil {
					return flagErr("max-memory", maxMem, err)
				}
			}
			app.Autorestart = !noAutorestart
			if app.HealthCheck, err = health.check(cmd); err != nil {
				return err
			}
			app.WaitReady = waitReady
			if cmd.Flags().Changed("wait-timeout") {
				if app.WaitTimeout, err = config.ParseDuration(waitTimeout); err != nil || app.WaitTimeout <= 0 {
					return flagErr("wait-timeout", waitTimeout, positive(err))
				}
			}
			if logMaxSize != "" {
				if app.LogMaxSize, err = config.ParseMemory(logMaxSize); err != nil {
					return flagErr("log-max-size", logMaxSize, err)
				}
			}
			if cmd.Flags().Changed("log-keep") {
				if logKeep < 1 || logKeep > 1000 {
					return flagErr("log-keep", strconv.Itoa(logKeep), errors.New("must be 1-1000"))
				}
				app.LogKeep = logKeep
			}
			if err := app.Validate(); err != nil {
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
	f.StringVar(&name, "name", "", "app name (default: the script's base name)")
	f.StringVarP(&instances, "instances", "i", "1", "number of instances, or max (one per CPU)")
	f.StringVarP(&port, "port", "p", "", "port spec: 3000, 3000-3003 or auto:5000-5100")
	f.StringArrayVarP(&envs, "env", "e", nil, "environment variable NAME=VALUE (repeatable)")
	f.StringVar(&cwd, "cwd", "", "working directory (default: the current one)")
	f.StringVar(&maxMem, "max-memory", "", "restart an instance whose memory exceeds this (e.g. 200M)")
	f.IntVar(&maxRestarts, "max-restarts", config.DefaultMaxRestarts, "unstable restarts before errored")
	f.StringVar(&minUptime, "min-uptime", "1s", "a run shorter than this is unstable")
	f.StringVar(&restartDelay, "restart-delay", "0", "delay before an automatic restart")
	f.StringVar(&expBackoff, "exp-backoff-restart-delay", "0", "initial exponential backoff between unstable restarts")
	f.StringVar(&killTimeout, "kill-timeout", "5s", "time between SIGTERM and SIGKILL on stop")
	f.BoolVar(&noAutorestart, "no-autorestart", false, "do not restart the app when it exits")
	health.register(f)
	f.BoolVar(&waitReady, "wait-ready", false, "answer only once every instance is ready (healthy, or up for min-uptime)")
	f.StringVar(&waitTimeout, "wait-timeout", "30s", "how long --wait-ready waits")
	f.StringVar(&logMaxSize, "log-max-size", "10M", "rotate each log file at this size")
	f.IntVar(&logKeep, "log-keep", config.DefaultLogKeep, "rotated log files to keep")
	f.SetInterspersed(true)
	return cmd
}

// healthFlags are start's health-check flags.
type healthFlags struct {
	url, script, interval, timeout string
	retries                        int
	noRestart                      bool
}

func (h *healthFlags) register(f *pflag.FlagSet) {
	f.StringVar(&h.url, "health-url", "", "HTTP health check; {port} is the instance's port (http://127.0.0.1:{port}/health)")
	f.StringVar(&h.script, "health-script", "", "command health check: healthy when it exits 0 (runs in cwd with PORT set)")
	f.StringVar(&h.interval, "health-interval", "5s", "time between health checks")
	f.StringVar(&h.timeout, "health-timeout", "2s", "time a health check may take")
	f.IntVar(&h.retries, "health-retries", config.DefaultHealthRetries, "consecutive failed checks that make an instance unhealthy")
	f.BoolVar(&h.noRestart, "no-health-restart", false, "report an unhealthy instance without restarting it")
}

// check builds the health check the flags describe, or nil without --health-url/--health-script.
func (h *healthFlags) check(cmd *cobra.Command) (*config.HealthCheck, error) {
	if h.url == "" && h.script == "" {
		for _, f := range []string{"health-interval", "health-timeout", "health-retries", "no-health-restart"} {
			if cmd.Flags().Changed(f) {
				return nil, fmt.Errorf("--%s needs --health-url or --health-script", f)
			}
		}
		return nil, nil
	}
	hc := config.NewHealthCheck()
	hc.URL, hc.Script, hc.Retries, hc.Restart = h.url, h.script, h.retries, !h.noRestart
	var err error
	if hc.Interval, err = config.ParseDuration(h.interval); err != nil || hc.Interval <= 0 {
		return nil, flagErr("health-interval", h.interval, positive(err))
	}
	if hc.Timeout, err = config.ParseDuration(h.timeout); err != nil || hc.Timeout <= 0 {
		return nil, flagErr("health-timeout", h.timeout, positive(err))
	}
	if h.retries < 1 {
		return nil, flagErr("health-retries", strconv.Itoa(h.retries), errors.New("must be at least 1"))
	}
	return hc, nil
}

// positive is the error of a duration that parsed but is not positive.
func positive(err error) error {
	if err != nil {
		return err
	}
	return errors.New("must be a positive duration such as 2s")
}

func firstWord(s string) string {
	w, err := config.SplitCommand(s)
	if err != nil || len(w) == 0 {
		return s
	}
	return w[0]
}

func flagErr(flag, val string, err error) error {
	return fmt.Errorf("invalid value %q for --%s: %v", val, flag, err)
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

func (e *Env) restartCmd(verb string) *cobra.Command {
	var port, instances, waitTimeout string
	var waitReady bool
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
			if port != "" {
				spec, err := ports.ParseSpec(port)
				if err != nil {
					return err
				}
				req.Port = spec.String()
			}
			if instances != "" {
				n, err := config.ParseInstances(instances)
				if err != nil {
					return flagErr("instances", instances, err)
				}
				req.Instances = n
			}
			req.WaitReady = waitReady
			if waitTimeout != "" {
				d, err := config.ParseDuration(waitTimeout)
				if err != nil || d <= 0 {
					return flagErr("wait-timeout", waitTimeout, positive(err))
				}
				req.WaitTimeout = api.Duration(d)
			}
			return e.targetAction(cmd.Context(), verb+"ed", args[0], func(c *api.Client) (*api.Result, error) {
				if verb == "reload" {
					return c.Reload(cmd.Context(), req)
				}
				return c.Restart(cmd.Context(), req)
			})
		},
	}
	cmd.Flags().StringVarP(&port, "port", "p", "", "new port spec for this run (runtime override)")
	cmd.Flags().StringVarP(&instances, "instances", "i", "", "new number of instances for this run")
	if verb == "restart" {
		cmd.Flags().BoolVar(&waitReady, "wait-ready", false, "answer only once every new instance is ready")
	}
	cmd.Flags().StringVar(&waitTimeout, "wait-timeout", "", "how long to wait for readiness (default: the app's wait_timeout, 30s)")
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
	for _, a := range res.Apps {
		fmt.Fprintf(e.Stdout, "[pmdaemon] %s %s (ids %s%s)\n", done, a.Name, joinInts(a.IDs), portNote(a.Ports))
	}
	e.warn(res.Warnings)
	return e.printList(ctx, c)
}

func (e *Env) listCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List every instance: ID, Name, Status, PID, Port, CPU, Memory, Uptime, Restarts",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				rows, err := c.List(cmd.Context())
				if err != nil {
					return err
				}
				return writeJSON(e.Stdout, rows)
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
	return RenderList(e.Stdout, rows)
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (e *Env) infoCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "info NAME|ID",
		Aliases: []string{"describe", "show"},
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
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return daemon.Serve(e.Home, e.Stderr)
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
