package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// fake implements both Allocator and Hook. It records what it was given and answers with what
// the test set. With block set, every call waits until release is closed; with honourCtx also
// set it stops waiting when its context ends, reports that on ctxEnded and returns ctx.Err().
type fake struct {
	mu        sync.Mutex
	config    json.RawMessage
	req       sdk.AllocateRequest
	ev        sdk.Event
	resp      sdk.AllocateResponse
	veto      string
	err       error // returned by every call
	block     bool
	honourCtx bool
	release   chan struct{}
	ctxEnded  chan ctxEnd
}

// ctxEnd is what a blocked call that honours its context saw.
type ctxEnd struct {
	err         error
	hadDeadline bool
}

// wait blocks as the test asked and returns the error the call should return.
func (f *fake) wait(ctx context.Context) error {
	if !f.block {
		return f.err
	}
	if !f.honourCtx {
		<-f.release
		return f.err
	}
	select {
	case <-ctx.Done():
		_, ok := ctx.Deadline()
		f.ctxEnded <- ctxEnd{ctx.Err(), ok}
		return ctx.Err()
	case <-f.release:
		return f.err
	}
}

// seen returns what the plugin was last given. The lock is needed even after the call has
// returned: the race detector cannot see the ordering a network round trip gives.
func (f *fake) seen() (json.RawMessage, sdk.AllocateRequest, sdk.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.config, f.req, f.ev
}

func (f *fake) Configure(ctx context.Context, config json.RawMessage) error {
	err := f.wait(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.config = append(json.RawMessage(nil), config...)
	return err
}

func (f *fake) Allocate(ctx context.Context, req sdk.AllocateRequest) (sdk.AllocateResponse, error) {
	err := f.wait(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.req = req
	return f.resp, err
}

func (f *fake) Handle(ctx context.Context, ev sdk.Event) (string, error) {
	err := f.wait(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ev = ev
	return f.veto, err
}

// connect serves opts over an in-memory gRPC connection and returns the client.
func connect(t *testing.T, opts sdk.ServeOpts) *plugin.GRPCClient {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, sdk.TestPluginSet(opts))
	t.Cleanup(func() {
		// Stop first: closing the client first would make the server stop itself (through
		// go-plugin's controller) concurrently with this Stop, a data race inside go-plugin.
		server.Stop()
		_ = client.Close()
	})
	return client
}

func dispense[T any](t *testing.T, c *plugin.GRPCClient, name string) T {
	t.Helper()
	raw, err := c.Dispense(name)
	if err != nil {
		t.Fatalf("Dispense(%q): %v", name, err)
	}
	v, ok := raw.(T)
	if !ok {
		t.Fatalf("Dispense(%q) gave %T, which is not a %s", name, raw, reflect.TypeFor[T]())
	}
	return v
}

func TestDescribe(t *testing.T) {
	f := &fake{}
	tests := []struct {
		name string
		opts sdk.ServeOpts
		want []string
	}{
		{"allocator only", sdk.ServeOpts{Allocator: f}, []string{sdk.KindAllocator}},
		{"hook only", sdk.ServeOpts{Hook: f}, []string{sdk.KindHook}},
		{"both", sdk.ServeOpts{Allocator: f, Hook: f}, []string{sdk.KindAllocator, sdk.KindHook}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, tt.opts)
			info := dispense[*sdk.InfoClient](t, c, "info")
			kinds, version, err := info.Describe(context.Background())
			if err != nil {
				t.Fatalf("Describe: %v", err)
			}
			if !slices.Equal(kinds, tt.want) {
				t.Errorf("kinds = %q, want %q", kinds, tt.want)
			}
			if version != sdk.Version {
				t.Errorf("sdk version = %q, want %q", version, sdk.Version)
			}
			if tt.opts.Allocator != nil {
				dispense[sdk.Allocator](t, c, sdk.KindAllocator)
			}
			if tt.opts.Hook != nil {
				dispense[sdk.Hook](t, c, sdk.KindHook)
			}
		})
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name     string
		config   json.RawMessage
		wantSeen string // what the plugin receives
		err      error  // what the plugin answers
	}{
		{"document", json.RawMessage(`{"a": [1, 2], "b": "x"}`), `{"a": [1, 2], "b": "x"}`, nil},
		{"none is null", nil, "null", nil},
		{"empty is null", json.RawMessage{}, "null", nil},
		{"refused", json.RawMessage(`{"a": 0}`), `{"a": 0}`, errors.New(`"a" must be positive; got 0`)},
		{"refused, wrapped", json.RawMessage(`1`), `1`, &sdk.ConfigError{Msg: "want an object"}},
	}
	for _, tt := range tests {
		for _, kind := range []string{sdk.KindAllocator, sdk.KindHook} {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				f := &fake{err: tt.err}
				c := connect(t, sdk.ServeOpts{Allocator: f, Hook: f})
				var err error
				if kind == sdk.KindAllocator {
					err = dispense[sdk.Allocator](t, c, kind).Configure(context.Background(), tt.config)
				} else {
					err = dispense[sdk.Hook](t, c, kind).Configure(context.Background(), tt.config)
				}
				if config, _, _ := f.seen(); string(config) != tt.wantSeen {
					t.Errorf("plugin saw config %q, want %q", config, tt.wantSeen)
				}
				if tt.err == nil {
					if err != nil {
						t.Fatalf("Configure: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatal("Configure: no error, want the plugin's refusal")
				}
				if !sdk.IsConfigError(err) {
					t.Errorf("IsConfigError(%v) = false, want true", err)
				}
				if err.Error() != tt.err.Error() {
					t.Errorf("error = %q, want the plugin's text %q", err, tt.err)
				}
			})
		}
	}
}

func TestAllocateRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		req      sdk.AllocateRequest
		wantReq  sdk.AllocateRequest // as the plugin sees it
		resp     sdk.AllocateResponse
		wantResp sdk.AllocateResponse // as the daemon sees it
	}{
		{
			name: "every field",
			req: sdk.AllocateRequest{
				App: "web", Instances: 3, Spec: "auto:5000-5100",
				Candidates:  []int{5000, 5002, 5003, 65535},
				Assignments: map[int]string{5001: "api", 8080: "web", 1: "x"},
			},
			wantReq: sdk.AllocateRequest{
				App: "web", Instances: 3, Spec: "auto:5000-5100",
				Candidates:  []int{5000, 5002, 5003, 65535},
				Assignments: map[int]string{5001: "api", 8080: "web", 1: "x"},
			},
			resp:     sdk.Allow([]int{5000, 5003, 65535}),
			wantResp: sdk.AllocateResponse{Ports: []int{5000, 5003, 65535}},
		},
		{
			name:     "empty slices and map",
			req:      sdk.AllocateRequest{App: "a", Instances: 1, Spec: "8000", Candidates: []int{}, Assignments: map[int]string{}},
			wantReq:  sdk.AllocateRequest{App: "a", Instances: 1, Spec: "8000", Candidates: []int{}, Assignments: map[int]string{}},
			resp:     sdk.Allow([]int{}),
			wantResp: sdk.AllocateResponse{Ports: []int{}},
		},
		{
			name:     "nil slices and map arrive empty",
			req:      sdk.AllocateRequest{App: "a", Spec: "8000"},
			wantReq:  sdk.AllocateRequest{App: "a", Spec: "8000", Candidates: []int{}, Assignments: map[int]string{}},
			resp:     sdk.AllocateResponse{},
			wantResp: sdk.AllocateResponse{Ports: []int{}},
		},
		{
			name:     "denied port",
			req:      sdk.AllocateRequest{App: "db", Instances: 1, Spec: "5432", Candidates: []int{5432}},
			wantReq:  sdk.AllocateRequest{App: "db", Instances: 1, Spec: "5432", Candidates: []int{5432}, Assignments: map[int]string{}},
			resp:     sdk.Deny(5432, "postgres (5432)"),
			wantResp: sdk.AllocateResponse{Ports: []int{}, Denied: true, DeniedPort: 5432, Reason: "postgres (5432)"},
		},
		{
			name:     "denied request",
			req:      sdk.AllocateRequest{App: "w", Instances: 12, Spec: "auto:1-2", Candidates: []int{1, 2}},
			wantReq:  sdk.AllocateRequest{App: "w", Instances: 12, Spec: "auto:1-2", Candidates: []int{1, 2}, Assignments: map[int]string{}},
			resp:     sdk.Deny(0, "too few"),
			wantResp: sdk.AllocateResponse{Ports: []int{}, Denied: true, Reason: "too few"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{resp: tt.resp}
			a := dispense[sdk.Allocator](t, connect(t, sdk.ServeOpts{Allocator: f}), sdk.KindAllocator)
			got, err := a.Allocate(context.Background(), tt.req)
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			if _, req, _ := f.seen(); !reflect.DeepEqual(req, tt.wantReq) {
				t.Errorf("plugin saw\n%#v\nwant\n%#v", req, tt.wantReq)
			}
			if !reflect.DeepEqual(got, tt.wantResp) {
				t.Errorf("daemon got\n%#v\nwant\n%#v", got, tt.wantResp)
			}
		})
	}
}

func TestHandleRoundTrip(t *testing.T) {
	when := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)
	tests := []struct {
		name string
		ev   sdk.Event
		want sdk.Event // as the plugin sees it, Time compared with Equal
		veto string
	}{
		{
			name: "every field",
			ev: sdk.Event{
				Kind: sdk.Crashed, App: "web", Instance: 2, ID: 17, Pid: 4242,
				Ports: []int{8002}, AppPorts: []int{8000, 8001}, ExitCode: -1,
				Time: when, Reason: "killed by signal 9",
			},
			want: sdk.Event{
				Kind: sdk.Crashed, App: "web", Instance: 2, ID: 17, Pid: 4242,
				Ports: []int{8002}, AppPorts: []int{8000, 8001}, ExitCode: -1,
				Time: when, Reason: "killed by signal 9",
			},
		},
		{
			name: "ports-changed, empty slices",
			ev:   sdk.Event{Kind: sdk.PortsChanged, App: "a", Instance: -1, ID: -1, Ports: []int{}, Time: when.In(time.FixedZone("X", 3600))},
			want: sdk.Event{Kind: sdk.PortsChanged, App: "a", Instance: -1, ID: -1, Ports: []int{}, AppPorts: []int{}, Time: when},
		},
		{
			name: "veto",
			ev:   sdk.Event{Kind: sdk.Starting, App: "a", Time: time.Unix(1, 1)},
			want: sdk.Event{Kind: sdk.Starting, App: "a", Ports: []int{}, AppPorts: []int{}, Time: time.Unix(1, 1)},
			veto: "app a is on the veto list: «no» ✗",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fake{veto: tt.veto}
			h := dispense[sdk.Hook](t, connect(t, sdk.ServeOpts{Hook: f}), sdk.KindHook)
			veto, err := h.Handle(context.Background(), tt.ev)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if veto != tt.veto {
				t.Errorf("veto = %q, want %q", veto, tt.veto)
			}
			_, _, got := f.seen()
			if !got.Time.Equal(tt.want.Time) {
				t.Errorf("Time = %v, want %v", got.Time, tt.want.Time)
			}
			want := tt.want
			got.Time, want.Time = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("plugin saw\n%#v\nwant\n%#v", got, want)
			}
		})
	}
}

// call is one RPC of the daemon's side, whatever the kind.
type call struct {
	name string
	do   func(ctx context.Context, a sdk.Allocator, h sdk.Hook) error
}

var calls = []call{
	{"Allocator.Configure", func(ctx context.Context, a sdk.Allocator, _ sdk.Hook) error {
		return a.Configure(ctx, json.RawMessage(`{}`))
	}},
	{"Allocator.Allocate", func(ctx context.Context, a sdk.Allocator, _ sdk.Hook) error {
		_, err := a.Allocate(ctx, sdk.AllocateRequest{App: "a", Instances: 1, Spec: "8000", Candidates: []int{8000}})
		return err
	}},
	{"Hook.Configure", func(ctx context.Context, _ sdk.Allocator, h sdk.Hook) error {
		return h.Configure(ctx, json.RawMessage(`{}`))
	}},
	{"Hook.Handle", func(ctx context.Context, _ sdk.Allocator, h sdk.Hook) error {
		_, err := h.Handle(ctx, sdk.Event{Kind: sdk.Starting, App: "a"})
		return err
	}},
}

func TestCallErrorIsNotConfigError(t *testing.T) {
	for _, c := range calls {
		if c.name == "Allocator.Configure" || c.name == "Hook.Configure" {
			continue // a Configure error is a refusal: see TestConfigure
		}
		t.Run(c.name, func(t *testing.T) {
			f := &fake{err: errors.New("disk on fire")}
			gc := connect(t, sdk.ServeOpts{Allocator: f, Hook: f})
			err := c.do(context.Background(), dispense[sdk.Allocator](t, gc, sdk.KindAllocator), dispense[sdk.Hook](t, gc, sdk.KindHook))
			if err == nil {
				t.Fatal("no error, want the plugin's")
			}
			if sdk.IsConfigError(err) {
				t.Errorf("IsConfigError(%v) = true, want false", err)
			}
			if msg := status.Convert(err).Message(); msg != "disk on fire" {
				t.Errorf("error message = %q, want the plugin's %q", msg, "disk on fire")
			}
		})
	}
}

// TestDeadline: a call past its deadline returns promptly with an error, whether or not the
// plugin honours its context, and the deadline reaches the plugin's context.
func TestDeadline(t *testing.T) {
	for _, honour := range []bool{false, true} {
		for _, c := range calls {
			name := c.name + "/ignores context"
			if honour {
				name = c.name + "/honours context"
			}
			t.Run(name, func(t *testing.T) {
				f := &fake{block: true, honourCtx: honour, release: make(chan struct{}), ctxEnded: make(chan ctxEnd, 1)}
				gc := connect(t, sdk.ServeOpts{Allocator: f, Hook: f})
				t.Cleanup(func() { close(f.release) }) // runs before the connection is closed
				a, h := dispense[sdk.Allocator](t, gc, sdk.KindAllocator), dispense[sdk.Hook](t, gc, sdk.KindHook)

				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				start := time.Now()
				err := c.do(ctx, a, h)
				if took := time.Since(start); took > 5*time.Second {
					t.Errorf("returned after %v, want promptly after the 100ms deadline", took)
				}
				if err == nil {
					t.Fatal("no error from a call past its deadline")
				}
				if !honour {
					// The plugin is still blocked: the error can only be the client's deadline.
					if sdk.IsConfigError(err) {
						t.Errorf("IsConfigError(%v) = true, want false", err)
					}
					if code := status.Code(err); code != codes.DeadlineExceeded {
						t.Errorf("status code = %v (%v), want DeadlineExceeded", code, err)
					}
					return
				}
				select {
				case got := <-f.ctxEnded:
					// Either the plugin's own copy of the deadline fires, or the daemon's side
					// gives up first and cancels the call.
					if !errors.Is(got.err, context.DeadlineExceeded) && !errors.Is(got.err, context.Canceled) {
						t.Errorf("plugin's context ended with %v", got.err)
					}
					if !got.hadDeadline {
						t.Error("the plugin's context had no deadline")
					}
				case <-time.After(5 * time.Second):
					t.Error("the plugin's context did not end: the deadline did not reach it")
				}
			})
		}
	}
}
