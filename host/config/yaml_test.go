package config

import (
	"encoding/json"
	"fmt"
	"strings"
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

// TestYAMLCoreSchema: scalars read as YAML 1.2's core schema reads them (PM2's js-yaml), not
// as YAML 1.1 would.
func TestYAMLCoreSchema(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"a: yes", `{"a":"yes"}`},
		{"a: on", `{"a":"on"}`},
		{"a: y", `{"a":"y"}`},
		{"a: True", `{"a":true}`},
		{"a: 0755", `{"a":755}`},
		{"a: 01234", `{"a":1234}`},
		{"a: '0755'", `{"a":"0755"}`},
		{"a: 0o17", `{"a":15}`},
		{"a: 0x1F", `{"a":31}`},
		{"a: -007", `{"a":-7}`},
		{"a: 0o9", `{"a":"0o9"}`},     // not an octal number: text
		{"a: 1e400", `{"a":"1e400"}`}, // beyond a float64: text, as written
		{"a: 1.50", `{"a":1.5}`},
		{"a: 1e3", `{"a":1000}`},
		{"a: 2001-12-14", `{"a":"2001-12-14"}`},
		{"a: 12:30", `{"a":"12:30"}`},
		{"a: ~", `{"a":null}`},
		{"a:", `{"a":null}`},
		{"a: [1, two, '3']", `{"a":[1,"two","3"]}`},
		{"1: one", `{"1":"one"}`},
		{"x: &v [1, 2]\ny: *v", `{"x":[1,2],"y":[1,2]}`},
	} {
		got, err := yamlToJSON([]byte(tc.yaml))
		if err != nil || string(got) != tc.want {
			t.Errorf("%q: %s, %v; want %s", tc.yaml, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ yaml, want string }{
		{"a: .nan", "a: .nan is not a number"},
		{"b: {c: [.inf]}", "b.c[0]: .inf"},
		{"a: 1\na: 2", `line 2: key "a" appears twice in the document`},
		{"? [x]\n: 1", "not a plain value"},
		{"base: &b {x: 1}\nc:\n  <<: *b", "merge keys"},
		{aliasBomb(), "expands (through aliases) to more than"},
	} {
		_, err := yamlToJSON([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// aliasBomb is a small document whose aliases expand to 10^9 values.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}
