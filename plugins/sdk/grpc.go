package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	pb "github.com/pmdaemon/pmdaemon/plugins/sdk/proto"
)

// PluginMap is the plugin set the daemon dispenses from: "info" (served by every plugin),
// "allocator" and "hook".
var PluginMap = map[string]plugin.Plugin{
	kindInfo:      &InfoPlugin{},
	KindAllocator: &AllocatorPlugin{},
	KindHook:      &HookPlugin{},
}

// The shims must keep matching the interfaces they carry: a drift is a compile error here, not
// a failed type assertion in the daemon.
var (
	_ plugin.GRPCPlugin = (*InfoPlugin)(nil)
	_ plugin.GRPCPlugin = (*AllocatorPlugin)(nil)
	_ plugin.GRPCPlugin = (*HookPlugin)(nil)

	_ pb.InfoServer      = (*infoServer)(nil)
	_ pb.AllocatorServer = (*allocatorServer)(nil)
	_ pb.HookServer      = (*hookServer)(nil)

	_ Allocator = (*allocatorClient)(nil)
	_ Hook      = (*hookClient)(nil)
)

// InfoPlugin serves the kinds a binary implements, so the daemon can tell at registration what
// it was given.
type InfoPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Kinds []string
}

func (p *InfoPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterInfoServer(s, &infoServer{kinds: p.Kinds})
	return nil
}

func (p *InfoPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &InfoClient{c: pb.NewInfoClient(c)}, nil
}

type infoServer struct {
	pb.UnimplementedInfoServer
	kinds []string
}

func (s *infoServer) Describe(context.Context, *pb.Empty) (*pb.Description, error) {
	return &pb.Description{Kinds: s.kinds, SdkVersion: Version}, nil
}

// InfoClient is the daemon's side of the Info service.
type InfoClient struct{ c pb.InfoClient }

// Describe returns the kinds the plugin implements and the SDK version it was built with.
func (c *InfoClient) Describe(ctx context.Context) (kinds []string, sdkVersion string, err error) {
	d, err := c.c.Describe(ctx, &pb.Empty{})
	if err != nil {
		return nil, "", err
	}
	return d.Kinds, d.SdkVersion, nil
}

// AllocatorPlugin carries an Allocator over gRPC. Impl is set on the plugin's side only.
type AllocatorPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Allocator
}

func (p *AllocatorPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterAllocatorServer(s, &allocatorServer{impl: p.Impl})
	return nil
}

func (p *AllocatorPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &allocatorClient{c: pb.NewAllocatorClient(c)}, nil
}

type allocatorServer struct {
	pb.UnimplementedAllocatorServer
	impl Allocator
}

func (s *allocatorServer) Configure(ctx context.Context, r *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	return configureResponse(ctx, s.impl.Configure(ctx, configOf(r)))
}

func (s *allocatorServer) Allocate(ctx context.Context, r *pb.AllocateRequest) (*pb.AllocateResponse, error) {
	req := AllocateRequest{
		App: r.App, Instances: int(r.Instances), Spec: r.Spec,
		Candidates: ints(r.Candidates), Assignments: make(map[int]string, len(r.Assignments)),
	}
	for p, a := range r.Assignments {
		req.Assignments[int(p)] = a
	}
	resp, err := s.impl.Allocate(ctx, req)
	if err != nil {
		return nil, err
	}
	return &pb.AllocateResponse{
		Ports: int32s(resp.Ports), Denied: resp.Denied, Reason: resp.Reason, DeniedPort: int32(resp.DeniedPort),
	}, nil
}

type allocatorClient struct{ c pb.AllocatorClient }

func (c *allocatorClient) Configure(ctx context.Context, config json.RawMessage) error {
	r, err := c.c.Configure(ctx, &pb.ConfigureRequest{ConfigJson: config})
	if err != nil {
		return err
	}
	return configureError(r)
}

func (c *allocatorClient) Allocate(ctx context.Context, req AllocateRequest) (AllocateResponse, error) {
	r := &pb.AllocateRequest{
		App: req.App, Instances: int32(req.Instances), Spec: req.Spec,
		Candidates: int32s(req.Candidates), Assignments: make(map[int32]string, len(req.Assignments)),
	}
	for p, a := range req.Assignments {
		r.Assignments[int32(p)] = a
	}
	resp, err := c.c.Allocate(ctx, r)
	if err != nil {
		return AllocateResponse{}, err
	}
	return AllocateResponse{
		Ports: ints(resp.Ports), Denied: resp.Denied, Reason: resp.Reason, DeniedPort: int(resp.DeniedPort),
	}, nil
}

// HookPlugin carries a Hook over gRPC. Impl is set on the plugin's side only.
type HookPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Hook
}

func (p *HookPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterHookServer(s, &hookServer{impl: p.Impl})
	return nil
}

func (p *HookPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &hookClient{c: pb.NewHookClient(c)}, nil
}

type hookServer struct {
	pb.UnimplementedHookServer
	impl Hook
}

func (s *hookServer) Configure(ctx context.Context, r *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	return configureResponse(ctx, s.impl.Configure(ctx, configOf(r)))
}

func (s *hookServer) Handle(ctx context.Context, e *pb.Event) (*pb.HandleResponse, error) {
	var at time.Time // zero stays zero: UnixNano of the zero time does not fit an int64
	if e.TimeUnixNano != 0 {
		at = time.Unix(0, e.TimeUnixNano)
	}
	veto, err := s.impl.Handle(ctx, Event{
		Kind: EventKind(e.Kind), App: e.App, Instance: int(e.Instance), ID: int(e.Id), Pid: int(e.Pid),
		Ports: ints(e.Ports), AppPorts: ints(e.AppPorts), ExitCode: int(e.ExitCode),
		Time: at, Reason: e.Reason,
	})
	if err != nil {
		return nil, err
	}
	return &pb.HandleResponse{Veto: veto}, nil
}

type hookClient struct{ c pb.HookClient }

func (c *hookClient) Configure(ctx context.Context, config json.RawMessage) error {
	r, err := c.c.Configure(ctx, &pb.ConfigureRequest{ConfigJson: config})
	if err != nil {
		return err
	}
	return configureError(r)
}

func (c *hookClient) Handle(ctx context.Context, ev Event) (string, error) {
	var at int64
	if !ev.Time.IsZero() {
		at = ev.Time.UnixNano()
	}
	r, err := c.c.Handle(ctx, &pb.Event{
		Kind: string(ev.Kind), App: ev.App, Instance: int32(ev.Instance), Id: int32(ev.ID), Pid: int32(ev.Pid),
		Ports: int32s(ev.Ports), AppPorts: int32s(ev.AppPorts), ExitCode: int32(ev.ExitCode),
		TimeUnixNano: at, Reason: ev.Reason,
	})
	if err != nil {
		return "", err
	}
	return r.Veto, nil
}

// ConfigError is a configuration the plugin refused; the daemon shows its text as is.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func configOf(r *pb.ConfigureRequest) json.RawMessage {
	if len(r.ConfigJson) == 0 {
		return json.RawMessage("null")
	}
	return json.RawMessage(r.ConfigJson)
}

// A refused configuration travels as a field, not a gRPC error, so that the daemon can tell
// "your config is wrong" from "the plugin is broken".
// A plugin that gave up because the call ran out of time has not judged the configuration:
// that is a failed call, not a refusal.
func configureResponse(ctx context.Context, err error) (*pb.ConfigureResponse, error) {
	if err == nil {
		return &pb.ConfigureResponse{}, nil
	}
	if ctx.Err() != nil {
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	msg := err.Error()
	if msg == "" {
		msg = "configuration refused (the plugin gave no reason)"
	}
	return &pb.ConfigureResponse{Error: msg}, nil
}

func configureError(r *pb.ConfigureResponse) error {
	if r.Error != "" {
		return &ConfigError{Msg: r.Error}
	}
	return nil
}

// IsConfigError reports whether err is a configuration refused by the plugin.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}

func ints(xs []int32) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x)
	}
	return out
}

func int32s(xs []int) []int32 {
	out := make([]int32, len(xs))
	for i, x := range xs {
		out[i] = int32(x)
	}
	return out
}
