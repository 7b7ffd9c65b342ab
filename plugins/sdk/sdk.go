// Package sdk is everything needed to write a pmdaemon plugin: the handshake, the Allocator and
// Hook interfaces, the go-plugin (gRPC) shims that carry them between processes, and Serve.
// A plugin is a separate program that imports only this package and calls Serve from main;
// pmdaemon starts it when first needed, talks to it over gRPC, and restarts it after a crash.
//
// See docs/plugins.md for the contract, the lifecycle and how to test a plugin.
package sdk

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative proto/pmdaemon_plugin.proto

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hashicorp/go-plugin"
)

// Version is the SDK's version, reported to the daemon by every plugin built with it.
const Version = "1.0.0"

// Kinds of plugin. One binary may implement both.
const (
	KindAllocator = "allocator"
	KindHook      = "hook"
	kindInfo      = "info"
)

// Handshake is shared by pmdaemon and its plugins. A binary started without the cookie (by a
// person, say) explains itself and exits; a plugin built for another protocol version is
// refused by the daemon with both versions named.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PMDAEMON_PLUGIN",
	MagicCookieValue: "pmdaemon-plugin-6f1c2a9e",
}

// AllocateRequest asks a policy which ports an app may get.
type AllocateRequest struct {
	App       string
	Instances int    // how many ports are still to be chosen (1 when one instance of an app restarts)
	Spec      string // the app's port spec: "8000", "8000-8003" or "auto:5000-5100"
	// Candidates are the ports free in pmdaemon's registry and on the OS, ascending. In a chain
	// of allocators they are what the previous policy allowed.
	Candidates []int
	// Assignments are the ports held by apps now: port -> app name.
	Assignments map[int]string
}

// AllocateResponse is a policy's answer: the candidates it allows (a subset of the request's,
// ascending, at least Instances of them), or a denial.
type AllocateResponse struct {
	Ports  []int
	Denied bool
	Reason string
	// DeniedPort is the port a denial is about, or 0 when it is about the request as a whole.
	DeniedPort int
}

// Allow answers with the ports the policy allows.
func Allow(ports []int) AllocateResponse { return AllocateResponse{Ports: ports} }

// Deny refuses the request; port is the offending port, or 0.
func Deny(port int, reason string) AllocateResponse {
	return AllocateResponse{Denied: true, DeniedPort: port, Reason: reason}
}

// Configurer is what every kind of plugin implements first.
type Configurer interface {
	// Configure receives the plugin's configuration (a JSON document, "null" when none was
	// given). It is called once each time the plugin process starts, before any other call;
	// an error refuses the configuration and is shown to the user.
	Configure(ctx context.Context, config json.RawMessage) error
}

// Allocator is a port allocation policy. Allocators form a chain in registration order, each
// seeing the candidates the one before allowed; pmdaemon's built-in allocator (pluginhost's
// Builtin, behind this same interface) is always the last link and takes the lowest ports of
// what the policies before it allowed.
type Allocator interface {
	Configurer
	Allocate(ctx context.Context, req AllocateRequest) (AllocateResponse, error)
}

// EventKind names a lifecycle event.
type EventKind string

const (
	Starting     EventKind = "starting" // before a process is spawned by start/restart/reload; may be vetoed
	Started      EventKind = "started"  // a process is running (or was taken back after a daemon restart)
	Exited       EventKind = "exited"   // a process exited with code 0 on its own
	Crashed      EventKind = "crashed"  // a process exited with a non-zero code or a signal
	Errored      EventKind = "errored"  // pmdaemon gave up restarting an instance
	Stopping     EventKind = "stopping" // pmdaemon is about to stop a process
	Stopped      EventKind = "stopped"  // a process pmdaemon stopped is gone
	PortsChanged EventKind = "ports-changed"
)

// Event is one thing that happened to one instance (or, for ports-changed, to an app).
type Event struct {
	Kind     EventKind
	App      string
	Instance int // the instance's index within its app; -1 for ports-changed
	ID       int // the instance's id, as in `pmdaemon list`; -1 for ports-changed
	Pid      int // 0 when no process runs
	// Ports the event is about: the instance's port, or for ports-changed the app's new ports.
	Ports []int
	// AppPorts are the ports of the app's running instances once this event has happened: what
	// a load balancer in front of the app should send traffic to.
	AppPorts []int
	ExitCode int
	Time     time.Time
	Reason   string // why, when pmdaemon knows (errored, a restart for memory, ...)
}

// Hook reacts to lifecycle events. Events other than Starting are delivered in order per app,
// one at a time, and never hold up supervision; a Starting event is delivered before the
// process is spawned and a non-empty veto fails the start with that reason.
type Hook interface {
	Configurer
	Handle(ctx context.Context, ev Event) (veto string, err error)
}
