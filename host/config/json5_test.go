package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func decodeJSON(t testing.TB, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%q is not JSON: %v", data, err)
	}
	return v
}

func TestJSON5ToJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain JSON", `{"a": [1, -2.5e3, "x//y", "/*z*/", true, null]}`, `{"a": [1, -2.5e3, "x//y", "/*z*/", true, null]}`},
		{"line comment", "{\"a\": 1 // one\n}", `{"a": 1}`},
		{"block comment", "{/* a\nb */\"a\": 1}", `{"a": 1}`},
		{"comment at the end", `{"a": 1} // done`, `{"a": 1}`},
		{"trailing commas", `{"a": [1, 2,], "b": {"c": 3,},}`, `{"a": [1, 2], "b": {"c": 3}}`},
		{"trailing comma before a comment", "{\"a\": 1, // x\n}", `{"a": 1}`},
		{"single quotes", `{'a': 'it\'s "x"'}`, `{"a": "it's \"x\""}`},
		{"escapes kept in single quotes", `{"a": 'tab\tnew\nu\u0041'}`, `{"a": "tab\tnew\nuA"}`},
		{"unquoted keys", `{name: "n", $x_1: 1, _y: {z: 2}}`, `{"name": "n", "$x_1": 1, "_y": {"z": 2}}`},
		{"unquoted key before a comment", "{a /* k */ : 1}", `{"a": 1}`},
		{"words that are values", `{"a": true, "b": false, "c": null}`, `{"a": true, "b": false, "c": null}`},
		{"hexadecimal", `{"a": 0x1F, "b": -0XfF}`, `{"a": 31, "b": -255}`},
		{"leading plus", `{"a": +3, "b": +1.5}`, `{"a": 3, "b": 1.5}`},
		{"leading and trailing points", `{"a": .5, "b": 5., "c": -.25}`, `{"a": 0.5, "b": 5, "c": -0.25}`},
		{"slash in a value string", `{'a': 'http://x/y'}`, `{"a": "http://x/y"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := json5ToJSON([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := decodeJSON(t, out), decodeJSON(t, []byte(tc.want)); !reflect.DeepEqual(got, want) {
				t.Errorf("%s read as %v, want %v", tc.in, got, want)
			}
			if bytes.Count(out, []byte{'\n'}) != bytes.Count([]byte(tc.in), []byte{'\n'}) {
				t.Errorf("lines moved: %q became %q", tc.in, out)
			}
		})
	}
}

func TestJSON5Errors(t *testing.T) {
	tests := []struct {
		name, in  string
		line, col int
		msg       string
	}{
		{"open block comment", "{\n  \"a\": 1 /* x", 2, 10, "comment /* is never closed with */"},
		{"single quote over a line", "{'a':\n 'b\n'}", 2, 2, "string is not closed on its line"},
		{"single quote never closed", "{'a': 'b", 1, 7, "string is never closed"},
		{"column counts characters", "{\"é\": 'x", 1, 7, "string is never closed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := json5ToJSON([]byte(tc.in))
			var je *JSON5Error
			if !errors.As(err, &je) {
				t.Fatalf("error %v, want a *JSON5Error", err)
			}
			if je.Line != tc.line || je.Col != tc.col || je.Msg != tc.msg {
				t.Errorf("got %d:%d %q, want %d:%d %q", je.Line, je.Col, je.Msg, tc.line, tc.col, tc.msg)
			}
		})
	}
}

// TestJSON5ErrorNamesTheFile: through the ecosystem reader, the position comes with the file.
func TestJSON5ErrorNamesTheFile(t *testing.T) {
	_, err := ParseEcosystem([]byte("{\"apps\": [\n  {'script': 'x}]}"), "eco.json", "/d")
	want := "eco.json: line 2, column 14: string is never closed"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

// FuzzJSON5: the converter never panics, never moves a line, and leaves JSON as it was.
func FuzzJSON5(f *testing.F) {
	for _, s := range []string{
		`{"a": 1}`, `{a: 'b', c: [1, 2,],}`, "{// c\n\"a\": /* d */ 0x10}", `{"a": "\"'\\"}`,
		`{'a': '\''}`, `[.5, 5., +1, -0x1]`, `{"a": "x` + "\n" + `"}`, `/*`, `'`, `0x`, `+`, `.`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := json5ToJSON(in)
		if err != nil {
			var je *JSON5Error
			if !errors.As(err, &je) || je.Line < 1 || je.Col < 1 {
				t.Fatalf("error %v has no position", err)
			}
			return
		}
		if bytes.Count(out, []byte{'\n'}) != bytes.Count(in, []byte{'\n'}) {
			t.Fatalf("lines moved: %q became %q", in, out)
		}
		if json.Valid(in) && !reflect.DeepEqual(decodeJSON(t, in), decodeJSON(t, out)) {
			t.Fatalf("JSON %q became %q", in, out)
		}
	})
}
