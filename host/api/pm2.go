package api

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// InstanceEnv answers GET /v1/env: the environment an instance's process runs with, as the
// kernel holds it (/proc/PID/environ), in the order the process has it.
type InstanceEnv struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	Pid  int    `json:"pid"`
	// Env is every NAME=value entry of the process's environment.
	Env []string `json:"env"`
}

// SignalRequest asks for a signal to be sent to the main process of every running instance
// of a target (POST /v1/signal). Signal is a name (SIGUSR1, USR1) or a number (10).
type SignalRequest struct {
	Target string `json:"target"`
	Signal string `json:"signal"`
}

// Signalled answers a SignalRequest: the signal as its canonical name and number, and the
// instances it was sent to.
type Signalled struct {
	Signal string              `json:"signal"`
	Number int                 `json:"number"`
	Sent   []SignalledInstance `json:"sent"`
}

// SignalledInstance is one process a signal was sent to.
type SignalledInstance struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	Pid  int    `json:"pid"`
}

// ScaleRequest changes the number of instances of the app Name to Instances, for good: the
// saved configuration is changed with it (POST /v1/scale).
type ScaleRequest struct {
	Name      string `json:"name"`
	Instances int    `json:"instances"`
}

// Scaled answers a ScaleRequest: the app as it runs now, the ids started and stopped, and the
// port spec when scaling changed it (a range grown to fit).
type Scaled struct {
	Started
	Added   []int  `json:"added"`
	Removed []int  `json:"removed"`
	Spec    string `json:"spec,omitempty"`
}

// signalNames are the signals a user may send by name; the numbers are Linux's.
var signalNames = map[string]syscall.Signal{
	"SIGHUP": syscall.SIGHUP, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGKILL": syscall.SIGKILL, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
	"SIGTERM": syscall.SIGTERM, "SIGCONT": syscall.SIGCONT, "SIGSTOP": syscall.SIGSTOP,
	"SIGTSTP": syscall.SIGTSTP, "SIGTTIN": syscall.SIGTTIN, "SIGTTOU": syscall.SIGTTOU,
	"SIGWINCH": syscall.SIGWINCH, "SIGALRM": syscall.SIGALRM, "SIGPIPE": syscall.SIGPIPE,
	"SIGABRT": syscall.SIGABRT, "SIGIO": syscall.SIGIO, "SIGPROF": syscall.SIGPROF,
	"SIGVTALRM": syscall.SIGVTALRM, "SIGXCPU": syscall.SIGXCPU, "SIGXFSZ": syscall.SIGXFSZ,
	"SIGSYS": syscall.SIGSYS, "SIGTRAP": syscall.SIGTRAP, "SIGURG": syscall.SIGURG,
}

// ParseSignal reads a signal as users write it: SIGUSR1, usr1 or 10 (real-time signals by
// number only). It returns the canonical name and the signal; an error says what was given
// and what would do.
func ParseSignal(s string) (string, syscall.Signal, error) {
	if s == "" {
		return "", 0, fmt.Errorf("no signal given: name one (SIGUSR1, USR1) or give its number (10)")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return "", 0, fmt.Errorf("signal %q is not a signal number (1-64)", s)
		}
		sig := syscall.Signal(n)
		for name, v := range signalNames {
			if v == sig {
				return name, sig, nil
			}
		}
		return "SIG" + strconv.Itoa(n), sig, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig, ok := signalNames[name]; ok {
		return name, sig, nil
	}
	return "", 0, fmt.Errorf("signal %q is unknown: give a name such as SIGUSR1, USR1 or SIGHUP, or a number such as 10", s)
}

// Env returns the environment of instance id's process.
func (c *Client) Env(ctx context.Context, id string) (*InstanceEnv, error) {
	var out InstanceEnv
	return &out, c.do(ctx, RouteEnv, url.Values{"id": {id}}, nil, &out)
}

// Signal sends a signal to the main process of the target's running instances.
func (c *Client) Signal(ctx context.Context, req SignalRequest) (*Signalled, error) {
	var out Signalled
	return &out, c.do(ctx, RouteSignal, nil, req, &out)
}

// Reset sets the restart counters of the target's instances to zero.
func (c *Client) Reset(ctx context.Context, req TargetRequest) (*Result, error) {
	return c.action(ctx, RouteReset, req)
}

// Scale changes an app's instance count and saves it.
func (c *Client) Scale(ctx context.Context, req ScaleRequest) (*Scaled, error) {
	var out Scaled
	return &out, c.do(ctx, RouteScale, nil, req, &out)
}
