// Command garbage writes to stdout before the handshake, as a plugin with a stray print in
// main would: the daemon must refuse it with a clear error, not hang or crash.
package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

type hook struct{}

func (hook) Configure(context.Context, json.RawMessage) error  { return nil }
func (hook) Handle(context.Context, sdk.Event) (string, error) { return "", nil }

func main() {
	fmt.Println("hello from a plugin that prints to stdout")
	sdk.Serve(sdk.ServeOpts{Hook: hook{}})
}
