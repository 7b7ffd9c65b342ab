package home

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// DaemonName is the daemon's binary. The CLI (`pmdaemon`) is a binary of its own so that a
// command such as `list --json` does not start up gRPC, protobuf, Prometheus and the rest of
// the daemon only to make one request (docs/performance.md, "One binary or two").
const DaemonName = "pmdaemond"

// ExecedEnv is set by the CLI in the environment of the daemon binary it starts or execs (its
// path): a `pmdaemon daemon` that finds it set was started by another, so the "daemon binary"
// is a CLI (a copy of pmdaemon under the daemon's name), and it stops instead of looping.
// pmdaemond removes it, so that its apps never see it.
const ExecedEnv = "PMDAEMON_EXECED_BY_CLI"

// ExitAlreadyRunning is pmdaemond's exit code when another daemon holds the home's lock: a
// CLI that started it goes on waiting for that other daemon to answer; any other exit before
// an answer is a daemon that cannot start, and the CLI says so at once.
const ExitAlreadyRunning = 3

// DaemonEnv names a daemon binary to use instead of looking for one.
const DaemonEnv = "PMDAEMON_DAEMON"

// DaemonBinary is the daemon binary that goes with the CLI at cli (the running pmdaemon): $PMDAEMON_DAEMON
// when set, else pmdaemond in cli's directory (after symlinks, so a link to pmdaemon in
// ~/bin finds the daemon where pmdaemon really is), else pmdaemond on PATH. Beside comes before
// PATH so that a build tree's pmdaemon starts its own daemon, not an installed one. A
// candidate that is cli itself (a link or a name given to the CLI) is refused: `pmdaemon
// daemon` would exec itself for ever.
func DaemonBinary(cli string) (string, error) {
	if cli != "" {
		if real, err := filepath.EvalSymlinks(cli); err == nil {
			cli = real
		}
	}
	if p := os.Getenv(DaemonEnv); p != "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			err = checkDaemon(abs, cli)
		}
		if err != nil {
			return "", fmt.Errorf("%s=%q: %v", DaemonEnv, p, err)
		}
		return abs, nil
	}
	var tried []string
	if cli != "" {
		beside := filepath.Join(filepath.Dir(cli), DaemonName)
		err := checkDaemon(beside, cli)
		if err == nil {
			return beside, nil
		}
		if errors.Is(err, errNoFile) {
			tried = append(tried, "beside "+cli)
		} else {
			tried = append(tried, fmt.Sprintf("beside %s (%s %v)", cli, beside, err))
		}
	}
	onPath := "on PATH"
	if p, err := exec.LookPath(DaemonName); err == nil {
		abs, err := filepath.Abs(p)
		if err == nil {
			err = checkDaemon(abs, cli)
		}
		if err == nil {
			return abs, nil
		}
		onPath = fmt.Sprintf("on PATH (%s %v)", p, err)
	}
	tried = append(tried, onPath)
	return "", fmt.Errorf("pmdaemon's daemon binary %s is not %s; install both binaries "+
		"(go install github.com/pmdaemon/pmdaemon/cmd/...@latest, or go build -o DIR ./cmd/... in the repository), "+
		"or name it in %s", DaemonName, joinOr(tried), DaemonEnv)
}

// DaemonBeside is the pmdaemond beside the CLI at cli (after symlinks), ignoring
// $PMDAEMON_DAEMON: what `update --binary CLI` starts.
func DaemonBeside(cli string) (string, error) {
	if real, err := filepath.EvalSymlinks(cli); err == nil {
		cli = real
	}
	beside := filepath.Join(filepath.Dir(cli), DaemonName)
	if err := checkDaemon(beside, cli); err != nil {
		return "", fmt.Errorf("%s beside it: %v", beside, err)
	}
	return beside, nil
}

// checkDaemon says why p cannot be the daemon binary of the CLI at cli, nil when it can.
func checkDaemon(p, cli string) error {
	if err := checkExecutable(p); err != nil {
		return err
	}
	if cli != "" {
		a, errA := os.Stat(p)
		b, errB := os.Stat(cli)
		if errA == nil && errB == nil && os.SameFile(a, b) {
			return fmt.Errorf("is %s itself, the CLI; name pmdaemond, the daemon binary built beside it", cli)
		}
	}
	return nil
}

// errNoFile: there is no file at the path.
var errNoFile = errors.New("no such file")

// checkExecutable says why p cannot be run as a program, nil when it can.
func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errNoFile
		}
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("is a directory")
	}
	// access(2) rather than the mode bits: it also says no for a file this user may not run
	// (0700 and another owner) or one on a noexec mount.
	if st.Mode()&0o111 == 0 || syscall.Access(p, 1 /* X_OK */) != nil {
		return fmt.Errorf("is not executable")
	}
	return nil
}

func joinOr(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, x := range s[1 : len(s)-1] {
		out += ", " + x
	}
	return out + " nor " + s[len(s)-1]
}
