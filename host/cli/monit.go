package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/pmdaemon/pmdaemon/host/tui"
)

func (e *Env) monitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "monit",
		Short: "A terminal UI: the live table, CPU and memory, the selected app's logs; keys restart, reload and stop",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// A screen that redraws itself is for people: scripts read `list --json`.
			if !isTerminal(os.Stdin) || !isTerminal(e.Stdout) {
				return fmt.Errorf("monit needs a terminal on its standard input and output; in a script use 'pmdaemon list' or 'pmdaemon list --json'")
			}
			ctx := cmd.Context()
			c, err := e.client(ctx)
			if err != nil {
				return err
			}
			return tui.Run(ctx, tui.Options{
				Client: c,
				Colour: fancyOutput(e.Stdout, os.LookupEnv),
				Bytes:  FormatBytes,
				Uptime: FormatUptime,
			}, os.Stdin, e.Stdout)
		},
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
