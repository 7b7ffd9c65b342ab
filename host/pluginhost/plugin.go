// Package pluginhost runs pmdaemon's out-of-process plugins: it registers binaries (pinned by
// sha256), starts them lazily through go-plugin, bounds every call with a timeout, and after a
// crash or a hang kills the process so that the next call starts it afresh. Nothing a plugin
// does — crash, hang, garbage, nonsense answers — can stop the daemon; it becomes an error that
// names the plugin.
package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pmdaemon/pmdaemon/host/state"
	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// DefaultTimeout bounds each plugin call unless the plugin was registered with another.
const DefaultTimeout = 2 * time.Second

// Spec is a registered plugin. It is the state file's record itself, so that what is
// persisted and what the host runs cannot drift apart.
type Spec = state.Plugin

// timeoutOf bounds each call to the plugin s registers.
func timeoutOf(s Spec) time.Duration {
	if s.Timeout <= 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

// hasKind reports whether s was registered as implementing kind.
func hasKind(s Spec, kind string) bool {
	return slices.Contains(s.Kinds, kind)
}

// Error is a plugin failure: it always names the plugin.
type Error struct {
	Plugin string
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("plugin '%s': %s", e.Plugin, e.Msg) }

// ConfigError is a configuration the plugin refused.
type ConfigError struct {
	Plugin string
	Msg    string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("plugin '%s' refused its configuration: %s", e.Plugin, e.Msg)
}

// Plugin is one registered plugin and, while it runs, its process.
type Plugin struct {
	spec   Spec
	logger hclog.Logger

	mu      sync.Mutex // guards the process: one start or kill at a time
	client  *plugin.Client
	alloc   sdk.Allocator
	hook    sdk.Hook
	lastErr string
	starts  int

	events *dispatcher // hooks only
}

// Hash returns the hex sha256 of the file at path.
func Hash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkBinary verifies that path is an absolute path to an executable regular file.
func checkBinary(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("path %q must be absolute", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("cannot use %s: %v", path, errors.Unwrap(err))
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable (mode %v)", path, st.Mode().Perm())
	}
	return nil
}

// ensure starts the plugin process if it is not running; p.mu must be held.
func (p *Plugin) ensure() error {
	if p.client != nil && !p.client.Exited() {
		return nil
	}
	p.killLocked()
	if err := checkBinary(p.spec.Path); err != nil {
		return p.fail("%v", err)
	}
	sum, err := Hash(p.spec.Path)
	if err != nil {
		return p.fail("cannot read %s: %v", p.spec.Path, err)
	}
	if sum != p.spec.SHA256 {
		return p.fail("binary %s has changed since it was added (sha256 %s, now %s); refusing to run it. "+
			"If the change is yours, run: pmdaemon plugin trust %s",
			p.spec.Path, short(p.spec.SHA256), short(sum), p.spec.Name)
	}
	want, _ := hex.DecodeString(sum)
	startTimeout := timeoutOf(p.spec)
	if startTimeout < 5*time.Second {
		startTimeout = 5 * time.Second // a cold start on a loaded machine takes more than a call
	}
	cmd := exec.Command(p.spec.Path)
	// A plugin must not outlive a daemon that was killed -9: the next daemon starts its own.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginMap,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SecureConfig:     &plugin.SecureConfig{Checksum: want, Hash: sha256.New()},
		StartTimeout:     startTimeout,
		Logger:           p.logger,
		// What the plugin writes to os.Stdout/os.Stderr after the handshake goes to the log.
		SyncStdout: p.logger.StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Info}),
		SyncStderr: p.logger.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}),
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return p.fail("did not start: %s", startError(err))
	}
	p.client = client
	p.starts++
	ctx, cancel := context.WithTimeout(context.Background(), timeoutOf(p.spec))
	defer cancel()
	raw, err := rpc.Dispense("info")
	if err != nil {
		p.killLocked()
		return p.fail("did not start: %v", err)
	}
	info, ok := raw.(*sdk.InfoClient)
	if !ok {
		p.killLocked()
		return p.fail("did not start: its info service is served as %T", raw)
	}
	kinds, _, err := info.Describe(ctx)
	if err != nil {
		p.killLocked()
		return p.callError("Describe", err)
	}
	p.alloc, p.hook = nil, nil
	for _, k := range kinds {
		switch k {
		case sdk.KindAllocator, sdk.KindHook:
		default:
			p.killLocked()
			return p.fail("says it implements %q, which is not a kind of plugin (allocator, hook)", k)
		}
		raw, err := rpc.Dispense(k)
		if err != nil {
			p.killLocked()
			return p.fail("cannot use its %s: %v", k, err)
		}
		// The shims are guarded at compile time in sdk; a dispensed value of another type
		// means a go-plugin plugin map that is not ours, which is an error, not a panic.
		var conf sdk.Configurer
		var ok bool
		if k == sdk.KindAllocator {
			p.alloc, ok = raw.(sdk.Allocator)
			conf = p.alloc
		} else {
			p.hook, ok = raw.(sdk.Hook)
			conf = p.hook
		}
		if !ok {
			p.alloc, p.hook = nil, nil
			p.killLocked()
			return p.fail("its %s is served as %T, which does not implement the %s contract", k, raw, k)
		}
		configure := conf.Configure
		cfg := p.spec.Config
		if len(cfg) == 0 {
			cfg = json.RawMessage("null")
		}
		if err := configure(ctx, cfg); err != nil {
			p.killLocked()
			if sdk.IsConfigError(err) {
				p.lastErr = err.Error()
				return &ConfigError{Plugin: p.spec.Name, Msg: err.Error()}
			}
			return p.callError("Configure", err)
		}
	}
	if len(kinds) == 0 {
		p.killLocked()
		return p.fail("implements no kind of plugin")
	}
	// Kinds are fixed at registration (the chain and the hook list read them without p.mu);
	// a binary that now says otherwise is refused like a changed one.
	if len(p.spec.Kinds) == 0 {
		p.spec.Kinds = kinds
	} else if !slices.Equal(p.spec.Kinds, kinds) {
		p.killLocked()
		return p.fail("now implements %s but was registered as %s; run: pmdaemon plugin trust %s",
			strings.Join(kinds, "+"), strings.Join(p.spec.Kinds, "+"), p.spec.Name)
	}
	p.lastErr = ""
	return nil
}

// startError rewrites go-plugin's start-up errors into what a user can act on.
func startError(err error) string {
	msg := err.Error()
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "incompatible api version"):
		return "it speaks another plugin protocol version than this pmdaemon (" +
			fmt.Sprint(sdk.Handshake.ProtocolVersion) + "); rebuild it against this pmdaemon's plugins/sdk: " + msg
	case strings.Contains(msg, "Unrecognized remote plugin message: \n"), strings.HasSuffix(msg, "Unrecognized remote plugin message: "):
		return "it ended without a handshake: is it a pmdaemon plugin built with plugins/sdk?"
	case strings.Contains(msg, "Unrecognized remote plugin message"):
		first, _, _ := strings.Cut(msg, "\n")
		return "it is not a pmdaemon plugin, or it wrote to stdout before the handshake (" + first + ")"
	case strings.Contains(msg, "plugin exited before we could connect"):
		return "it exited before the handshake: is it a pmdaemon plugin built with plugins/sdk? (" + msg + ")"
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return "it did not complete the handshake in time (" + msg + ")"
	case strings.Contains(msg, "checksums did not match"):
		return "its binary changed while it was being started"
	}
	return msg
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func (p *Plugin) fail(format string, a ...any) error {
	e := &Error{Plugin: p.spec.Name, Msg: fmt.Sprintf(format, a...)}
	p.lastErr = e.Msg
	return e
}

// callError classifies a failed call. A hang or a crash kills the process, so that the next
// call starts the plugin afresh; an error the plugin returned leaves it running.
func (p *Plugin) callError(method string, err error) error {
	st, _ := status.FromError(err)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || st.Code() == codes.DeadlineExceeded:
		p.killLocked()
		return p.fail("did not answer %s within %s; it was stopped and will be started afresh on next use",
			method, timeoutOf(p.spec))
	case st.Code() == codes.Unavailable || st.Code() == codes.Canceled || p.client == nil || p.client.Exited():
		p.killLocked()
		return p.fail("crashed during %s (%s); it will be started afresh on next use", method, st.Message())
	case st.Code() == codes.Unimplemented:
		return p.fail("does not implement %s", method)
	}
	return p.fail("%s failed: %s", method, st.Message())
}

// killLocked ends the plugin process; p.mu must be held.
func (p *Plugin) killLocked() {
	if p.client != nil {
		p.client.Kill()
		p.client = nil
	}
	p.alloc, p.hook = nil, nil
}

// Kill ends the plugin process (it is started again on next use).
func (p *Plugin) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killLocked()
}

// allocate runs one Allocate call.
func (p *Plugin) allocate(req sdk.AllocateRequest) (sdk.AllocateResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.ensure(); err != nil {
		return sdk.AllocateResponse{}, err
	}
	if p.alloc == nil {
		return sdk.AllocateResponse{}, p.fail("is registered as an allocator but no longer serves one")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeoutOf(p.spec))
	defer cancel()
	resp, err := p.alloc.Allocate(ctx, req)
	if err != nil {
		return resp, p.callError("Allocate", err)
	}
	p.lastErr = ""
	return resp, nil
}

// handle delivers one event; a crash is retried once on a fresh process, so that a hook that
// died on an earlier event still sees this one. down says the plugin could not serve the call
// at all (it would not start, hung or crashed): asking it again at once would likely cost
// another timeout or start.
func (p *Plugin) handle(ev sdk.Event) (veto string, down bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if err := p.ensure(); err != nil {
			return "", true, err
		}
		if p.hook == nil {
			return "", true, p.fail("is registered as a hook but no longer serves one")
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeoutOf(p.spec))
		veto, err := p.hook.Handle(ctx, ev)
		cancel()
		if err == nil {
			p.lastErr = ""
			return veto, false, nil
		}
		st, _ := status.FromError(err)
		hung := errors.Is(err, context.DeadlineExceeded) || st.Code() == codes.DeadlineExceeded
		crashed := p.client == nil || p.client.Exited() || st.Code() == codes.Unavailable
		err = p.callError("Handle("+string(ev.Kind)+")", err)
		if !crashed || attempt > 0 {
			return "", hung || crashed, err
		}
	}
}

// status is what `plugin list` shows.
func (p *Plugin) status() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sum, err := Hash(p.spec.Path); err != nil {
		return "missing: " + errors.Unwrap(err).Error()
	} else if sum != p.spec.SHA256 {
		return "changed: binary differs from the pinned sha256; it will not be run"
	}
	switch {
	case p.lastErr != "":
		return "failed: " + p.lastErr
	case p.client != nil && !p.client.Exited():
		return "running"
	}
	return "idle"
}
