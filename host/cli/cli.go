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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/home"
	"github.com/pmdaemon/pmdaemon/host/logs"
)

// Env is what a CLI run sees of the world.
type Env struct {
	Stdout, Stderr io.Writer
	Home           string // PMDAEMON_HOME
	Exe            string // this pmdaemon binary; the daemon binary is found beside it
	// Fancy is set when list may use colour and emoji (see fancyOutput).
	Fancy bool

	versionTold  sync.Once // the version mismatch is told once per run
	problemsTold sync.Once // and the daemon's problems
}

// Main runs the CLI and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == logs.WriterArg {
		// The daemon runs the binary as an app's log writer: no command tree, no home.
		return logs.RunWriter(args[1:])
	}
	env := &Env{Stdout: stdout, Stderr: stderr, Home: HomeDir(), Fancy: fancyOutput(stdout, os.LookupEnv)}
	env.Exe, _ = os.Executable()
	root := env.Root()
	root.SetArgs(optionalValues(args))
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
func HomeDir() string { return home.Dir() }

// Root builds the command tree.
func (e *Env) Root() *cobra.Command {
	root := &cobra.Command{
		Use:           "pmdaemon",
		Short:         "A process manager with port management",
		Version:       api.Version, // --version and -v, as pm2 -v
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// The same form as `pmdaemond --version`, which update reads.
	root.SetVersionTemplate("pmdaemon {{.Version}}\n")
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		e.startCmd(), e.stopCmd(), e.restartCmd("restart"), e.restartCmd("reload"), e.deleteCmd(),
		e.listCmd(), e.infoCmd(), e.logsCmd(), e.saveCmd(), e.resurrectCmd(),
		e.pingCmd(), e.killCmd(), e.updateCmd(), e.daemonCmd(), e.runCmd(), e.pluginCmd(), e.startupCmd(), e.flushCmd(),
		e.statusCmd(), e.describeCmd(), e.jsonListCmd("jlist", false), e.jsonListCmd("prettylist", true),
		e.envCmd(), e.signalCmd(), e.resetCmd(), e.scaleCmd(),
		e.exportCmd(),
		e.importCmd(),
		e.monitCmd(),
		e.webCmd(), e.eventsCmd(),
	)
	return root
}

func (e *Env) paths() home.Paths { return home.Paths{Home: e.Home} }

// daemonBinary is the daemon this pmdaemon starts: pmdaemond beside it (home.DaemonBinary).
func (e *Env) daemonBinary() (string, error) { return home.DaemonBinary(e.Exe) }

// newClient returns a client for the home's daemon that tells the user, once, when the daemon
// runs another version than this pmdaemon.
func (e *Env) newClient() *api.Client {
	c := api.NewClient(e.paths().Socket())
	c.OnVersionMismatch(e.tellVersion)
	c.OnProblems(e.tellProblems)
	return c
}

// tellProblems shows the daemon's problems (api.Ping's Problems) once per run, whether a ping
// or the header of another answer brought them.
func (e *Env) tellProblems(problems []string) {
	if len(problems) == 0 {
		return
	}
	e.problemsTold.Do(func() {
		shown := make([]string, len(problems))
		for i, p := range problems {
			shown[i] = printable(p) // a path in a problem may hold a terminal escape
		}
		printWarnings(e.Stderr, shown)
	})
}

// tellVersion says, on stderr and without failing the command, that the daemon runs another
// version and how to change that without touching the apps.
//
// update replaces the daemon with the pmdaemond this pmdaemon would start, so it is the advice
// only when that binary is of this pmdaemon's version; when it is not (one of the two binaries
// was upgraded without the other), update would not help, and the advice says what would.
func (e *Env) tellVersion(daemon string) {
	e.versionTold.Do(func() {
		advice := "run 'pmdaemon update' to replace the daemon without restarting your apps"
		if bin, err := e.daemonBinary(); err != nil {
			advice = err.Error()
		} else if name, v, err := binaryVersion(context.Background(), bin); err != nil || name != home.DaemonName {
			advice = fmt.Sprintf("%s is not a pmdaemond of this version: install the pmdaemond built with this pmdaemon", bin)
		} else if v != api.Version {
			advice = fmt.Sprintf("the daemon binary %s is version %s: install the pmdaemond built with this pmdaemon, then run 'pmdaemon update'", bin, v)
		}
		fmt.Fprintf(e.Stderr, "pmdaemon: the daemon runs version %s and this pmdaemon is %s; %s\n", daemon, api.Version, advice)
	})
}

// client returns a client for a running daemon, starting one first if none answers.
func (e *Env) client(ctx context.Context) (*api.Client, error) {
	c := e.newClient()
	p, err := c.Ping(ctx)
	if err == nil {
		e.tellProblems(p.Problems)
		return c, nil
	}
	// Only an answer from the daemon means one runs. A refused or reset connection, or a
	// socket that closes mid-request, is a daemon that is gone or going (a SIGKILLed daemon's
	// socket can accept for a moment): start one, and the home's lock decides which lives.
	if api.IsRemote(err) || ctx.Err() != nil {
		return nil, err
	}
	bin, err := e.daemonBinary()
	if err != nil {
		return nil, fmt.Errorf("no daemon answers on %s and none can be started: %w", e.paths().Socket(), err)
	}
	exited, err := e.spawnDaemon(bin)
	if err != nil {
		return nil, err
	}
	p, err = e.awaitDaemon(ctx, c, 0, exited)
	if err != nil {
		return nil, err
	}
	printWarnings(e.Stderr, p.Warnings)
	e.tellProblems(p.Problems)
	return c, nil
}

// awaitDaemon waits for a daemon just spawned to answer: one other than pid old (0: any).
// exited reports the spawned process's end: an exit before an answer, other than losing the
// home's lock to another daemon (which is then the one to wait for), is a daemon that cannot
// start, said at once with the end of daemon.log rather than after the whole wait.
func (e *Env) awaitDaemon(ctx context.Context, c *api.Client, old int, exited <-chan error) (*api.Ping, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		p, err := c.Ping(ctx)
		if err == nil && p.Pid != old {
			return p, nil
		}
		if err == nil {
			err = fmt.Errorf("daemon %d still answers", old)
		}
		select {
		case werr := <-exited:
			exited = nil
			var ee *exec.ExitError
			if !errors.As(werr, &ee) || ee.ExitCode() != home.ExitAlreadyRunning {
				if werr == nil {
					werr = errors.New("exit status 0")
				}
				return nil, fmt.Errorf("the daemon exited before it answered (%v); %s ends with: %s", werr, e.paths().Log(), logTail(e.paths().Log(), 3))
			}
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("the daemon did not answer within 15s (see %s): %v", e.paths().Log(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logTail is the last n lines of the file at path, joined with " | ", each cut to 600 bytes.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read it: %v)", err)
	}
	defer f.Close()
	const window = 8 << 10
	if st, err := f.Stat(); err == nil && st.Size() > window {
		f.Seek(st.Size()-window, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, window))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(0, len(lines)-n):]
	for i, l := range lines {
		if len(l) > 600 {
			lines[i] = l[:600] + "..."
		}
		lines[i] = strconv.Quote(lines[i])
		lines[i] = lines[i][1 : len(lines[i])-1]
	}
	return strings.Join(lines, " | ")
}

func printWarnings(w io.Writer, ws []string) {
	for _, m := range ws {
		fmt.Fprintf(w, "Warning: %s\n", m)
	}
}

// existingClient returns a client only if a daemon answers.
func (e *Env) existingClient(ctx context.Context) (*api.Client, bool) {
	c := e.newClient()
	_, err := c.Ping(ctx)
	return c, err == nil
}

// spawnDaemon starts `exe daemon` (exe is pmdaemond, or a pmdaemon that execs its own) detached: own session, no terminal, output to daemon.log.
// If two CLIs race, both spawn; the home's lock lets exactly one daemon live.
func (e *Env) spawnDaemon(exe string) (<-chan error, error) {
	if err := os.MkdirAll(e.Home, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", e.Home, err)
	}
	logf, err := os.OpenFile(e.paths().Log(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open daemon log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, "daemon")
	// ExecedEnv: a "pmdaemond" that is a copy of this CLI says so instead of looking for a
	// daemon of its own.
	cmd.Env = append(os.Environ(), "PMDAEMON_HOME="+e.Home, home.ExecedEnv+"="+exe)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start the daemon: %w", err)
	}
	// Reap it if it exits early (it lost the lock race, or cannot start) so no zombie lingers
	// while we wait, and tell awaitDaemon.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return exited, nil
}

// optionalValues joins `--socket shared` into `--socket=shared`. --socket alone means true, so
// pflag would take the next word for a positional argument (the script); a word that is one of
// the flag's values is meant as its value, as users write it. Words after "--" are left alone.
func optionalValues(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if a == "--socket" && i+1 < len(args) {
			if _, err := config.ParseSocketMode(args[i+1]); err == nil && args[i+1] != "" {
				out = append(out, a+"="+args[i+1])
				i++
				continue
			}
		}
		if a == "--timestamp" && i+1 < len(args) && timestampFormat(args[i+1]) {
			out = append(out, a+"="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
	}
	return out
}

// timestampFormat reports whether the word after `logs --timestamp` is its format (PM2's
// `--timestamp [format]`) rather than the target: a moment.js format with something besides
// letters in it ("HH:mm:ss"), which no app name is likely to be.
func timestampFormat(word string) bool {
	if strings.HasPrefix(word, "-") || !strings.ContainsFunc(word, func(r rune) bool { return !unicode.IsLetter(r) }) {
		return false
	}
	_, err := config.MomentLayout(word)
	return err == nil
}
