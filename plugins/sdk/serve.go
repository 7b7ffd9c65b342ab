package sdk

import (
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// ServeOpts says what a plugin binary implements; set one or both.
type ServeOpts struct {
	Allocator Allocator
	Hook      Hook
	// Logger is where go-plugin logs; nil means Logger(name) for the binary's name.
	Logger hclog.Logger
}

// stderr is the process's real stderr, taken before Serve: go-plugin then points os.Stderr
// at a pipe of its own, and the daemon reads the plugin's logs from the real one.
var stderr = os.Stderr

// Logger returns a logger that writes JSON lines to stderr, which the daemon copies into
// daemon.log under the plugin's name, at their level. Write a plugin's own logging through
// it (before or after Serve): a plugin's stdout is not a log.
func Logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Output: stderr, JSONFormat: true, Level: hclog.Info})
}

// Serve runs the plugin until the daemon lets it go. It does not return.
func Serve(opts ServeOpts) {
	if opts.Allocator == nil && opts.Hook == nil {
		fmt.Fprintln(os.Stderr, "sdk.Serve: set ServeOpts.Allocator, ServeOpts.Hook or both")
		os.Exit(2)
	}
	if opts.Logger == nil {
		opts.Logger = Logger(binaryName())
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         pluginSet(opts),
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          opts.Logger,
	})
}

// pluginSet is the server side of PluginMap for what opts implements.
func pluginSet(opts ServeOpts) plugin.PluginSet {
	set := plugin.PluginSet{}
	var kinds []string
	if opts.Allocator != nil {
		set[KindAllocator] = &AllocatorPlugin{Impl: opts.Allocator}
		kinds = append(kinds, KindAllocator)
	}
	if opts.Hook != nil {
		set[KindHook] = &HookPlugin{Impl: opts.Hook}
		kinds = append(kinds, KindHook)
	}
	set[kindInfo] = &InfoPlugin{Kinds: kinds}
	return set
}

// TestPluginSet is the plugin set Serve would serve for opts, for use with go-plugin's
// plugin.TestPluginGRPCConn in a plugin's own tests.
func TestPluginSet(opts ServeOpts) plugin.PluginSet { return pluginSet(opts) }

func binaryName() string {
	name := os.Args[0]
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[i+1:]
		}
	}
	return name
}
