package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// forbiddenDeps are import paths the pmdaemon binary (the CLI) must not link, by prefix, and why: every
// package linked runs its initialisation in every pmdaemon process (each CLI call and the
// daemon, whose idle memory is a target), whether or not the command uses it.
var forbiddenDeps = []struct{ prefix, why string }{
	{"github.com/hashicorp/nomad/", "the Nomad API types (5.7 MB of memory for a program that only imports them); export nomad writes its own (host/export/nomad/job.go)"},
	{"github.com/hashicorp/hcl", "hcl/v2 and hclwrite (4.1 MB); the jobspec is written by host/export/nomad/hcl.go"},
	{"github.com/zclconf/go-cty", "HCL's value types, which come with hcl/v2"},
	{"github.com/agext/levenshtein", "a dependency of hcl/v2"},
	{"github.com/apparentlymart/go-textseg", "a dependency of hcl/v2"},
	{"k8s.io/", "k8s.io/api and apimachinery (9.3 MB for apps/v1 alone); export kubernetes writes its own types (host/export/kube/objects.go)"},
	{"sigs.k8s.io/structured-merge-diff", "a dependency of apimachinery"},
	{"github.com/json-iterator/go", "a dependency of apimachinery"},
	{"github.com/fxamacker/cbor", "a dependency of apimachinery"},
	{"net/http/pprof", "the daemon's profiling hook, linked only into pmdaemond with -tags pprof"},
	// The daemon is a binary of its own (cmd/pmdaemond), so that a CLI call such as
	// `list --json` does not initialise what only the daemon runs (docs/performance.md).
	{"github.com/pmdaemon/pmdaemon/host/daemon", "the daemon, which is cmd/pmdaemond"},
	{"github.com/pmdaemon/pmdaemon/host/supervisor", "the daemon's supervisor"},
	{"github.com/pmdaemon/pmdaemon/host/pluginhost", "the daemon's plugin host"},
	{"google.golang.org/grpc", "the plugins' transport, which only the daemon speaks"},
	{"google.golang.org/protobuf", "the plugins' messages"},
	{"github.com/hashicorp/go-plugin", "the plugin host's library"},
	{"github.com/prometheus/", "the daemon's /metrics"},
	{"github.com/shirou/gopsutil", "the daemon's CPU and memory readings"},
	{"github.com/olekukonko/tablewriter", "its width cache allocates 650 KB at start-up in every process; host/cli/table.go draws the same tables (table_test.go holds it to tablewriter)"},
}

// The binary links the export commands but none of the schedulers' libraries: the tests of
// host/export/... hold the output to those libraries instead.
func TestBinaryLinksNoHeavyLibraries(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, want := range []string{"github.com/pmdaemon/pmdaemon/host/export/nomad", "github.com/pmdaemon/pmdaemon/host/export/kube"} {
		if !slices.Contains(deps, want) {
			t.Errorf("%s is not linked: this test checks the wrong binary", want)
		}
	}
	for _, dep := range deps {
		for _, f := range forbiddenDeps {
			if strings.HasPrefix(dep, f.prefix) {
				t.Errorf("pmdaemon links %s: %s", dep, f.why)
			}
		}
	}
}
