package export_test

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/pmdaemon/pmdaemon/host/config"
	"github.com/pmdaemon/pmdaemon/host/export"
	"github.com/pmdaemon/pmdaemon/host/export/kube"
	"github.com/pmdaemon/pmdaemon/host/export/nomad"
)

// companions are the keys an example needs beside it to make a valid app (as in host/config).
var companions = map[string]map[string]string{
	"socket": {"port": `"3000-3002"`, "instances": "3"},
	"bind":   {"port": `"3000"`, "socket": "true"},
}

// jsonLiteral writes a field's example as the JSON value a file would hold.
func jsonLiteral(k config.Kind, example string) string {
	switch k {
	case config.KindCount, config.KindBool, config.KindCodes, config.KindOptions, config.KindDepends:
		return example
	case config.KindEnv:
		name, val, _ := strings.Cut(example, "=")
		return fmt.Sprintf(`{%q: %q}`, name, val)
	}
	return strconv.Quote(example)
}

func parseApp(t *testing.T, keys map[string]string) config.App {
	t.Helper()
	var parts []string
	for k, v := range keys {
		parts = append(parts, fmt.Sprintf("%q: %s", k, v))
	}
	sort.Strings(parts)
	apps, err := config.ParseJSON([]byte("{"+strings.Join(parts, ", ")+"}"), "eco.json", "/base")
	if err != nil {
		t.Fatal(err)
	}
	return apps[0]
}

// targets export one app and give the document and the report.
var targets = []struct {
	name string
	run  func(a config.App) ([]byte, export.Report, error)
}{
	{"nomad", func(a config.App) ([]byte, export.Report, error) {
		job, r, err := nomad.Build(&export.Source{Name: "t", Apps: []config.App{a}}, nomad.Options{})
		if err != nil {
			return nil, r, err
		}
		out, err := nomad.JSON(job)
		return out, r, err
	}},
	{"kubernetes", func(a config.App) ([]byte, export.Report, error) {
		return kube.Export(&export.Source{Name: "t", Apps: []config.App{a}}, kube.Options{Image: "img:1"})
	}},
}

// No key is dropped silently: every app key, set to its example, changes what each exporter
// writes or is named in a line of its report that the app without the key does not get.
func TestEveryKeyCarriedOrReported(t *testing.T) {
	for i := range config.AppFields {
		f := &config.AppFields[i]
		if f.Example == "" {
			continue // health_check: its keys are all mapped (TestMapping in nomad and kube)
		}
		t.Run(f.Key, func(t *testing.T) {
			base := map[string]string{"name": `"web"`, "script": `"./server"`, "cwd": `"/srv/web"`}
			for k, v := range companions[f.Key] {
				base[k] = v
			}
			without := parseApp(t, base)
			base[f.Key] = jsonLiteral(f.Kind, f.Example)
			with := parseApp(t, base)
			for _, target := range targets {
				outWithout, rWithout, err := target.run(without)
				if err != nil {
					t.Fatal(err)
				}
				outWith, rWith, err := target.run(with)
				if err != nil {
					t.Fatalf("%s: %v", target.name, err)
				}
				if !bytes.Equal(outWith, outWithout) {
					continue
				}
				if line := newLineNaming(rWith, rWithout, f.Key); line == "" {
					t.Errorf("%s: %s %s changes nothing in the export and no line of the report names it:\n%s", target.name, f.Key, f.Example, strings.Join(append(rWith.Changed, rWith.Dropped...), "\n"))
				}
			}
		})
	}
}

// newLineNaming returns a line of r, not in before, that names key.
func newLineNaming(r, before export.Report, key string) string {
	old := map[string]bool{}
	for _, l := range append(before.Changed, before.Dropped...) {
		old[l] = true
	}
	for _, l := range append(r.Changed, r.Dropped...) {
		if !old[l] && strings.Contains(l, key) {
			return l
		}
	}
	return ""
}
