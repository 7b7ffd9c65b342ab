// Command pmdaemond is pmdaemon's daemon: the process that owns the apps, their ports and
// logs, and serves the API. The pmdaemon command starts it when none answers (or in the
// foreground with `pmdaemon daemon`); it lives in host/daemon.
package main

import (
	"os"

	"github.com/pmdaemon/pmdaemon/host/daemon"
)

func main() {
	os.Exit(daemon.Main(os.Args[1:], os.Stdout, os.Stderr))
}
