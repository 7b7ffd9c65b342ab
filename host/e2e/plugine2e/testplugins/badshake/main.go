// Command badshake is a go-plugin server built for another protocol version than pmdaemon's.
package main

import (
	"github.com/hashicorp/go-plugin"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

func main() {
	hs := sdk.Handshake
	hs.ProtocolVersion = 99
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: hs,
		Plugins:         plugin.PluginSet{"info": &sdk.InfoPlugin{Kinds: []string{sdk.KindHook}}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
