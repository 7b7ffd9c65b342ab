// Command pmdaemon is a process manager with port management. All of it lives in host/cli.
package main

import (
	"os"

	"github.com/pmdaemon/pmdaemon/host/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
