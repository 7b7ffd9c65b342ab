// Command nginx-upstream is a pmdaemon hook plugin that keeps an nginx upstream block per app in
// step with the app's running instances, and reloads nginx when they change.
//
// Configuration:
//
//	{"output": "/etc/nginx/pmdaemon-upstreams.conf",   required, absolute; its directory must exist
//	 "upstreams": {"web": "web_backend"},              required: app name -> nginx upstream name
//	 "reload": ["nginx", "-s", "reload"],              optional: argv, or a string run with /bin/sh -c
//	 "pid_file": "/run/nginx.pid",                     optional (with reload): wait for nginx's old workers
//	 "host": "127.0.0.1",                              optional, the default
//	 "server_params": "max_fails=0"}                   optional, the default
//
// Include the output file inside nginx's http {} block and proxy_pass to the upstream names.
package main

import "github.com/pmdaemon/pmdaemon/plugins/sdk"

func main() {
	sdk.Serve(sdk.ServeOpts{Hook: &Hook{}})
}
