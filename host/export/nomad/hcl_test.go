package nomad

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// quotedCases are strings HCL's quoting must keep: its escapes, both template introducers
// (escaped or not, next to a reference or not), what is not printable, and Unicode.
var quotedCases = []string{
	"",
	"plain",
	`say "hi"`,
	`C:\path\`,
	`\n is not a newline`,
	"line\nline\r\n\ttabbed",
	"hello ${USER}",
	"%{ if true }x%{ endif }",
	"$${already escaped}",
	"%%{already escaped}",
	"$$$${many}",
	"${",
	"%{",
	"$",
	"%",
	"{}$%",
	"trailing $",
	"${NOMAD_PORT_port}",
	"http://127.0.0.1:${NOMAD_PORT_port}/ping",
	"$${NOMAD_PORT_port}",
	"$${NOMAD_ALLOC_INDEX}",
	"$$${NOMAD_ALLOC_INDEX}",
	"%${NOMAD_ALLOC_INDEX}",
	"${NOMAD_ALLOC_INDEX}${NOMAD_ALLOC_INDEX}",
	"${NOMAD_PORT_health}", // not a reference the export writes: text
	"${NOMAD_PORT_port",    // unclosed: text
	"${nomad_port_port}",
	"\x00\x01\x7f",
	"\u2028\u00a0\ufeff",
	"ünïcode ✓ 日本語 😀 \U0001F9EA",
	"\U000E0001", // a tag character, not printable
	"~}",
	"${~}",
}

// Each case, written as an attribute value and as a block label, parses back with hcl/v2 as
// the same string.
func TestQuoteHCLRoundTrips(t *testing.T) {
	for _, s := range quotedCases {
		checkQuoted(t, s)
	}
}

// FuzzQuoteHCL: any valid UTF-8 string round-trips through HCL's parser, as a value (with the
// runtime references live) and as a label (with none).
func FuzzQuoteHCL(f *testing.F) {
	for _, s := range quotedCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			if _, err := quoteHCL(s, runtimeRefs); err == nil || !strings.Contains(err.Error(), "UTF-8") {
				t.Fatalf("invalid UTF-8 %q: error %v", s, err)
			}
			return
		}
		checkQuoted(t, s)
	})
}

func checkQuoted(t *testing.T, s string) {
	t.Helper()
	value, err := quoteHCL(s, runtimeRefs)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	f, diags := hclsyntax.ParseConfig([]byte("v = "+value+"\n"), "t.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%q written %s: %v", s, value, diags)
	}
	got, diags := f.Body.(*hclsyntax.Body).Attributes["v"].Expr.Value(runtimeVars)
	if diags.HasErrors() {
		t.Fatalf("%q written %s: %v", s, value, diags)
	}
	if got.Type() != cty.String || got.AsString() != s {
		t.Fatalf("%q written %s reads back as %#v", s, value, got)
	}

	label, err := quoteHCL(s, nil)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	f, diags = hclsyntax.ParseConfig([]byte("b "+label+" {\n}\n"), "t.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%q written as the label %s: %v", s, label, diags)
	}
	if blocks := f.Body.(*hclsyntax.Body).Blocks; len(blocks) != 1 || blocks[0].Labels[0] != s {
		t.Fatalf("%q written as the label %s reads back as %v", s, label, blocks)
	}
}

// The export's runtime references are written live, and only they: HCL sees a template with a
// variable for them and plain text for everything else.
func TestOnlyRuntimeRefsAreLive(t *testing.T) {
	for _, tt := range []struct {
		in   string
		vars []string
	}{
		{"${NOMAD_PORT_port}", []string{"NOMAD_PORT_port"}},
		{"a ${NOMAD_ALLOC_INDEX} b ${NOMAD_PORT_port}", []string{"NOMAD_ALLOC_INDEX", "NOMAD_PORT_port"}},
		{"$${NOMAD_ALLOC_INDEX}", []string{"NOMAD_ALLOC_INDEX"}}, // a "$" of text, then the reference
		{"${HOME}", nil},
		{"${NOMAD_PORT_health}", nil},
		{"${NOMAD_TASK_DIR}/x", nil},
		{"%{ for x in y }", nil},
	} {
		q, err := quoteHCL(tt.in, runtimeRefs)
		if err != nil {
			t.Fatal(err)
		}
		expr, diags := hclsyntax.ParseExpression([]byte(q), "t.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", q, diags)
		}
		var vars []string
		for _, v := range expr.Variables() {
			vars = append(vars, v.RootName())
		}
		if strings.Join(vars, ",") != strings.Join(tt.vars, ",") {
			t.Errorf("%q written %s refers to %v; want %v", tt.in, q, vars, tt.vars)
		}
	}
}

// An env or config name that HCL cannot take as an attribute name is an error naming it, and
// every name hclIdentifier takes, hcl/v2 takes.
func TestHCLNames(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"PORT", true}, {"_x", true}, {"a-b", true}, {"a1", true},
		{"", false}, {"1a", false}, {"-a", false}, {"a.b", false}, {"a b", false}, {"ä", false}, {"a=b", false},
	} {
		if got := hclIdentifier(tt.name); got != tt.ok {
			t.Errorf("hclIdentifier(%q) = %v", tt.name, got)
		}
		if tt.ok && !hclsyntax.ValidIdentifier(tt.name) {
			t.Errorf("%q is taken here but not by hcl/v2", tt.name)
		}
	}
	job := &Job{ID: "j", Type: "service", TaskGroups: []*TaskGroup{{Name: "g", Count: 1, Tasks: []*Task{{
		Name: "t", Driver: "raw_exec", Config: map[string]any{"command": "/bin/true"}, Env: map[string]string{"app.port": "1"},
	}}}}}
	if _, err := HCL(job); err == nil || !strings.Contains(err.Error(), `env name "app.port"`) || !strings.Contains(err.Error(), "--format json") {
		t.Errorf("HCL with env app.port: %v", err)
	}
}

func FuzzHCLIdentifier(f *testing.F) {
	for _, s := range []string{"PORT", "a-b", "1a", "ä", "_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if hclIdentifier(s) && !hclsyntax.ValidIdentifier(s) {
			t.Fatalf("%q is taken here but not by hcl/v2", s)
		}
	})
}
