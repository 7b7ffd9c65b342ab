package pluginhost

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// Builtin is pmdaemon's own allocation policy, the last link of every allocator chain: of the
// candidates the policies before it allowed, it takes the lowest, as many as are asked for.
// It sits behind the same sdk.Allocator contract as a plugin, so that the chain is one list of
// links; it runs in the daemon, takes no configuration and never fails a call.
type Builtin struct{}

var _ sdk.Allocator = Builtin{}

// Configure accepts only "no configuration": the built-in policy has no settings.
func (Builtin) Configure(_ context.Context, config json.RawMessage) error {
	if len(config) == 0 || string(config) == "null" {
		return nil
	}
	return &sdk.ConfigError{Msg: fmt.Sprintf("the built-in allocator takes no configuration (got %s)", config)}
}

// Allocate allows the lowest req.Instances candidates. When there are fewer it allows them
// all and leaves the shortage to the caller, which says how many ports were free and needed.
func (Builtin) Allocate(_ context.Context, req sdk.AllocateRequest) (sdk.AllocateResponse, error) {
	ports := slices.Clone(req.Candidates)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	if req.Instances >= 0 && len(ports) > req.Instances {
		ports = ports[:req.Instances]
	}
	return sdk.Allow(ports), nil
}
