// Package cli is the pmdaemon command line as a library: Main takes the arguments and the
// output streams, so tests run it in-process and the binary's main is a few lines.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/daemon"
)

// Env is what a CLI run sees of the world.
type Env struct {
	Stdout, Stderr io.Writer
	Home           string // PMDAEMON_HOME
	Exe            string // the pmdaemon binary, to start the daemon with
}

// Main runs the CLI and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	env := &Env{Stdout: stdout, Stderr: stderr, Home: HomeDir()}
	env.Exe, _ = os.Executable()
	root := env.Root()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		var ex exitError
		if errors.As(err, &ex) {
			return ex.code
		}
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	return 0
}

// exitError carries an exit code for a failure already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// HomeDir is $PMDAEMON_HOME or ~/.pmdaemon.
func HomeDir() string {
	if h := os.Getenv("PMDAEMON_HOME"); h != "" {
		if abs, err := filepath.Abs(h); err == nil {
			return abs
		}
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/tmp"
	}
	return filepath.Join(home, ".pmdaemon")
}

// Root builds the command tree.
func (e *Env) Root() *cobra.Command {
	root := &cobra.Command{
		Use:           "pmdaemon",
		Short:         "A process manager with port management",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		e.startCmd(), e.stopCmd(), e.restartCmd("restart"), e.restartCmd("reload"), e.deleteCmd(),
		e.listCmd(), e.infoCmd(), e.logsCmd(), e.saveCmd(), e.resurrectCmd(),
		e.pingCmd(), e.killCmd(), e.daemonCmd(), e.runCmd(), e.pluginCmd(), e.startupCmd(), e.flushCmd(),
	)
	return root
}

func (e *Env) paths() daemon.Paths { return daemon.Paths{Home: e.Home} }

// client returns a client for a running daemon, starting one first if none answers.
func (e *Env) client(ctx context.Context) (*api.Client, error) {
	c := api.NewClient(e.paths().Socket())
	p, err := c.Ping(ctx)
	if err == nil {
		printWarnings(e.Stderr, p.Problems)
		return c, nil
	}
	// Only an answer from the daemon means one runs. A refused or reset connection, or a
	// socket that closes mid-request, is a daemon that is gone or going (a SIGKILLed daemon's
	// socket can accept for a moment): start one, and the home's lock decides which lives.
	var remote *api.RemoteError
	if errors.As(err, &remote) || ctx.Err() != nil {
		return nil, err
	}
	if err := e.spawnDaemon(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		p, err := c.Ping(ctx)
		if err == nil {
			printWarnings(e.Stderr, p.Warnings)
			printWarnings(e.Stderr, p.Problems)
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the daemon did not answer within 15s (see %s): %v", e.paths().Log(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func printWarnings(w io.Writer, ws []string) {
	for _, m := range ws {
		fmt.Fprintf(w, "Warning: %s\n", m)
	}
}

// existingClient returns a client only if a daemon answers.
func (e *Env) existingClient(ctx context.Context) (*api.Client, bool) {
	c := api.NewClient(e.paths().Socket())
	_, err := c.Ping(ctx)
	return c, err == nil
}

// spawnDaemon starts `pmdaemon daemon` detached: own session, no terminal, output to
// daemon.log. If two CLIs race, both spawn; the home's lock lets exactly one daemon live.
func (e *Env) spawnDaemon() error {
	if err := os.MkdirAll(e.Home, 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %w", e.Home, err)
	}
	logf, err := os.OpenFile(e.paths().Log(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open daemon log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(e.Exe, "daemon")
	cmd.Env = append(os.Environ(), "PMDAEMON_HOME="+e.Home)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start the daemon: %w", err)
	}
	// Reap it if it exits early (it lost the lock race) so no zombie lingers while we wait.
	go cmd.Wait()
	return nil
}
