package pluginhost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// Manager holds the registered plugins in registration order, which is also the order of the
// allocator chain and of hook delivery.
type Manager struct {
	logOut io.Writer
	mu     sync.Mutex
	list   []*Plugin
	op     *operation // the Operation in progress, if any
}

// NewManager returns an empty manager; plugins log (their stderr, go-plugin's messages) to
// logOut under their name.
func NewManager(logOut io.Writer) *Manager { return &Manager{logOut: logOut} }

func (m *Manager) newPlugin(s Spec) *Plugin {
	p := &Plugin{
		spec: s,
		logger: hclog.New(&hclog.LoggerOptions{
			Name: "plugin." + s.Name, Output: m.logOut, Level: hclog.Info,
		}),
	}
	if hasKind(s, sdk.KindHook) {
		p.events = newDispatcher(p)
	}
	return p
}

// Load registers persisted plugins without starting them: each starts on first use.
func (m *Manager) Load(specs []Spec) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range specs {
		m.list = append(m.list, m.newPlugin(s))
	}
}

// Specs returns the registrations, for persisting.
func (m *Manager) Specs() []Spec {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Spec, 0, len(m.list))
	for _, p := range m.list {
		out = append(out, p.spec)
	}
	return out
}

// nameRE is compiled on first use: every CLI run links this package, few check a plugin name.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`) })

// AddRequest is a plugin to register.
type AddRequest struct {
	Name    string
	Path    string
	Config  json.RawMessage
	Timeout time.Duration
}

// Check validates a registration without touching the plugin.
func (r AddRequest) Check() error {
	if !nameRE().MatchString(r.Name) {
		return fmt.Errorf("plugin name %q is not valid: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", r.Name)
	}
	if len(r.Config) > 0 && !json.Valid(r.Config) {
		return fmt.Errorf("plugin '%s': config is not valid JSON", r.Name)
	}
	if r.Timeout < 0 {
		return fmt.Errorf("plugin '%s': timeout must be positive, got %s", r.Name, r.Timeout)
	}
	if err := checkBinary(r.Path); err != nil {
		return fmt.Errorf("plugin '%s': %v", r.Name, err)
	}
	return nil
}

// Probe starts the binary at r.Path, learns its kinds and hands it r.Config, and returns the
// registration it would make. The plugin keeps running in the returned Plugin.
func (m *Manager) Probe(r AddRequest) (*Plugin, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	sum, err := Hash(r.Path)
	if err != nil {
		return nil, fmt.Errorf("plugin '%s': cannot read %s: %v", r.Name, r.Path, err)
	}
	spec := Spec{Name: r.Name, Path: r.Path, SHA256: sum, Config: compact(r.Config), Timeout: r.Timeout, AddedAt: time.Now().UTC()}
	p := m.newPlugin(spec)
	p.mu.Lock()
	err = p.ensure()
	p.mu.Unlock()
	if err != nil {
		p.Kill()
		return nil, err
	}
	if hasKind(p.spec, sdk.KindHook) && p.events == nil {
		p.events = newDispatcher(p)
	}
	return p, nil
}

func compact(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var b []byte
	if c, err := json.Marshal(raw); err == nil {
		b = c
	}
	return b
}

// Add registers a probed plugin. The name must be free.
func (m *Manager) Add(p *Plugin) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, q := range m.list {
		if q.spec.Name == p.spec.Name {
			return fmt.Errorf("a plugin named '%s' is already registered (%s); remove it first or choose another name",
				p.spec.Name, q.spec.Path)
		}
	}
	m.list = append(m.list, p)
	return nil
}

// Get returns the plugin registered as name.
func (m *Manager) Get(name string) (*Plugin, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.list {
		if p.spec.Name == name {
			return p, true
		}
	}
	return nil, false
}

// Spec returns p's registration.
func (p *Plugin) Spec() Spec {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spec
}

// Replace swaps the registration named like p for p (an ecosystem file's update).
func (m *Manager) Replace(p *Plugin) {
	m.mu.Lock()
	var old *Plugin
	for i, q := range m.list {
		if q.spec.Name == p.spec.Name {
			old, m.list[i] = q, p
		}
	}
	m.mu.Unlock()
	if old != nil {
		old.close(0)
	}
}

// Remove unregisters name and stops its process.
func (m *Manager) Remove(name string) error {
	m.mu.Lock()
	var gone *Plugin
	for i, p := range m.list {
		if p.spec.Name == name {
			gone = p
			m.list = append(m.list[:i:i], m.list[i+1:]...)
			break
		}
	}
	m.mu.Unlock()
	if gone == nil {
		return fmt.Errorf("no plugin named '%s' is registered", name)
	}
	gone.close(0)
	return nil
}

// close stops delivering events, delivering what is queued for at most drain, and ends the
// process.
func (p *Plugin) close(drain time.Duration) {
	if p.events != nil {
		p.events.close(drain)
	}
	p.Kill()
}

// closeDrain bounds how long a shutdown delivers the hooks' queued events (the stop events
// of the apps, say) before it drops the rest.
const closeDrain = 5 * time.Second

// Close ends every plugin, delivering queued events first for at most a few seconds, all
// hooks at once.
func (m *Manager) Close() {
	m.mu.Lock()
	list := append([]*Plugin(nil), m.list...)
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.close(closeDrain)
		}()
	}
	wg.Wait()
}

// List describes every plugin, in registration order.
func (m *Manager) List() []api.PluginRow {
	m.mu.Lock()
	list := append([]*Plugin(nil), m.list...)
	m.mu.Unlock()
	out := []api.PluginRow{}
	for _, p := range list {
		st := p.status()
		p.mu.Lock()
		out = append(out, api.PluginRow{
			Name: p.spec.Name, Kinds: p.spec.Kinds, Path: p.spec.Path, SHA256: p.spec.SHA256, Status: st,
			Config: p.spec.Config, Timeout: api.Duration(timeoutOf(p.spec)), Starts: p.starts,
		})
		p.mu.Unlock()
	}
	return out
}

func (m *Manager) ofKind(kind string) []*Plugin {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Plugin
	for _, p := range m.list {
		if hasKind(p.spec, kind) {
			out = append(out, p)
		}
	}
	return out
}

// HasAllocators reports whether any allocator plugin is registered.
func (m *Manager) HasAllocators() bool { return len(m.ofKind(sdk.KindAllocator)) > 0 }

// DenialError is an allocation a policy refused.
type DenialError struct {
	Plugin, App, Spec, Reason string
	Port                      int
}

func (e *DenialError) Error() string {
	if e.Port > 0 {
		return fmt.Sprintf("Port %d is reserved by policy '%s': %s", e.Port, e.Plugin, e.Reason)
	}
	return fmt.Sprintf("Ports %s for '%s' denied by policy '%s': %s", e.Spec, e.App, e.Plugin, e.Reason)
}

// Allocate runs req through the allocator chain: every allocator plugin in registration order,
// each seeing the candidates the one before allowed, then Builtin, which takes the lowest of
// what is left. It returns the ports chosen, ascending: req.Instances of them, or fewer when
// fewer candidates were left (the caller reports the shortage). An answer from a plugin that is
// not a subset of its candidates, repeats a port or allows fewer ports than req.Instances
// without a denial is an error naming the plugin.
func (m *Manager) Allocate(req sdk.AllocateRequest) ([]int, error) {
	cands := req.Candidates
	for _, p := range m.ofKind(sdk.KindAllocator) {
		req.Candidates = cands
		resp, err := p.allocate(req)
		if err != nil {
			return nil, err
		}
		if resp.Denied {
			reason := resp.Reason
			if reason == "" {
				reason = "(the policy gave no reason)"
			}
			return nil, &DenialError{Plugin: p.spec.Name, App: req.App, Spec: req.Spec, Port: resp.DeniedPort, Reason: reason}
		}
		allowed, err := checkAllowed(resp.Ports, cands, req.Instances)
		if err != nil {
			p.mu.Lock()
			err = p.fail("%v", err)
			p.mu.Unlock()
			return nil, err
		}
		cands = allowed
	}
	req.Candidates = cands
	resp, err := Builtin{}.Allocate(context.Background(), req)
	if err != nil {
		return nil, err
	}
	return resp.Ports, nil
}

func checkAllowed(got, cands []int, need int) ([]int, error) {
	in := make(map[int]bool, len(cands))
	for _, c := range cands {
		in[c] = true
	}
	seen := make(map[int]bool, len(got))
	for _, p := range got {
		if !in[p] {
			return nil, fmt.Errorf("answered with port %d, which is not one of the %d candidate ports it was given", p, len(cands))
		}
		if seen[p] {
			return nil, fmt.Errorf("answered with port %d more than once", p)
		}
		seen[p] = true
	}
	if len(got) < need {
		return nil, fmt.Errorf("allowed %d port(s) for %d instance(s) without denying the request", len(got), need)
	}
	out := append([]int(nil), got...)
	sort.Ints(out)
	return out, nil
}
