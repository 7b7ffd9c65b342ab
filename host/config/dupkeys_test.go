package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheckDuplicateKeys(t *testing.T) {
	tests := []struct {
		name, doc string
		want      string // the error, "" for none
		path, key string // of a DuplicateKeyError
	}{
		{"no duplicates", `{"apps": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}`, "", "", ""},
		{"same key in sibling objects", `[{"a": 1}, {"a": 2}, {"b": {"a": 3}}]`, "", "", ""},
		{"same key at two depths", `{"a": {"a": {"a": 1}}}`, "", "", ""},
		{"scalar", `42`, "", "", ""},
		{"empty object and array", `{"a": {}, "b": [], "c": [[], {}]}`, "", "", ""},
		{"top level", `{"a": 1, "b": 2, "a": 3}`, `key "a" appears twice`, "", "a"},
		{"in an array element", `{"apps": [{"name": "w"}, {"name": "x", "port": 1, "port": 2}]}`,
			`apps[1]: key "port" appears twice`, "apps[1]", "port"},
		{"nested object", `{"apps": [{"env": {"A": 1, "A": 2}}]}`, `apps[0].env: key "A" appears twice`, "apps[0].env", "A"},
		{"array in array", `[[0, {"k": 1, "k": 1}]]`, `[0][1]: key "k" appears twice`, "[0][1]", "k"},
		{"key needing quotes", `{"a b": {"x.y": {"z": 1, "z": 2}}}`, `["a b"]["x.y"]: key "z" appears twice`, `["a b"]["x.y"]`, "z"},
		{"escaped equal key", `{"\u0070ort": 1, "port": 2}`, `key "port" appears twice`, "", "port"},
		{"empty key twice", `{"": 1, "": 2}`, `key "" appears twice`, "", ""},
		{"after a container value", `{"a": {"b": [1, 2]}, "a": null}`, `key "a" appears twice`, "", "a"},
		{"first of several", `{"x": 1, "x": 2, "y": {"z": 1, "z": 2}}`, `key "x" appears twice`, "", "x"},
		{"empty", ``, "the JSON ends too early", "", ""},
		{"truncated", `{"a": [1, `, "the JSON ends too early", "", ""},
		{"trailing value", `{} {}`, "trailing data after the JSON document", "", ""},
		{"stray brace", `{}}`, "trailing data after the JSON document", "", ""},
		{"missing colon", `{"a" 1}`, "invalid JSON", "", ""},
		{"number as key", `{1: 2}`, "invalid JSON", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckDuplicateKeys([]byte(tt.doc))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckDuplicateKeys(%s) = %v, want no error", tt.doc, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckDuplicateKeys(%s) = %v, want %q", tt.doc, err, tt.want)
			}
			var dup *DuplicateKeyError
			isDup := errors.As(err, &dup)
			if wantDup := strings.Contains(tt.want, "appears twice"); isDup != wantDup {
				t.Fatalf("error %v: DuplicateKeyError %v, want %v", err, isDup, wantDup)
			}
			if isDup && (dup.Path != tt.path || dup.Key != tt.key) {
				t.Errorf("path %q key %q, want %q %q", dup.Path, dup.Key, tt.path, tt.key)
			}
		})
	}
}

// colonsOutsideStrings counts the ':' of a valid JSON document that are not inside a string:
// one per object member, duplicate or not.
func colonsOutsideStrings(data []byte) int {
	n, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && c == ':':
			n++
		}
	}
	return n
}

// entries counts the members of every object of a decoded document; encoding/json merges
// members with equal keys, so this is less than the members written exactly when a key repeats.
func entries(v any) int {
	switch x := v.(type) {
	case map[string]any:
		n := len(x)
		for _, e := range x {
			n += entries(e)
		}
		return n
	case []any:
		n := 0
		for _, e := range x {
			n += entries(e)
		}
		return n
	}
	return 0
}

// FuzzCheckDuplicateKeys compares the checker with an oracle that shares none of its code: in
// a valid document a key repeats exactly when decoding it into maps loses members. Invalid
// JSON is always an error.
func FuzzCheckDuplicateKeys(f *testing.F) {
	for _, s := range []string{
		`{"apps": [{"name": "a", "port": 3000, "port": 3001}]}`,
		`{"apps": [{"name": "a", "env": {"A": "x:y", "B": "\"}"}}]}`,
		`{"a\"b": 1, "a\u0022b": 2}`,
		`[{"k": 1}, {"k": 2}]`,
		`{"a": {"b": {"c": {"c": 1, "d": [{"e": 1, "e": 2}]}}}}`,
		`"just a string"`, `null`, `{}`, `[]`, ``, `{`, `{}}`, `{} []`, `{"a":1,}`, "{\"\xff\": 1, \"\xfe\": 2}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckDuplicateKeys(data)
		if !json.Valid(data) {
			if err == nil {
				t.Fatalf("invalid JSON %q accepted", data)
			}
			return
		}
		var doc any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber() // a number too large for a float64 is valid JSON all the same
		if derr := dec.Decode(&doc); derr != nil {
			t.Fatalf("json.Valid accepted %q but it does not decode: %v", data, derr)
		}
		var dup *DuplicateKeyError
		hasDup := entries(doc) < colonsOutsideStrings(data)
		switch {
		case err != nil && !errors.As(err, &dup):
			t.Fatalf("valid JSON %q: %v", data, err)
		case hasDup && err == nil:
			t.Fatalf("%q repeats a key; no error", data)
		case !hasDup && err != nil:
			t.Fatalf("%q has no repeated key; got %v", data, err)
		}
	})
}
