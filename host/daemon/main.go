package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/home"
	"github.com/pmdaemon/pmdaemon/host/logs"
)

// Main is the daemon binary (cmd/pmdaemond) and returns its exit code. It has three uses, none
// of them typed by people: the pmdaemon CLI starts it to serve a PMDAEMON_HOME (no argument,
// or "daemon" as `pmdaemon daemon` execs it), the daemon runs it as an app's log writer, and
// --version says which version it is.
func Main(args []string, stdout, stderr io.Writer) int {
	os.Unsetenv(home.ExecedEnv)
	switch {
	case len(args) > 0 && args[0] == logs.WriterArg:
		// An app's log writer: no home, no lock.
		return logs.RunWriter(args[1:])
	case len(args) == 0, len(args) == 1 && args[0] == "daemon":
		if err := Serve(home.Dir(), stderr); err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			if errors.Is(err, ErrAlreadyRunning) {
				return home.ExitAlreadyRunning
			}
			return 1
		}
		return 0
	case len(args) == 1 && (args[0] == "--version" || args[0] == "version"):
		fmt.Fprintf(stdout, "%s %s\n", home.DaemonName, api.Version)
		return 0
	}
	fmt.Fprintf(stderr, "Error: %s takes no arguments %q: it is pmdaemon's daemon, which the pmdaemon command starts "+
		"(run it in the foreground with `pmdaemon daemon`)\n", home.DaemonName, args)
	return 2
}
