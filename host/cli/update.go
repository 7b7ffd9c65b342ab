package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/home"
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
		Short: "Replace the running daemon with the installed pmdaemond, without restarting any app",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bin, _, err := e.newDaemonBinary(cmd.Context(), binary)
			if err != nil {
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
				exited, err := e.spawnDaemon(bin)
				if err != nil {
					return err
				}
				p, err := e.awaitDaemon(ctx, c, 0, exited)
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
			exited, err := e.spawnDaemon(bin)
			if err != nil {
				return fmt.Errorf("%w; the apps keep running, and the next pmdaemon command takes them back", err)
			}
			p, err := e.awaitDaemon(ctx, c, h.Pid, exited)
			if err != nil {
				return fmt.Errorf("%w; the apps keep running, and the next pmdaemon command takes them back", err)
			}
			fmt.Fprintf(e.Stdout, "[pmdaemon] daemon updated: pid %d (version %s) handed %d running instance(s) over to pid %d (version %s), without restarting them\n",
				h.Pid, h.Version, h.Instances, p.Pid, p.Version)
			printWarnings(e.Stderr, p.Warnings)
			e.tellProblems(p.Problems) // as every command shows them: printable, once
			if p.Version != api.Version {
				fmt.Fprintf(e.Stderr, "pmdaemon: the new daemon (%s, version %s) and this pmdaemon (version %s) differ; install the two from one build\n", bin, p.Version, api.Version)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", "", "the daemon binary to start the new daemon from: a pmdaemond, or a pmdaemon whose pmdaemond is beside it (default: the pmdaemond beside this pmdaemon)")
	return cmd
}

// newDaemonBinary is the pmdaemond update starts, and its version: --binary's (a pmdaemond,
// or a pmdaemon whose pmdaemond is beside it), else the one this pmdaemon would start. It is
// run with --version first, so that a file that is not a pmdaemond is refused before the
// running daemon hands anything over (a handover to a daemon that never comes leaves the apps
// unsupervised until the next command).
func (e *Env) newDaemonBinary(ctx context.Context, binary string) (bin, version string, err error) {
	if binary == "" {
		if bin, err = e.daemonBinary(); err != nil {
			return "", "", err
		}
	} else if bin, err = filepath.Abs(binary); err != nil {
		return "", "", fmt.Errorf("--binary %q: %v", binary, err)
	}
	name, version, err := binaryVersion(ctx, bin)
	if err != nil {
		return "", "", err
	}
	if name == "pmdaemon" {
		// A CLI: its own pmdaemond, whatever PMDAEMON_DAEMON says (that names this CLI's).
		cli := bin
		if bin, err = home.DaemonBeside(cli); err != nil {
			return "", "", fmt.Errorf("--binary %s is a pmdaemon CLI: %w", cli, err)
		}
		if name, version, err = binaryVersion(ctx, bin); err != nil {
			return "", "", err
		}
	}
	if name != home.DaemonName {
		return "", "", fmt.Errorf("cannot run the new daemon from %s: it is a %s, not %s", bin, name, home.DaemonName)
	}
	return bin, version, nil
}

// binaryVersion runs path --version and returns what it says it is: "pmdaemond" or
// "pmdaemon", and the version. Anything else is an error naming the file and its answer.
func binaryVersion(ctx context.Context, path string) (name, version string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", "", fmt.Errorf("cannot run the new daemon from %s: %v", path, err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return "", "", fmt.Errorf("cannot run the new daemon from %s: not an executable file", path)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Env = append(os.Environ(), "PMDAEMON_HOME="+os.DevNull) // it must not touch a home
	var out bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &out, n: 256}
	runErr := cmd.Run()
	fields := strings.Fields(out.String())
	if runErr == nil && len(fields) == 2 && (fields[0] == home.DaemonName || fields[0] == "pmdaemon") {
		return fields[0], fields[1], nil
	}
	answer := strings.TrimSpace(out.String())
	if runErr != nil {
		answer = fmt.Sprintf("%s (%v)", answer, runErr)
	}
	return "", "", fmt.Errorf("cannot run the new daemon from %s: it is not a %s (asked for --version, it answered %q)", path, home.DaemonName, strings.TrimSpace(answer))
}

// limitedWriter keeps the first n bytes written and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
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
