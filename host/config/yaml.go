package config

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// IsYAML tells whether path is a YAML ecosystem file (.yml, .yaml), which PM2 also reads.
func IsYAML(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yml", ".yaml":
		return true
	}
	return false
}

// yamlToJSON turns a YAML ecosystem document into the JSON the rest of the loader reads, so
// that a YAML file has every key, check and error of a JSON one. It reads YAML 1.2's core
// schema, as PM2's js-yaml does: `yes`, `on` and `y` are text, not booleans (YAML 1.1 would
// make the app named "y" an app named true); `0755` is the number 755, not octal; a date is
// the text written. A key given twice is an error (as in JSON files), and so is a document
// that is empty or only comments, or a second document in the file.
func yamlToJSON(data []byte) ([]byte, error) {
	const write = "write apps: followed by a list of apps"
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("the file is empty; %s", write)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("the file has no document (only comments?); %s", write)
		}
		return nil, fmt.Errorf("invalid YAML: %s", yamlError(err))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("more than one YAML document (a second ---); put every app under one apps:")
	}
	budget := maxYAMLNodes
	plain, err := yamlValue(&doc, "", &budget)
	if err != nil {
		return nil, err
	}
	return json.Marshal(plain)
}

// maxYAMLNodes bounds the values a document may expand to through aliases (*name), so that
// a small file cannot make a huge one.
const maxYAMLNodes = 1 << 20

// yamlValue is the JSON value of a YAML node, by YAML 1.2's core schema. at names the node
// in errors ("apps[0].env.X").
func yamlValue(n *yaml.Node, at string, budget *int) (any, error) {
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("invalid YAML: the document expands (through aliases) to more than %d values", maxYAMLNodes)
	}
	where := strings.TrimPrefix(at, ".")
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return yamlValue(n.Content[0], at, budget)
	case yaml.AliasNode:
		return yamlValue(n.Alias, at, budget)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := yamlValue(c, fmt.Sprintf("%s[%d]", at, i), budget)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				return nil, fmt.Errorf("invalid YAML: line %d: merge keys (<<) are not read; write the keys out", k.Line)
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("invalid YAML: line %d: a key in %s is not a plain value", k.Line, orTop(where))
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("invalid YAML: line %d: key %q appears twice in %s", k.Line, k.Value, orTop(where))
			}
			val, err := yamlValue(v, at+"."+k.Value, budget)
			if err != nil {
				return nil, err
			}
			out[k.Value] = val
		}
		return out, nil
	}
	return yamlScalar(n, where)
}

// yamlScalar reads a scalar by YAML 1.2's core schema: null, true/false, decimal, 0o and 0x
// integers, floats; anything else (dates among them) is the text written.
func yamlScalar(n *yaml.Node, where string) (any, error) {
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 || n.Tag == "!!str" {
		return n.Value, nil
	}
	v := n.Value
	switch v {
	case "", "~", "null", "Null", "NULL":
		return nil, nil
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	case ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF":
		return nil, fmt.Errorf("invalid value at %s: %s is not a number JSON can hold", orTop(where), v)
	}
	if yamlDecimal().MatchString(v) {
		return json.Number(strings.TrimPrefix(trimZeros(v), "+")), nil
	}
	if m := yamlRadix().FindStringSubmatch(v); m != nil {
		base := 8
		if m[1] == "x" {
			base = 16
		}
		i, err := strconv.ParseInt(m[2], base, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid value at %s: %s: %v", orTop(where), v, err)
		}
		return json.Number(strconv.FormatInt(i, 10)), nil
	}
	if yamlFloat().MatchString(v) {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("invalid value at %s: %s is not a number JSON can hold", orTop(where), v)
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	}
	return v, nil
}

var (
	yamlDecimal = lazyRegexp(`^[-+]?[0-9]+$`)
	yamlRadix   = lazyRegexp(`^0([ox])([0-9a-fA-F]+)$`)
	yamlFloat   = lazyRegexp(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)
)

// trimZeros drops the leading zeros of a decimal integer ("-007" → "-7", "000" → "0"), as
// YAML 1.2 and JSON read them.
func trimZeros(v string) string {
	sign := ""
	if v[0] == '-' || v[0] == '+' {
		sign, v = v[:1], v[1:]
	}
	v = strings.TrimLeft(v, "0")
	if v == "" {
		return "0"
	}
	if sign == "+" {
		sign = ""
	}
	return sign + v
}

func orTop(where string) string {
	if where == "" {
		return "the document"
	}
	return where
}

// yamlError is the YAML library's error on one line, without the library's prefixes:
// "line 4: key "name" already set in map".
func yamlError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:")
	msg = strings.TrimPrefix(msg, "yaml: ")
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
