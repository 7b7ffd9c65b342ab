// Command faulty is a plugin that misbehaves on purpose, for the end-to-end tests of plugin
// isolation. Its config picks the fault: {"mode": "...", "once": "/path/marker"}. With "once",
// the fault happens only while the marker file does not exist (it is created first), so a
// restarted plugin behaves: that is how the tests see the daemon start it afresh.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

type faulty struct {
	mu   sync.Mutex
	mode string
	once string
}

func (f *faulty) Configure(_ context.Context, raw json.RawMessage) error {
	var c struct {
		Mode string `json:"mode"`
		Once string `json:"once"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("config: %v", err)
	}
	switch c.Mode {
	case "ok", "crash", "hang", "error", "outside", "dupes", "toofew", "veto", "deny", "hook-crash", "hook-hang", "highest", "events-hang":
	default:
		return fmt.Errorf("unknown mode %q", c.Mode)
	}
	f.mu.Lock()
	f.mode, f.once = c.Mode, c.Once
	f.mu.Unlock()
	return nil
}

func (f *faulty) peek() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mode
}

// fault returns the mode in force for this call.
func (f *faulty) fault() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.once != "" {
		if _, err := os.Stat(f.once); err == nil {
			return "ok"
		}
		os.WriteFile(f.once, []byte("x"), 0o644)
	}
	return f.mode
}

func (f *faulty) common(ctx context.Context, mode string) error {
	switch mode {
	case "crash":
		os.Exit(3)
	case "hang":
		<-ctx.Done()
		select {} // and never answer, even after the caller gave up
	case "error":
		return fmt.Errorf("faulty plugin failed on purpose")
	}
	return nil
}

func (f *faulty) Allocate(ctx context.Context, req sdk.AllocateRequest) (sdk.AllocateResponse, error) {
	if m := f.peek(); m == "hook-crash" || m == "hook-hang" || m == "events-hang" {
		return sdk.Allow(req.Candidates), nil
	}
	mode := f.fault()
	if err := f.common(ctx, mode); err != nil {
		return sdk.AllocateResponse{}, err
	}
	c := req.Candidates
	switch mode {
	case "outside":
		return sdk.Allow(append([]int{1}, c...)), nil
	case "dupes":
		return sdk.Allow(append([]int{c[0]}, c...)), nil
	case "toofew":
		return sdk.Allow(c[:req.Instances-1]), nil
	case "deny":
		return sdk.Deny(0, "faulty says no"), nil
	case "highest":
		// Allows only the highest candidates: in a chain, that shows which ones it was given.
		return sdk.Allow(c[len(c)-req.Instances:]), nil
	}
	return sdk.Allow(c), nil
}

func (f *faulty) Handle(ctx context.Context, ev sdk.Event) (string, error) {
	if ev.Kind != sdk.Starting {
		if f.peek() == "events-hang" {
			<-ctx.Done()
			select {}
		}
		return "", nil
	}
	mode := strings.TrimPrefix(f.fault(), "hook-")
	if err := f.common(ctx, mode); err != nil {
		return "", err
	}
	if mode == "veto" {
		return "faulty vetoes " + ev.App, nil
	}
	return "", nil
}

func main() {
	f := &faulty{}
	sdk.Serve(sdk.ServeOpts{Allocator: f, Hook: f})
}
