package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/api"
)

// `pmdaemon web` and `pmdaemon events`: the daemon's TCP listener and its lifecycle events
// (docs/web.md).

func (e *Env) webCmd() *cobra.Command {
	var req api.WebRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "web",
		Short: "Serve the API, /metrics and the event streams on a TCP port (loopback unless --allow-remote), with tokens",
		Long: "Opens (or with --off closes) the daemon's TCP listener, kept across daemon restarts. Every request needs\n" +
			"'Authorization: Bearer TOKEN': 'pmdaemon web token' prints the admin token, --read-only the read token.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			st, err := c.Web(cmd.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, st)
			}
			e.printWeb(st)
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Addr, "addr", "", "host:port to listen on (default "+"127.0.0.1:9615, or the address set before)")
	cmd.Flags().BoolVar(&req.Off, "off", false, "close the listener (and keep it closed across daemon restarts)")
	cmd.Flags().BoolVar(&req.AllowRemote, "allow-remote", false, "allow an address other machines can reach")
	cmd.Flags().StringSliceVar(&req.CORSOrigins, "cors-origin", nil, "a browser origin (https://host:port) allowed to call the API; repeat for more")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the listener's state as JSON")
	cmd.AddCommand(e.webTokenCmd(), e.webStatusCmd())
	return cmd
}

func (e *Env) printWeb(st *api.WebStatus) {
	switch {
	case !st.On:
		fmt.Fprintf(e.Stdout, "web: off (configured address %s)\n", st.Addr)
	case st.Listening != "":
		fmt.Fprintf(e.Stdout, "web: listening on http://%s (metrics at /metrics, events at /v1/events)\n", st.Listening)
	default:
		fmt.Fprintf(e.Stdout, "web: on but not listening: %s\n", st.Error)
	}
	tokens := make([]string, len(st.Tokens))
	for i, t := range st.Tokens {
		tokens[i] = string(t)
	}
	if len(tokens) == 0 {
		tokens = []string{"none"}
	}
	fmt.Fprintf(e.Stdout, "tokens: %s (print one with 'pmdaemon web token [--read-only]')\n", strings.Join(tokens, ", "))
	if len(st.CORSOrigins) > 0 {
		fmt.Fprintf(e.Stdout, "CORS origins: %s\n", strings.Join(st.CORSOrigins, ", "))
	}
}

func (e *Env) webStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the web listener's address, state and which tokens exist",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			st, err := c.WebStatus(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.Stdout, st)
			}
			e.printWeb(st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the state as JSON")
	return cmd
}

func (e *Env) webTokenCmd() *cobra.Command {
	var req api.WebTokenRequest
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print the admin token (--read-only: the read token), making it on first use; --rotate replaces it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			t, err := c.WebToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Stdout, t.Token)
			return nil
		},
	}
	cmd.Flags().BoolVar(&req.ReadOnly, "read-only", false, "the read token: list, info, logs, events and metrics, no actions")
	cmd.Flags().BoolVar(&req.Rotate, "rotate", false, "make a new token; the old one stops working at once")
	return cmd
}

func (e *Env) eventsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Print the daemon's lifecycle events as they happen (started, exited, crashed, restarting, stopped, ...)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client(cmd.Context())
			if err != nil {
				return err
			}
			return c.Events(cmd.Context(), func(ev api.Event) error {
				if asJSON {
					b, err := json.Marshal(ev)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(e.Stdout, "%s\n", b)
					return err
				}
				_, err := fmt.Fprintln(e.Stdout, eventLine(ev))
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	return cmd
}

// eventLine is an event as `pmdaemon events` prints it: time, kind, instance, then what
// there is to say.
func eventLine(ev api.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-12s", ev.Time.Local().Format(time.TimeOnly+".000"), ev.Kind)
	switch {
	case ev.Kind == "dropped":
		fmt.Fprintf(&b, " %d events lost (this client read too slowly)", ev.Dropped)
		return b.String()
	case ev.ID >= 0:
		fmt.Fprintf(&b, " %s[%d] (id %d)", ev.App, ev.Instance, ev.ID)
	default:
		fmt.Fprintf(&b, " %s", ev.App)
	}
	if ev.Pid > 0 {
		fmt.Fprintf(&b, " pid %d", ev.Pid)
	}
	if len(ev.Ports) > 0 {
		fmt.Fprintf(&b, " ports %v", ev.Ports)
	}
	if ev.Kind == "exited" || ev.Kind == "crashed" {
		fmt.Fprintf(&b, " code %d", ev.ExitCode)
	}
	if ev.Cause != "" {
		fmt.Fprintf(&b, " cause %s", ev.Cause)
	}
	if ev.Reason != "" {
		fmt.Fprintf(&b, ": %s", ev.Reason)
	}
	return b.String()
}
