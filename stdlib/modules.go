package stdlib

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	glua "github.com/yuin/gopher-lua"
)

// envFuncs is the env module.
//
//	env.get(name [, default]) -> the variable's value, or default when it is unset or empty
func (h *Host) envFuncs() map[string]glua.LGFunction {
	return map[string]glua.LGFunction{
		"get": func(L *glua.LState) int {
			name := checkString(L, "env.get", 1, "name")
			if v := os.Getenv(name); v != "" {
				L.Push(glua.LString(v))
				return 1
			}
			L.Push(L.Get(2))
			return 1
		},
	}
}

// logFuncs is the log module: log.info, log.warn, log.error(...) write `[lua] LEVEL: message`
// to the CLI's stderr; several arguments are joined with spaces, as print does.
func (h *Host) logFuncs() map[string]glua.LGFunction {
	level := func(name string) glua.LGFunction {
		return func(L *glua.LState) int {
			h.Print(name + ": " + joinArgs(L))
			return 0
		}
	}
	return map[string]glua.LGFunction{"info": level("info"), "warn": level("warn"), "error": level("error")}
}

// Print writes one `[lua] ` line to the log.
func (h *Host) Print(msg string) {
	w := h.Log
	if w == nil {
		w = io.Discard
	}
	msg = strings.TrimRight(msg, "\n")
	fmt.Fprintf(w, "[lua] %s\n", msg)
}

// joinArgs renders the arguments with tostring, joined by spaces.
func joinArgs(L *glua.LState) string {
	n := L.GetTop()
	parts := make([]string, n)
	for i := 1; i <= n; i++ {
		parts[i-1] = L.ToStringMeta(L.Get(i)).String()
	}
	return strings.Join(parts, " ")
}

// jsonFuncs is the json module.
//
//	json.encode(value [, indent]) -> string   (indent: true or a string such as "  ")
//	json.decode(string)           -> value    (null becomes nil)
func (h *Host) jsonFuncs() map[string]glua.LGFunction {
	return map[string]glua.LGFunction{
		"encode": func(L *glua.LState) int {
			const fn = "json.encode"
			if L.GetTop() == 0 {
				raise(L, fn, "expected a value to encode")
			}
			x, err := ToGo(L.Get(1))
			if err != nil {
				raise(L, fn, "%v", err)
			}
			indent := ""
			switch v := L.Get(2).(type) {
			case glua.LBool:
				if v {
					indent = "  "
				}
			case glua.LString:
				indent = string(v)
			case *glua.LNilType:
			default:
				raise(L, fn, "indent must be true or a string, got %s", typeName(v))
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", indent)
			if err := enc.Encode(x); err != nil {
				raise(L, fn, "%v", err)
			}
			L.Push(glua.LString(strings.TrimSuffix(buf.String(), "\n")))
			return 1
		},
		"decode": func(L *glua.LState) int {
			const fn = "json.decode"
			s := checkString(L, fn, 1, "the JSON text")
			dec := json.NewDecoder(strings.NewReader(s))
			var x any
			if err := dec.Decode(&x); err != nil {
				raise(L, fn, "%s", jsonErr(s, err))
			}
			if dec.More() {
				raise(L, fn, "trailing data after the JSON value")
			}
			push(L, fn, x)
			return 1
		},
	}
}

// jsonErr words a decoding error with its line and column.
func jsonErr(s string, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := min(int(se.Offset), len(s))
		line := 1 + strings.Count(s[:off], "\n")
		col := off - strings.LastIndexByte(s[:off], '\n')
		return fmt.Sprintf("invalid JSON at line %d, column %d: %v", line, col, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the JSON text ends too early"
	}
	return "invalid JSON: " + err.Error()
}
