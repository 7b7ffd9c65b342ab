// Package socketse2e proves DESIGN §10 end to end: the daemon binds the ports of socket apps
// and hands the listeners to real apps in three languages (the Go echo app, a Node app,
// gunicorn with Flask), and a load client that opens a new connection per request sees no
// refused connection and no failed request through reloads, restarts and a daemon SIGKILL;
// nginx with the nginx-upstream plugin follows a reload onto new ports under wrk's load.
package socketse2e

import (
	"os"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

var nginxUpstream string

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Binary{Path: &nginxUpstream, Pkg: "./plugins/nginx-upstream"}))
}
