// Package exporttest is what the golden-file tests of host/export/nomad and host/export/kube
// share: the sources they export, loading one, comparing with (or with -update, rewriting)
// a golden file, and the report as text. Only tests import it.
package exporttest

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/export"
)

// Update rewrites the golden files from the current output (go test ./host/export/... -update).
var Update = flag.Bool("update", false, "rewrite the golden files from the current output")

// Sources are the examples/ ecosystems, every front (JSON, Lua, PM2's JavaScript), and a file
// that uses every key the export maps or reports, relative to the module root.
var Sources = []string{
	"examples/ecosystem.json",
	"examples/ecosystem.lua",
	"examples/plugins/ecosystem.json",
	"examples/plugins/ecosystem.lua",
	"host/export/testdata/features.json",
	"host/export/testdata/ecosystem.config.js",
}

// RepoRoot is the module root; golden files write it as /REPO so they hold on any checkout.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Load loads the source rel (relative to the module root) as `pmdaemon export FILE` does.
func Load(t *testing.T, rel string) *export.Source {
	t.Helper()
	t.Setenv("STAGE", "") // examples/ecosystem.lua reads it: the golden files are development's
	os.Unsetenv("STAGE")
	src, err := export.FromFile(context.Background(), filepath.Join(RepoRoot(), rel), export.FileOptions{Log: io.Discard})
	if err != nil {
		t.Fatalf("loading %s: %v", rel, err)
	}
	return src
}

// CheckGolden compares got, with the module root written /REPO, with the golden file path,
// or with -update writes it there.
func CheckGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	got = []byte(strings.ReplaceAll(string(got), RepoRoot(), "/REPO"))
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./host/export/... -update to write it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the output (run go test ./host/export/... -update if the change is meant):\n--- got\n%s", path, got)
	}
}

// ReportText is an export's report as the golden .report files hold it.
func ReportText(r export.Report) []byte {
	var b strings.Builder
	for _, l := range r.Changed {
		b.WriteString("note: " + l + "\n")
	}
	for _, l := range r.Dropped {
		b.WriteString("not carried over: " + l + "\n")
	}
	return []byte(b.String())
}
