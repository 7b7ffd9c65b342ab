// Command reserved-range is a pmdaemon allocator plugin that keeps apps off reserved ports.
//
// Configuration: {"ranges": {"9000-9999": "monitoring", "5432": "postgres"}}, each key a port or
// an inclusive range "A-B" of ports 1-65535, each value a label saying what the ports are for.
// A fixed port spec that includes a reserved port is denied with "<label> (<range>)"; an auto:
// spec gets the candidates outside the reserved ranges and is denied only if too few remain.
package main

import "github.com/pmdaemon/pmdaemon/plugins/sdk"

func main() {
	sdk.Serve(sdk.ServeOpts{Allocator: &Allocator{}})
}
