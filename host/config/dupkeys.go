package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// maxKeyCheckDepth bounds the nesting CheckDuplicateKeys follows, as encoding/json bounds
// what it decodes.
const maxKeyCheckDepth = 10000

// DuplicateKeyError is an object key that appears twice in a JSON document.
type DuplicateKeyError struct {
	Path   string // where the object is: "" for the top level, "apps[0]", "apps[0].env"
	Key    string
	Offset int64 // byte offset just after the second occurrence of the key
}

func (e *DuplicateKeyError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("key %q appears twice", e.Key)
	}
	return fmt.Sprintf("%s: key %q appears twice", e.Path, e.Key)
}

// CheckDuplicateKeys reports the first object key that appears twice in the JSON document
// data, as a *DuplicateKeyError naming the object's place (`apps[0]: key "port" appears
// twice`). encoding/json keeps the last of two equal keys without a word, so a file that sets
// a key twice would silently lose the first value. Data that is not exactly one JSON value is
// an error too. Keys are compared after unescaping, as encoding/json compares them.
func CheckDuplicateKeys(data []byte) error {
	type frame struct {
		obj     bool
		path    string
		keys    map[string]struct{}
		wantKey bool   // object: the next token is a key
		key     string // object: the key whose value comes next
		index   int    // array: the index of the next element
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	// childPath is the path of the value that comes next in the container on top.
	childPath := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if !f.obj {
			return f.path + "[" + strconv.Itoa(f.index) + "]"
		}
		if simpleKey(f.key) {
			if f.path == "" {
				return f.key
			}
			return f.path + "." + f.key
		}
		return f.path + "[" + strconv.Quote(f.key) + "]"
	}
	// valueDone moves the container on top past the value just read.
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.obj {
			f.wantKey = true
		} else {
			f.index++
		}
	}
	done := false
	for !done {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("the JSON ends too early")
			}
			return fmt.Errorf("invalid JSON: %w", err)
		}
		if len(stack) > 0 {
			if f := stack[len(stack)-1]; f.obj && f.wantKey {
				if d, ok := tok.(json.Delim); ok && d == '}' {
					stack = stack[:len(stack)-1]
					valueDone()
					done = len(stack) == 0
					continue
				}
				k, ok := tok.(string)
				if !ok {
					return fmt.Errorf("invalid JSON: object key is %v", tok)
				}
				if _, dup := f.keys[k]; dup {
					return &DuplicateKeyError{Path: f.path, Key: k, Offset: dec.InputOffset()}
				}
				f.keys[k] = struct{}{}
				f.key, f.wantKey = k, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxKeyCheckDepth {
				return fmt.Errorf("invalid JSON: nested more than %d deep", maxKeyCheckDepth)
			}
			f := &frame{obj: tok == json.Delim('{'), path: childPath()}
			if f.obj {
				f.keys, f.wantKey = map[string]struct{}{}, true
			}
			stack = append(stack, f)
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
			done = len(stack) == 0
		default:
			valueDone()
			done = len(stack) == 0
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

// simpleKey reports whether k can be shown after a dot in a path (apps[0].env) without
// quoting.
func simpleKey(k string) bool {
	if k == "" {
		return false
	}
	for i, r := range k {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
