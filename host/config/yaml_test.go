package config

import (
	"encoding/json"
	"testing"
)

// FuzzYAMLEcosystem: any input either is refused with an error or becomes valid JSON that
// the JSON loader then checks; nothing panics.
func FuzzYAMLEcosystem(f *testing.F) {
	for _, seed := range []string{
		"apps:\n  - name: a\n    script: a.js\n",
		"name: y\nscript: x\nenv: {A: on, B: 1, C: .nan}\n",
		"a: &x [1, 2]\nb: *x\n",
		"1: one\ntrue: two\n",
		"---\n---\n",
		"apps: [\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := yamlToJSON(data)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("yamlToJSON(%q) = %q, not JSON", data, out)
		}
		_, _ = ParseEcosystem(out, "fuzz.yml", "/")
	})
}
