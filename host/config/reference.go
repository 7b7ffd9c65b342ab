package config

import (
	"bytes"
	"fmt"
	"strings"
)

//go:generate go run ./gen

// The generated sections of the docs: each is the text between a begin and an end marker,
// made from the field tables by `go generate ./host/config` and checked by
// TestDocsAreGenerated.
const (
	// SectionKeys is the key reference of docs/ecosystem-json.md.
	SectionKeys = "keys"
	// SectionLuaKeys is the key list of docs/lua.md.
	SectionLuaKeys = "lua-keys"
)

// Generated maps each doc (relative to the module root) to its generated sections.
var Generated = map[string][]string{
	"docs/ecosystem-json.md": {SectionKeys},
	"docs/lua.md":            {SectionLuaKeys},
}

func beginMarker(section string) string {
	return fmt.Sprintf("<!-- generated: %s (go generate ./host/config); do not edit -->\n", section)
}

func endMarker(section string) string {
	return fmt.Sprintf("<!-- end generated: %s -->", section)
}

// Section is the text a generated section holds.
func Section(name string) (string, error) {
	switch name {
	case SectionKeys:
		var b strings.Builder
		writeTable(&b, AppFields)
		b.WriteString("\n`health_check` keys (on the command line, `start --health-url ...`):\n\n")
		writeTable(&b, HealthFields)
		return b.String(), nil
	case SectionLuaKeys:
		names := make([]string, len(AppFields))
		for i := range AppFields {
			names[i] = AppFields[i].Key
		}
		return fmt.Sprintf("`cluster.start` and each element of a returned `apps` take the keys of a JSON app\n"+
			"(DESIGN §5, [ecosystem-json.md](ecosystem-json.md#keys)): `%s`.\n", strings.Join(names, "`, `")), nil
	}
	return "", fmt.Errorf("no generated section %q", name)
}

func writeTable[T any](b *strings.Builder, fields []Field[T]) {
	b.WriteString("| key | type | default | `start` flag | meaning |\n|---|---|---|---|---|\n")
	for i := range fields {
		f := &fields[i]
		key := "`" + f.Key + "`"
		if len(f.Aliases) > 0 {
			key += " (also `" + strings.Join(f.Aliases, "`, `") + "`)"
		}
		flag := ""
		if f.Flag != "" {
			flag = "`--" + f.Flag + "`"
			if f.Short != "" {
				flag = "`-" + f.Short + "`, " + flag
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", key, f.Type, f.Default, flag, f.Meaning)
	}
}

// Regenerate returns doc with each of its sections replaced by what the tables make. A doc
// without a section's markers, or with them out of order, is an error naming the section.
func Regenerate(doc []byte, sections []string) ([]byte, error) {
	for _, name := range sections {
		text, err := Section(name)
		if err != nil {
			return nil, err
		}
		begin, end := []byte(beginMarker(name)), []byte(endMarker(name))
		i := bytes.Index(doc, begin)
		j := bytes.Index(doc, end)
		if i < 0 || j < i+len(begin) {
			return nil, fmt.Errorf("section %q: want the line %q, then the generated text, then %q", name, strings.TrimSpace(string(begin)), end)
		}
		out := append([]byte{}, doc[:i+len(begin)]...)
		out = append(out, text...)
		doc = append(out, doc[j:]...)
	}
	return doc, nil
}
