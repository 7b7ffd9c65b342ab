package config

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"encoding/json"
	"errors"
	"io"

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
// that a YAML file has every key, check and error of a JSON one. It reads YAML 1.2, as PM2's
// js-yaml does: `yes`, `on` and `y` are strings, not booleans (YAML 1.1 would make the app
// named "y" an app named true). A key given twice is an error (as in JSON files), and so is a
// document that is empty or only comments, or a second document in the file.
func yamlToJSON(data []byte) ([]byte, error) {
	const write = "write apps: followed by a list of apps"
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("the file is empty; %s", write)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc any
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("the file has no document (only comments?); %s", write)
		}
		return nil, fmt.Errorf("invalid YAML: %s", yamlError(err))
	}
	var more any
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("more than one YAML document (a second ---); put every app under one apps:")
	}
	plain, err := jsonShaped(doc, "")
	if err != nil {
		return nil, err
	}
	return json.Marshal(plain)
}

// jsonShaped turns what the YAML decoder made into values encoding/json writes: mappings with
// keys that are not strings (`1: x`, `true: y`) get their keys as text, as js-yaml gives them.
func jsonShaped(v any, at string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			s, err := jsonShaped(e, at+"."+k)
			if err != nil {
				return nil, err
			}
			x[k] = s
		}
		return x, nil
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			key := fmt.Sprint(k)
			if _, dup := m[key]; dup {
				return nil, fmt.Errorf("invalid YAML: key %q appears twice in %s", key, strings.TrimPrefix(at, "."))
			}
			s, err := jsonShaped(e, at+"."+key)
			if err != nil {
				return nil, err
			}
			m[key] = s
		}
		return m, nil
	case []any:
		for i, e := range x {
			s, err := jsonShaped(e, fmt.Sprintf("%s[%d]", at, i))
			if err != nil {
				return nil, err
			}
			x[i] = s
		}
		return x, nil
	case float64:
		if x != x || x > 1.7976931348623157e308 || x < -1.7976931348623157e308 {
			return nil, fmt.Errorf("invalid value at %s: %v is not a number JSON can hold", strings.TrimPrefix(at, "."), x)
		}
	}
	return v, nil
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
