package config

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// JSON5Error is a JSON5 construct that cannot be read, at a line and column (from 1, in
// characters).
type JSON5Error struct {
	Line, Col int
	Msg       string
}

func (e *JSON5Error) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

// json5ToJSON rewrites the JSON5 that PM2 reads in .json files (comments, trailing commas,
// single-quoted strings, unquoted keys, hexadecimal numbers, a leading "+", ".5" and "5.")
// into JSON, which encoding/json then reads with its own errors, duplicate-key check and line
// numbers. Every newline stays where it was, so lines in later errors are the file's. What it
// does not recognise is copied as it is, for the JSON decoder to report: plain JSON comes out
// unchanged.
func json5ToJSON(data []byte) ([]byte, error) {
	c := json5Conv{in: data, out: make([]byte, 0, len(data)+len(data)/8)}
	if err := c.run(); err != nil {
		return nil, err
	}
	return c.out, nil
}

type json5Conv struct {
	in  []byte
	out []byte
	i   int
}

// fail is an error at byte offset off.
func (c *json5Conv) fail(off int, format string, a ...any) error {
	line := 1 + bytes.Count(c.in[:off], []byte{'\n'})
	start := bytes.LastIndexByte(c.in[:off], '\n') + 1
	return &JSON5Error{Line: line, Col: utf8.RuneCount(c.in[start:off]) + 1, Msg: fmt.Sprintf(format, a...)}
}

func (c *json5Conv) run() error {
	for c.i < len(c.in) {
		b := c.in[c.i]
		switch {
		case b == '"':
			c.doubleQuoted()
		case b == '\'':
			if err := c.singleQuoted(); err != nil {
				return err
			}
		case b == '/' && c.i+1 < len(c.in) && (c.in[c.i+1] == '/' || c.in[c.i+1] == '*'):
			if err := c.comment(); err != nil {
				return err
			}
		case b == ',':
			if next := c.skipBlank(c.i + 1); next < len(c.in) && (c.in[next] == '}' || c.in[next] == ']') {
				c.out = append(c.out, ' ') // a trailing comma
			} else {
				c.out = append(c.out, ',')
			}
			c.i++
		case isIdentStart(b):
			c.identifier()
		case b == '+' || b == '.' || (b >= '0' && b <= '9'):
			c.number()
		default:
			c.out = append(c.out, b)
			c.i++
		}
	}
	return nil
}

// skipBlank is the offset of the first byte from i that is neither white space nor in a
// comment.
func (c *json5Conv) skipBlank(i int) int {
	for i < len(c.in) {
		switch b := c.in[i]; {
		case b == ' ' || b == '\t' || b == '\n' || b == '\r':
			i++
		case b == '/' && i+1 < len(c.in) && c.in[i+1] == '/':
			j := bytes.IndexByte(c.in[i:], '\n')
			if j < 0 {
				return len(c.in)
			}
			i += j
		case b == '/' && i+1 < len(c.in) && c.in[i+1] == '*':
			j := bytes.Index(c.in[i+2:], []byte("*/"))
			if j < 0 {
				return len(c.in)
			}
			i += 2 + j + 2
		default:
			return i
		}
	}
	return i
}

// comment drops a // or /* */ comment, keeping its newlines.
func (c *json5Conv) comment() error {
	start := c.i
	if c.in[c.i+1] == '/' {
		j := bytes.IndexByte(c.in[c.i:], '\n')
		if j < 0 {
			c.i = len(c.in)
		} else {
			c.i += j
		}
		return nil
	}
	j := bytes.Index(c.in[c.i+2:], []byte("*/"))
	if j < 0 {
		return c.fail(start, "comment /* is never closed with */")
	}
	end := c.i + 2 + j + 2
	c.out = append(c.out, bytes.Repeat([]byte{'\n'}, bytes.Count(c.in[c.i:end], []byte{'\n'}))...)
	c.out = append(c.out, ' ')
	c.i = end
	return nil
}

// doubleQuoted copies a JSON string as it is; one that does not end on its line is left to
// the JSON decoder, which names it.
func (c *json5Conv) doubleQuoted() {
	start := c.i
	c.i++
	for c.i < len(c.in) {
		switch c.in[c.i] {
		case '\\':
			c.i += 2
			continue
		case '"':
			c.i++
			c.out = append(c.out, c.in[start:c.i]...)
			return
		case '\n':
			c.out = append(c.out, c.in[start:c.i]...) // the decoder names the broken string
			return
		}
		c.i++
	}
	c.i = min(c.i, len(c.in))
	c.out = append(c.out, c.in[start:c.i]...)
}

// singleQuoted writes a '...' string as a JSON "..." string.
func (c *json5Conv) singleQuoted() error {
	start := c.i
	c.out = append(c.out, '"')
	c.i++
	for c.i < len(c.in) {
		b := c.in[c.i]
		switch b {
		case '\\':
			if c.i+1 >= len(c.in) {
				return c.fail(start, "string is never closed")
			}
			if c.in[c.i+1] == '\'' {
				c.out = append(c.out, '\'')
			} else {
				c.out = append(c.out, c.in[c.i:c.i+2]...)
			}
			c.i += 2
			continue
		case '"':
			c.out = append(c.out, '\\', '"')
		case '\'':
			c.out = append(c.out, '"')
			c.i++
			return nil
		case '\n':
			return c.fail(start, "string is not closed on its line")
		default:
			c.out = append(c.out, b)
		}
		c.i++
	}
	return c.fail(start, "string is never closed")
}

func isIdentStart(b byte) bool {
	return b == '_' || b == '$' || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
}

func isIdentPart(b byte) bool { return isIdentStart(b) || (b >= '0' && b <= '9') }

// identifier quotes an unquoted key; a word that is not a key (true, null, or garbage) is
// copied for the JSON decoder.
func (c *json5Conv) identifier() {
	start := c.i
	for c.i < len(c.in) && isIdentPart(c.in[c.i]) {
		c.i++
	}
	word := c.in[start:c.i]
	if next := c.skipBlank(c.i); next < len(c.in) && c.in[next] == ':' {
		c.out = append(c.out, '"')
		c.out = append(c.out, word...)
		c.out = append(c.out, '"')
		return
	}
	c.out = append(c.out, word...)
}

// number writes a JSON5 number as JSON: 0x1F as 31, +1 as 1, .5 as 0.5 and 5. as 5.
func (c *json5Conv) number() {
	start := c.i
	if c.in[c.i] == '+' {
		c.i++
		if c.i >= len(c.in) || !(c.in[c.i] == '.' || (c.in[c.i] >= '0' && c.in[c.i] <= '9')) {
			c.out = append(c.out, '+') // not a number: the decoder reports it
			return
		}
	}
	if c.i+1 < len(c.in) && c.in[c.i] == '0' && (c.in[c.i+1] == 'x' || c.in[c.i+1] == 'X') {
		j := c.i + 2
		for j < len(c.in) && isHex(c.in[j]) {
			j++
		}
		if n, err := strconv.ParseUint(string(c.in[c.i+2:j]), 16, 53); err == nil {
			c.out = strconv.AppendUint(c.out, n, 10)
			c.i = j
			return
		}
		c.out = append(c.out, c.in[start:j]...)
		c.i = j
		return
	}
	if c.in[c.i] == '.' {
		if c.i+1 >= len(c.in) || c.in[c.i+1] < '0' || c.in[c.i+1] > '9' {
			c.out = append(c.out, c.in[start:c.i+1]...)
			c.i++
			return
		}
		c.out = append(c.out, '0')
	}
	for c.i < len(c.in) {
		b := c.in[c.i]
		if b == '.' && (c.i+1 >= len(c.in) || c.in[c.i+1] < '0' || c.in[c.i+1] > '9') && c.i > start && c.in[c.i-1] >= '0' && c.in[c.i-1] <= '9' {
			c.i++ // "5." is 5
			return
		}
		if !(b == '.' || b == 'e' || b == 'E' || b == '-' || b == '+' || (b >= '0' && b <= '9')) {
			return
		}
		c.out = append(c.out, b)
		c.i++
	}
}

func isHex(b byte) bool {
	return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F')
}
