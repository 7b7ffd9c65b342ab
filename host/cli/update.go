package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/procfs"
)

// handoverTimeout bounds the wait for the old daemon to exit once it has handed over: it only
// writes its state and closes its plugins.
const handoverTimeout = 30 * time.Second

// updateCmd is `pmdaemon update`: the running daemon hands its apps over and exits, and a
// daemon started from the installed binary takes them back, every process running on (same
// pids, ids and ports). PM2's update restarts every app instead.
func (e *Env) updateCmd() *cobra.Command {
	var binary string
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Replace the running daemon with the installed pmdaemon, without restarting any app",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bin := e.Exe
			if binary != "" {
				abs, err := filepath.Abs(binary)
				if err != nil {
					return fmt.Errorf("--binary %q: %v", binary, err)
				}
				bin = abs
			}
			if err := checkExecutable(bin); err != nil {
				return err
			}
			ctx := cmd.Context()
			// No version warning here: a different version is what update is for.
			c := api.NewClient(e.paths().Socket())
			old, err := c.Ping(ctx)
			if err != nil {
				if api.IsRemote(err) || ctx.Err() != nil {
					return err
				}
				if err := e.spawnDaemon(bin); err != nil {
					return err
				}
				p, err := e.awaitDaemon(ctx, c, 0)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.Stdout, "[pmdaemon] no daemon was running; started pid %d (version %s) from %s\n", p.Pid, p.Version, bin)
				printWarnings(e.Stderr, p.Warnings)
				return nil
			}
			h, err := c.Update(ctx)
			if api.IsNotFound(err) && c.DaemonVersion() == api.OlderVersion {
				// A daemon from before update existed cannot hand over; it is ended the way
				// a crash would end it, and the new daemon takes its apps back by the path
				// the apps of a crashed daemon take (docs/guarantees.md).
				h, err = e.killOlderDaemon(old)
			}
			if err != nil {
				return fmt.Errorf("the daemon (pid %d, version %s) did not hand over, and goes on as before: %w", old.Pid, old.Version, err)
			}
			// The next daemon needs the home's lock, which the old one holds until it has exited.
			if st, err := procfs.Read(h.Pid); err == nil && !e.waitDaemonGone(proc{pid: h.Pid, start: st.StartTime}, handoverTimeout) {
				return fmt.Errorf("daemon %d handed over but has not exited after %s (see %s); its apps keep running, "+
					"and the next pmdaemon command once it has exited takes them back", h.Pid, handoverTimeout, e.paths().Log())
			}
			if err := e.spawnDaemon(bin); err != nil {
				return fmt.Errorf("%w; the apps keep running, and the next pmdaemon command takes them back", err)
			}
			p, err := e.awaitDaemon(ctx, c, h.Pid)
			if err != nil {
				return fmt.Errorf("%w; the apps keep running, and the next pmdaemon command takes them back", err)
			}
			fmt.Fprintf(e.Stdout, "[pmdaemon] daemon updated: pid %d (version %s) handed %d running instance(s) over to pid %d (version %s), without restarting them\n",
				h.Pid, h.Version, h.Instances, p.Pid, p.Version)
			printWarnings(e.Stderr, p.Warnings)
			printWarnings(e.Stderr, p.Problems)
			if p.Version != api.Version {
				fmt.Fprintf(e.Stderr, "pmdaemon: the new daemon runs version %s and this pmdaemon is %s\n", p.Version, api.Version)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", "", "the pmdaemon binary to start the new daemon from (default: this pmdaemon)")
	return cmd
}

// checkExecutable refuses, before anything is handed over, a binary that cannot be run.
func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("cannot run the new daemon from %s: %v", path, err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("cannot run the new daemon from %s: not an executable file", path)
	}
	return nil
}

// killOlderDaemon ends a daemon too old to hand over with SIGKILL, which leaves its apps
// running for the next daemon to take back, and answers as a handover would.
func (e *Env) killOlderDaemon(old *api.Ping) (*api.Handover, error) {
	n := 0
	if apps, _ := e.appProcs(); apps != nil {
		n = len(apps)
	}
	fmt.Fprintf(e.Stdout, "[pmdaemon] daemon pid %d (version %s) is too old to hand over; ending it with SIGKILL, which leaves its apps running for the new daemon to take back\n",
		old.Pid, old.Version)
	if err := syscall.Kill(old.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return nil, fmt.Errorf("cannot kill daemon pid %d: %w", old.Pid, err)
	}
	return &api.Handover{Pid: old.Pid, Version: old.Version, Instances: n}, nil
}
