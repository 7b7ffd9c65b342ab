// Command eventlog is an example pmdaemon hook plugin: it appends one JSON line per lifecycle
// event to a file and can veto the start of chosen apps. It imports nothing from pmdaemon but
// plugins/sdk; copy it to start your own plugin.
//
// Configuration: {"file": "/abs/path/events.log", "veto_apps": ["name", ...]} ("veto_apps" is
// optional).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

type config struct {
	File     string   `json:"file"`
	VetoApps []string `json:"veto_apps"`
}

// line is what one event becomes in the file.
type line struct {
	Kind     string `json:"kind"`
	App      string `json:"app"`
	Instance int    `json:"instance"`
	ID       int    `json:"id"`
	Pid      int    `json:"pid"`
	Ports    []int  `json:"ports"`
	AppPorts []int  `json:"app_ports"`
	ExitCode int    `json:"exit_code"`
	Time     string `json:"time"`
	Reason   string `json:"reason"`
}

// EventLog is the plugin. Handle may be called concurrently, so the config is behind a mutex.
type EventLog struct {
	mu  sync.Mutex
	cfg *config
}

// Configure checks the configuration; an error refuses it and is shown to the user as is.
func (l *EventLog) Configure(_ context.Context, raw json.RawMessage) error {
	var cfg config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf(`eventlog: want {"file": "/abs/path/events.log", "veto_apps": [...]}: %v`, err)
	}
	if !filepath.IsAbs(cfg.File) {
		return fmt.Errorf(`eventlog: "file" must be an absolute path, got %q`, cfg.File)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = &cfg
	return nil
}

// Handle appends the event to the file, and vetoes a start of an app on the veto list.
func (l *EventLog) Handle(_ context.Context, ev sdk.Event) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg == nil {
		return "", errors.New("eventlog: not configured")
	}
	b, err := json.Marshal(line{
		Kind: string(ev.Kind), App: ev.App, Instance: ev.Instance, ID: ev.ID, Pid: ev.Pid,
		Ports: orEmpty(ev.Ports), AppPorts: orEmpty(ev.AppPorts), ExitCode: ev.ExitCode,
		Time: ev.Time.Format(time.RFC3339Nano), Reason: ev.Reason,
	})
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(l.cfg.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("eventlog: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("eventlog: %w", err)
	}
	if ev.Kind == sdk.Starting && slices.Contains(l.cfg.VetoApps, ev.App) {
		return fmt.Sprintf("eventlog: app %s is on the veto list", ev.App), nil
	}
	return "", nil
}

// orEmpty makes a nil slice a JSON [] rather than null.
func orEmpty(xs []int) []int {
	if xs == nil {
		return []int{}
	}
	return xs
}

func main() {
	sdk.Serve(sdk.ServeOpts{Hook: &EventLog{}})
}
