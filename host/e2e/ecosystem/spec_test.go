package ecosystem

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// specSnippet is one JSON example of spec/port-management.md with the script replaced by the
// echo app and its ports by a free block; its args are kept as written (echo ignores them).
type specSnippet struct {
	name  string
	ports int                             // size of the free block
	doc   func(echo string, b int) string // the file, given the echo path and the block
	want  func(b int) []wantApp           // what runs afterwards
}

var specSnippets = []specSnippet{
	{
		name:  "single port",
		ports: 1,
		doc: func(echo string, b int) string {
			return fmt.Sprintf(`{
  "name": "web-app",
  "script": %s,
  "args": ["server.js"],
  "port": "%d"
}`, js(echo), b)
		},
		want: func(b int) []wantApp { return []wantApp{{"web-app", []int{b}}} },
	},
	{
		name:  "port range distribution",
		ports: 4,
		doc: func(echo string, b int) string {
			return fmt.Sprintf(`{
  "name": "web-cluster",
  "script": %s,
  "args": ["server.js"],
  "instances": 4,
  "port": "%s"
}`, js(echo), harness.PortRange(b, b+3))
		},
		want: func(b int) []wantApp { return []wantApp{{"web-cluster", harness.Seq(b, 4)}} },
	},
	{
		name:  "auto-assignment",
		ports: 101,
		doc: func(echo string, b int) string {
			return fmt.Sprintf(`{
  "name": "workers",
  "script": %s,
  "args": ["worker.js"],
  "instances": 3,
  "port": "%s"
}`, js(echo), harness.AutoRange(b, b+100))
		},
		want: func(b int) []wantApp { return []wantApp{{"workers", harness.Seq(b, 3)}} },
	},
	{
		// Block layout: gateway b, user-service b+1..b+2, order-service auto b+3..b+13.
		name:  "microservices",
		ports: 14,
		doc: func(echo string, b int) string {
			return fmt.Sprintf(`{
  "apps": [
    {
      "name": "api-gateway",
      "script": %[1]s,
      "args": ["gateway.js"],
      "port": "%[2]d"
    },
    {
      "name": "user-service",
      "script": %[1]s,
      "args": ["user-service.js"],
      "instances": 2,
      "port": "%[3]s"
    },
    {
      "name": "order-service",
      "script": %[1]s,
      "args": ["-m", "uvicorn", "main:app"],
      "instances": 3,
      "port": "%[4]s"
    }
  ]
}`, js(echo), b, harness.PortRange(b+1, b+2), harness.AutoRange(b+3, b+13))
		},
		want: func(b int) []wantApp {
			return []wantApp{{"api-gateway", []int{b}}, {"user-service", harness.Seq(b+1, 2)}, {"order-service", harness.Seq(b+3, 3)}}
		},
	},
	{
		name:  "development",
		ports: 1,
		doc: func(echo string, b int) string {
			return fmt.Sprintf(`{
  "name": "dev-api",
  "script": %s,
  "args": ["run", "dev"],
  "port": "%d"
}`, js(echo), b)
		},
		want: func(b int) []wantApp { return []wantApp{{"dev-api", []int{b}}} },
	},
	{
		name:  "production",
		ports: 101,
		doc: func(echo string, b int) string {
			return fmt.Sprintf(`{
  "name": "prod-api",
  "script": %s,
  "args": ["dist/server.js"],
  "instances": 4,
  "port": "%s"
}`, js(echo), harness.AutoRange(b, b+100))
		},
		want: func(b int) []wantApp { return []wantApp{{"prod-api", harness.Seq(b, 4)}} },
	},
}

// Every JSON snippet of the port-management spec runs, with `run FILE` and with `start FILE`:
// each instance answers on its port with its index, and list --json shows the ports.
func TestEcosystemSpecSnippets(t *testing.T) {
	t.Parallel()
	for _, sn := range specSnippets {
		for _, verb := range []string{"run", "start"} {
			t.Run(sn.name+"/"+verb, func(t *testing.T) {
				t.Parallel()
				h := harness.NewHome(t)
				b := harness.FreePorts(t, sn.ports)
				path := writeFile(t, t.TempDir(), "ecosystem.json", sn.doc(harness.Echo, b))
				out := h.OK(verb, path)
				want := sn.want(b)
				for _, w := range want {
					if !strings.Contains(out, "started "+w.name+" ") {
						t.Errorf("%s %s: stdout does not say it started %s:\n%s", verb, path, w.name, out)
					}
				}
				checkRunning(t, h, want)
			})
		}
	}
}
